import { compareEntryIds } from '@streamgauge/core';
import type { DeliveredBatch } from '@streamgauge/redis';
import { namesNode, type Overtaking } from './batchApplier.ts';

/**
 * A read beside a chunk goes at most this often: each live batch taken
 * ahead of the chunk costs a slice of its own (its `latest` write, its
 * staging), so this bounds what the live readings add to the chunk, and
 * how long one of them waits for the next read.
 */
export const SIDE_READ_EVERY_MS = 100;

/** The shard's next batch, read while a chunk is applied: what is left of it for its own job. */
export interface NextBatch {
  batch: DeliveredBatch;
}

/**
 * Reads of a shard's new entries while a batch holding a catch-up lane chunk
 * is applied (BatchApplier.apply's overtaking): one at a time, one every
 * SIDE_READ_EVERY_MS at most, each waiting for its batch to be taken before
 * the next. `read` is the shard's read beside (ShardReader.readBeside,
 * which never moves the lane).
 *
 * The shard's own next read (the next chunk) goes while the batch is still
 * applied (`nextRead`), and the reads beside go on meanwhile. A batch they
 * bring is older or newer than that next batch (its entry ids tell), and
 * the order of a node's readings is kept against it:
 * - older: taken as it comes; once the apply is over, put ahead of the
 *   next batch (`olderLeftOver`), or, with no next read, the shard's next
 *   batch (`leftOver`);
 * - the next batch's own live entries ahead of its chunk (they came before
 *   the chunk was moved) are taken from it (`resume`), after the older ones;
 * - newer: taken only when it names no node of what is left of the next
 *   batch; the first one that does is left over, behind the next batch, and
 *   the reads stop. Not taken before the next batch is known.
 */
export class SideReads implements Overtaking {
  readonly #read: () => Promise<DeliveredBatch>;
  readonly #everyMs: number;
  /** Ids of the batches taken (applied ahead): theirs to release once the batch's commit is done. */
  readonly taken: string[] = [];
  /**
   * The last entry of what was taken that is older than the next batch (the
   * committed position may pass it once the batch is committed), and of
   * what is newer (only once the next batch is committed too).
   */
  readonly positions: { older?: string; newer?: string } = {};
  /** What the previous reads beside left over: older than anything read here, so ready first. */
  #before: Promise<DeliveredBatch | undefined> | undefined;
  #ready: DeliveredBatch | undefined;
  /** The shard's next read went (its batch is unknown until `resume`). */
  #nextRead = false;
  #next: NextBatch | undefined;
  /** The next batch's last entry, as read: a batch read beside is newer when its first entry is after it. */
  #nextLast: string | undefined;
  /** Its live entries ahead of its chunk were looked for (and taken); then its nodes, once asked. */
  #aheadTaken = false;
  #nextNodes: ReadonlySet<string> | undefined;
  #inFlight: Promise<void> | undefined;
  #stopped = false;
  #closed = false;
  #lastStarted = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;

  constructor(
    read: () => Promise<DeliveredBatch>,
    options: { readonly before?: Promise<DeliveredBatch | undefined>; readonly everyMs?: number } = {},
  ) {
    this.#read = read;
    this.#everyMs = options.everyMs ?? SIDE_READ_EVERY_MS;
    this.#before = options.before;
    this.#start();
  }

  /** The apply is over (see Overtaking.close). */
  get closed(): boolean {
    return this.#closed;
  }

