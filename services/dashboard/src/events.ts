import type { ServerResponse } from 'node:http';
import type { ViewChange } from './view.ts';

const KEPT = 1_000;
const HEARTBEAT_MS = 15_000;
/** Event streams one process serves; more are answered 503. */
const MAX_CLIENTS = 10_000;
/** A client that has not read this much of what was sent is dropped (it reconnects and resumes). */
const MAX_BUFFERED_BYTES = 1 << 20;

interface Client {
  readonly response: ServerResponse;
  /** Whether its credential still holds (a revoked viewer's stream ends at the next heartbeat). */
  readonly allowed: () => Promise<boolean>;
}

/**
 * Server-Sent Events for every client of the process, fed by the view's
 * changes (one Redis subscription, however many clients). Event ids are
 * `<epoch of this process>-<sequence>`: a client that reconnects with
 * `Last-Event-ID` gets what it missed from the last 1,000 events, or a
 * `reset` when they are no longer all here (or the id is another process's).
 */
export class EventHub {
  readonly #epoch = Date.now();
  readonly #kept: { seq: number; frame: string }[] = [];
  readonly #clients = new Set<Client>();
  #seq = 0;
  #closed = false;
  readonly #heartbeat: NodeJS.Timeout;

  constructor(heartbeatMs = HEARTBEAT_MS) {
    this.#heartbeat = setInterval(() => this.#beat(), heartbeatMs);
    this.#heartbeat.unref();
  }

  get clients(): number {
    return this.#clients.size;
  }

  get full(): boolean {
    return this.#clients.size >= MAX_CLIENTS;
  }

  publish(change: ViewChange): void {
    const seq = ++this.#seq;
    const frame = `id: ${this.#epoch}-${seq}\nevent: change\ndata: ${JSON.stringify(change)}\n\n`;
    this.#kept.push({ seq, frame });
    if (this.#kept.length > KEPT) this.#kept.shift();
    this.#broadcast(frame);
  }

  /** Takes over a response: headers, what the client missed, then every event until it goes. */
  attach(response: ServerResponse, lastEventId: string | undefined, allowed: () => Promise<boolean>): void {
    // Gone while it was being let in, or the hub is closing: nothing to hold.
    if (this.#closed || response.destroyed || response.socket === null || response.socket.destroyed) {
      response.destroy();
      return;
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx buffers responses unless told not to.
      'x-accel-buffering': 'no',
    });
    response.write(`retry: 2000\n: connected\n\n`);
    const missed = this.#missedSince(lastEventId);
    if (missed === 'reset') {
      response.write(`id: ${this.#epoch}-${this.#seq}\nevent: reset\ndata: {}\n\n`);
    } else for (const frame of missed) response.write(frame);
    const client: Client = { response, allowed };
    this.#clients.add(client);
    response.on('close', () => this.#clients.delete(client));
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const client of this.#clients) client.response.end();
    this.#clients.clear();
  }

  #missedSince(lastEventId: string | undefined): string[] | 'reset' {
    if (lastEventId === undefined || lastEventId === '') return [];
    const [epoch, seqText] = lastEventId.split('-');
    const seq = Number(seqText);
    if (Number(epoch) !== this.#epoch || !Number.isInteger(seq) || seq > this.#seq) return 'reset';
    if (seq === this.#seq) return [];
    const first = this.#kept[0];
    if (first === undefined || first.seq > seq + 1) return 'reset';
    return this.#kept.filter((k) => k.seq > seq).map((k) => k.frame);
  }

  #broadcast(frame: string): void {
    for (const client of this.#clients) {
      const { response } = client;
      if (response.writableLength > MAX_BUFFERED_BYTES) {
        this.#clients.delete(client);
        response.destroy();
      } else response.write(frame);
    }
  }

  /** Keeps proxies from closing idle streams, and ends those whose credential no longer holds. */
  #beat(): void {
    this.#broadcast(': heartbeat\n\n');
    for (const client of this.#clients) {
      client.allowed().then(
        (ok) => {
          if (!ok) {
            this.#clients.delete(client);
            client.response.end();
          }
        },
        () => {},
      );
    }
  }
}
