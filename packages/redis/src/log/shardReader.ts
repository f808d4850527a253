import { setTimeout as delay } from 'node:timers/promises';
import { backoffMs, type ShardKeys } from '@streamgauge/core';
import { type DeliveredBatch, isGroupMissing, type StreamConsumer } from './streamConsumer.ts';

export interface ShardPull {
  readonly batch: DeliveredBatch;
  /** This batch ends the scan of everything pending that follows the start. */
  readonly settled: boolean;
  /**
   * A read of new entries that found none in its wait: the stream is quiet.
   * (A page of a scan of pending entries may be empty under any load.)
   */
  readonly quiet: boolean;
  /** A page of a scan of pending entries, not a read of new ones. */
  readonly scanned: boolean;
}

export interface ShardReaderOptions {
  /** Entries pending this long on any consumer are claimed and delivered again. */
  readonly claimIdleMs: number;
  /** A step of `retry` failed and is retried after a backoff (`attempt` from 0): callers log it. */
  readonly onRetry: (error: unknown, attempt: number) => void;
  /** Consumers of the group removed as long gone (see FORGET_CONSUMERS_IDLE_MS): callers log them. */
  readonly onForgotten?: (consumers: readonly string[]) => void;
  /** How long a consumer must have been idle to be forgotten (default FORGET_CONSUMERS_IDLE_MS). */
  readonly forgetIdleMs?: number;
}

/**
 * A consumer with nothing pending that has not read, claimed or
 * acknowledged for this long is gone (a live one blocks on a read every few
 * seconds): the name of a replaced pod. It is removed from the group after
 * a scan of what is pending, so the group lists the replicas that exist.
 */
export const FORGET_CONSUMERS_IDLE_MS = 3_600_000;

/** The same backoff for every consumer of the stream, whichever group it reads for. */
const RETRY_BACKOFF = { baseMs: 100, maxMs: 2_000 } as const;

/**
 * What a consumer pulls next from one shard: first a scan of everything
 * pending in the group (entries a dead or earlier consumer never
 * acknowledged), then new entries, with a scan of entries pending longer
 * than `claimIdleMs` every so often, after a reconnection, and after a read
 * that failed (its reply may have been lost after Redis delivered it).
 *
 * One pull at a time, the next only once the caller asks. A scan never
 * hands back entries that are in this process, waiting to be processed or
 * acknowledged: the archiver asks for the next pull once its last batch is
 * acknowledged; the aggregator, whose commits run while it reads on, says
 * which entries it holds (`holding`).
 *
 * The group is created on first use, and again once Redis has lost it (a
 * restart without persistence, a flush): a consumer then goes on from the
 * stream's start instead of failing every read until someone recreates it.
 */