  take(): DeliveredBatch | undefined {
    if (this.#closed || this.#stopped) return undefined;
    const ready = this.#ready;
    // A batch that may be newer than the next one waits until that one is known.
    if (ready !== undefined && this.#nextRead && this.#next === undefined) return undefined;
    if (ready !== undefined && !this.#newer(ready)) return this.#taking(ready, false);
    const next = this.#next;
    if (next !== undefined && !this.#aheadTaken) {
      this.#aheadTaken = true;
      const ahead = liveAhead(next);
      if (ahead !== undefined) return this.#taking(ahead, false);
    }
    if (ready === undefined) return undefined;
    if (namesNode(ready, (node) => this.#inNext(node))) {
      // It goes behind the next batch, and so does everything read after it.
      this.#stopped = true;
      return undefined;
    }
    return this.#taking(ready, true);
  }

  close(): void {
    this.#closed = true;
  }

  /**
   * The shard's next read goes now: what reads beside bring from now on may
   * be newer. Resolves once the read beside in flight (older, or newer:
   * its ids tell) is done.
   */
  nextRead(): Promise<void> {
    this.#nextRead = true;
    return this.#inFlight ?? Promise.resolve();
  }

  /** The shard's next batch (`next`) was read: its live head may be taken, and newer batches against what is left. */
  resume(next: NextBatch): void {
    this.#next = next;
    const last = next.batch.entries[next.batch.entries.length - 1];
    this.#nextLast = last?.id;
  }

  /** No read starts after this; resolves once the one in flight is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    await this.#inFlight;
  }

  /** Once the apply is over, a batch read and not taken that is older than the next batch: it goes ahead of it. */
  olderLeftOver(): DeliveredBatch | undefined {
    const ready = this.#ready;
    if (!this.#closed || ready === undefined || this.#newer(ready)) return undefined;
    this.#ready = undefined;
    return ready;
  }

  /** Once the apply is over (and the next batch, if read, is before it), a batch read and not taken: it goes next. */
  leftOver(): DeliveredBatch | undefined {
    if (!this.#closed) return undefined;
    const ready = this.#ready;
    this.#ready = undefined;
    return ready;
  }

  #newer(batch: DeliveredBatch): boolean {
    const first = batch.entries[0];
    return (
      this.#nextLast !== undefined && first !== undefined && compareEntryIds(first.id, this.#nextLast) > 0
    );
  }

  #inNext(node: string): boolean {
    this.#nextNodes ??= nodesOf((this.#next as NextBatch).batch);
    return this.#nextNodes.has(node);
  }

  #taking(batch: DeliveredBatch, newer: boolean): DeliveredBatch {
    if (batch === this.#ready) {
      this.#ready = undefined;
      this.#start();
    }
    for (const entry of batch.entries) this.taken.push(entry.id);
    const last = batch.entries[batch.entries.length - 1]?.id;
    const key = newer ? 'newer' : 'older';
    const known = this.positions[key];
    if (last !== undefined && (known === undefined || compareEntryIds(last, known) > 0))
      this.positions[key] = last;
    return batch;
  }

  #start(): void {
    if (this.#stopped || this.#closed) return;
    if (this.#inFlight !== undefined || this.#ready !== undefined) return;
    this.#inFlight = this.#readOne()
      .catch(() => {
        // What a failed read delivered stays pending; the shard's scan applies it.
        this.#stopped = true;
      })
      .finally(() => {
        this.#inFlight = undefined;
        this.#start();
      });
  }

  async #readOne(): Promise<void> {
    if (this.#before !== undefined) {
      const before = await this.#before;
      this.#before = undefined;
      if (before !== undefined) {
        this.#ready = before;
        return;
      }
    }
    const wait = this.#lastStarted + this.#everyMs - performance.now();
    if (wait > 0) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#timer = setTimeout(resolve, wait);
      });
      this.#wake = undefined;
    }
    if (this.#stopped || this.#closed) return;
    this.#lastStarted = performance.now();
    const batch = await this.#read();
    if (batch.entries.length > 0) this.#ready = batch;
  }
}

/**
 * The stream's own entries at the head of a batch that holds a lane chunk
 * (they came before the chunk was moved), cut from it; undefined when
 * there are none, or no chunk.
 */
function liveAhead(next: NextBatch): DeliveredBatch | undefined {
  const { entries, shard } = next.batch;
  const chunk = entries.findIndex((e) => 'readings' in e && e.fromLane === true);
  if (chunk <= 0) return undefined;
  next.batch = { shard, entries: entries.slice(chunk) };
  return { shard, entries: entries.slice(0, chunk) };
}

function nodesOf(batch: DeliveredBatch): Set<string> {
  const nodes = new Set<string>();
  for (const entry of batch.entries) {
    if ('readings' in entry) for (const reading of entry.readings) nodes.add(reading.node_id);
  }
  return nodes;
}
