import type { ServerResponse } from 'node:http';
import type { ViewChange } from './view.ts';

const KEPT = 1_000;
const HEARTBEAT_MS = 15_000;

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
  readonly #clients = new Set<ServerResponse>();
  #seq = 0;
  readonly #heartbeat: NodeJS.Timeout;

  constructor(heartbeatMs = HEARTBEAT_MS) {
    this.#heartbeat = setInterval(() => this.#broadcast(': heartbeat\n\n'), heartbeatMs);
    this.#heartbeat.unref();
  }

  get clients(): number {
    return this.#clients.size;
  }

  publish(change: ViewChange): void {
    const seq = ++this.#seq;
    const frame = `id: ${this.#epoch}-${seq}\nevent: change\ndata: ${JSON.stringify(change)}\n\n`;
    this.#kept.push({ seq, frame });
    if (this.#kept.length > KEPT) this.#kept.shift();
    this.#broadcast(frame);
  }

  /** Takes over a response: headers, what the client missed, then every event until it goes. */
  attach(response: ServerResponse, lastEventId: string | undefined): void {
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
    this.#clients.add(response);
    response.on('close', () => this.#clients.delete(response));
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const client of this.#clients) client.end();
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
    for (const client of this.#clients) client.write(frame);
  }
}