export class ShardReader {
  readonly #consumer: StreamConsumer;
  readonly #shard: ShardKeys;
  readonly #claimIdleMs: number;
  readonly #onRetry: (error: unknown, attempt: number) => void;
  readonly #onForgotten: ((consumers: readonly string[]) => void) | undefined;
  readonly #forgetIdleMs: number;
  #scan: { minIdleMs: number; cursor: string; settle: boolean } | undefined = {
    minIdleMs: 0,
    cursor: '0-0',
    settle: true,
  };
  #nextScanAt: number;
  #readFailed = false;
  #groupExists = false;

  constructor(consumer: StreamConsumer, shard: ShardKeys, options: ShardReaderOptions) {
    this.#consumer = consumer;
    this.#shard = shard;
    this.#claimIdleMs = options.claimIdleMs;
    this.#onRetry = options.onRetry;
    this.#onForgotten = options.onForgotten;
    this.#forgetIdleMs = options.forgetIdleMs ?? FORGET_CONSUMERS_IDLE_MS;
    this.#nextScanAt = Date.now() + options.claimIdleMs;
  }

  /** The connection came back: scan what is pending before reading on. */
  reconnected(): void {
    this.#scan ??= { minIdleMs: 0, cursor: '0-0', settle: false };
  }

  /**
   * Creates the group on the shard unless this reader already did (and Redis
   * has not lost it since): for a caller that reads the group's position
   * before its first pull.
   */
  async ensureGroup(): Promise<void> {
    if (this.#groupExists) return;
    await this.#consumer.ensureGroup(this.#shard);
    this.#groupExists = true;
  }

  /**
   * The next pull; not retried (see `retry`). A page of a scan of pending
   * entries leaves out those the caller has in hand as it is claimed
   * (`holding`: read, not yet acknowledged): the scan claims them with the
   * rest (resetting their idle time), but they are the caller's to
   * acknowledge, and applied again they would count twice. A read with
   * `lane: 'held'` leaves the shard's catch-up lane where it is (the caller
   * has no room for a chunk of it now): it is not quiet when it finds nothing.
   */
  async next(options: { holding?: ReadonlySet<string>; lane?: 'admit' | 'held' } = {}): Promise<ShardPull> {
    await this.ensureGroup();
    if (this.#readFailed) {
      this.#readFailed = false;
      this.reconnected();
    }
    if (this.#scan === undefined && Date.now() >= this.#nextScanAt) {
      this.#scan = { minIdleMs: this.#claimIdleMs, cursor: '0-0', settle: false };
    }
    const scan = this.#scan;
    if (scan !== undefined) {
      // Those held as the claim goes: one the caller acknowledges while the
      // page comes back (two round trips) was claimed all the same.
      const held = options.holding?.size ? new Set(options.holding) : undefined;
      const page = await this.#consumer.claim(this.#shard, scan.minIdleMs, scan.cursor);
      const batch =
        held === undefined
          ? page.batch
          : { shard: page.batch.shard, entries: page.batch.entries.filter((e) => !held.has(e.id)) };
      const finished = page.next === '0-0';
      this.#scan = finished ? undefined : { ...scan, cursor: page.next };
      if (finished) {
        this.#nextScanAt = Date.now() + this.#claimIdleMs / 2;
        // Housekeeping: a failure must not cost the page just claimed; the next scan tries again.
        const forgotten = await this.#consumer.forgetIdle(this.#shard, this.#forgetIdleMs).catch(() => []);
        if (forgotten.length > 0) this.#onForgotten?.(forgotten);
      }
      return { batch, settled: finished && scan.settle, quiet: false, scanned: true };
    }
    try {
      const held = options.lane === 'held';
      const batch = await this.#consumer.read(this.#shard, held ? { lane: 'held' } : {});
      return { batch, settled: false, quiet: !held && batch.entries.length === 0, scanned: false };
    } catch (error) {
      this.#readFailed = true;
      throw error;
    }
  }

  /**
   * New entries only, beside a batch in hand (its lane chunk being applied):
   * never a scan of pending entries, and the catch-up lane left where it is
   * (blocking at most HELD_LANE_BLOCK_MS). Not retried; a failure makes the
   * next pull scan what is pending first, as a failed read does.
   */
  async readBeside(): Promise<DeliveredBatch> {
    try {
      return await this.#consumer.read(this.#shard, { lane: 'held' });
    } catch (error) {
      this.#readFailed = true;
      throw error;
    }
  }

  /**
   * Runs `step` (a pull, or a pull and what the caller does with it) until it
   * succeeds, reporting each failure to `onRetry` and backing off before the
   * next attempt: a consumer must outlast a Redis that is restarting or
   * unreachable. A failure that says the group is gone has the next pull
   * create it again. Rejects only once `signal` is aborted: an attempt in
   * flight then ends as it will, and no other starts.
   */
  async retry<T>(step: () => Promise<T>, signal: AbortSignal): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted();
      try {
        return await step();
      } catch (error) {
        if (signal.aborted) throw error;
        if (isGroupMissing(error)) this.#groupExists = false;
        this.#onRetry(error, attempt);
        await delay(backoffMs(attempt, RETRY_BACKOFF), undefined, { signal });
      }
    }
  }
}
