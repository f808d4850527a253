import {
  allShardKeys,
  type Clock,
  encodeReading,
  type Reading,
  type ShardKeys,
  shardOf,
} from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';
import { isUnavailable, RedisUnavailableError } from '../errors/RedisUnavailableError.ts';
import { StreamFullError } from '../errors/StreamFullError.ts';
import { runScript, ScriptRefusal } from '../scripts.ts';
import { DedupeSets } from './dedupeSets.ts';

export interface ReadingLogOptions {
  readonly shards: number;
  readonly retentionMs: number;
  readonly dedupeHorizonMs: number;
  /** Each shard's stream is bounded to this many bytes (STREAM_MAX_MB); absent or 0: no bound. */
  readonly maxBytes?: number;
  readonly clock: Clock;
  /** Called for each stream entry appended (metrics: one call per shard per append, not per reading). */
  readonly onAppend?: (stream: string) => void;
}

export interface AppendResult {
  readonly accepted: number;
  readonly duplicates: number;
}

/**
 * The readings log: validated readings go in, deduplicated by identity, one
 * stream entry per shard per call. Each shard's append is one atomic script
 * call; calls for several shards are sent together in one round trip.
 */
export class ReadingLog {
  readonly #redis: Redis | Cluster;
  readonly #shards: readonly ShardKeys[];
  readonly #retentionMs: number;
  readonly #dedupeSeconds: string;
  readonly #maxBytes: number;
  readonly #clock: Clock;
  readonly #onAppend: ((stream: string) => void) | undefined;

  constructor(redis: Redis | Cluster, options: ReadingLogOptions) {
    this.#redis = redis;
    this.#shards = allShardKeys(options.shards);
    this.#retentionMs = options.retentionMs;
    this.#dedupeSeconds = String(Math.ceil(options.dedupeHorizonMs / 1000));
    this.#maxBytes = Math.max(0, Math.floor(options.maxBytes ?? 0));
    this.#clock = options.clock;
    this.#onAppend = options.onAppend;
  }

  get streams(): readonly string[] {
    return this.#shards.map((s) => s.stream);
  }

  /**
   * Appends the readings that are new. With one shard the call is all or
   * nothing; with several, a failure may leave some shards appended, which a
   * retry of the same request completes without duplicating anything.
   *
   * @throws RedisUnavailableError when Redis could not take the write;
   *   StreamFullError (one) when a shard's stream is over its bound with
   *   entries the consumers still need.
   */
  async append(readings: readonly Reading[], source: string): Promise<AppendResult> {
    if (readings.length === 0) return { accepted: 0, duplicates: 0 };
    const minId = String(Math.max(0, this.#clock.now() - this.#retentionMs));
    const groups = this.#group(readings);
    const calls = groups.map((group) =>
      runScript(
        this.#redis,
        'appendReadings',
        group.keys,
        ([minId, this.#dedupeSeconds, source, this.#maxBytes] as (string | number)[]).concat(group.args),
      ),
    );
    const settled = await Promise.allSettled(calls);
    const failure = settled.find((outcome) => outcome.status === 'rejected');
    if (failure !== undefined) {
      const partial = settled.some((outcome) => outcome.status === 'fulfilled');
      const full = settled.findIndex(
        (o) =>
          o.status === 'rejected' && o.reason instanceof ScriptRefusal && o.reason.code === 'STREAM_FULL',
      );
      if (full >= 0) {
        const [held, bound] = ((settled[full] as PromiseRejectedResult).reason as ScriptRefusal).detail
          .split(' ')
          .map(Number);
        const stored = partial ? 'partial' : 'none';
        throw new StreamFullError((groups[full] as ShardBatch).stream, held ?? 0, bound ?? 0, stored);
      }
      if (!isUnavailable(failure.reason)) throw failure.reason;
      throw new RedisUnavailableError(failure.reason, partial ? 'partial' : undefined);
    }
    let accepted = 0;
    let duplicates = 0;
    for (let i = 0; i < settled.length; i++) {
      const [added, dups] = (settled[i] as PromiseFulfilledResult<[number, number, string | null]>).value;
      accepted += added;
      duplicates += dups;
      // The script appends an entry exactly when something was new.
      if (added > 0) this.#onAppend?.((groups[i] as ShardBatch).stream);
    }
    return { accepted, duplicates };
  }

  #group(readings: readonly Reading[]): ShardBatch[] {
    const shardCount = this.#shards.length;
    const batches = new Map<number, ShardBatch>();
    for (const reading of readings) {
      const shard = shardOf(reading.node_id, shardCount);
      let batch = batches.get(shard);
      if (batch === undefined) {
        batch = new ShardBatch(this.#shards[shard] as ShardKeys);
        batches.set(shard, batch);
      }
      batch.add(reading);
    }
    return [...batches.values()];
  }
}

class ShardBatch {
  readonly #shard: ShardKeys;
  /** Per dedupe set: the offsets, positions and JSON of its readings. */
  readonly #sets = new Map<string, { offsets: number[]; positions: number[]; json: string[] }>();
  #count = 0;

  constructor(shard: ShardKeys) {
    this.#shard = shard;
  }

  add(reading: Reading): void {
    const { set: key, member } = DedupeSets.memberOf(this.#shard, reading);
    let set = this.#sets.get(key);
    if (set === undefined) {
      set = { offsets: [], positions: [], json: [] };
      this.#sets.set(key, set);
    }
    set.offsets.push(member);
    set.positions.push(++this.#count);
    set.json.push(encodeReading(reading));
  }

  get stream(): string {
    return this.#shard.stream;
  }

  get keys(): string[] {
    return [this.#shard.stream, ...this.#sets.keys()];
  }

  /** The script's per-set arguments, in the order of `keys`. */
  get args(): (string | number)[] {
    const args: (string | number)[] = [this.#count];
    // Loops, not spreads: a spread of a very large batch overflows the call stack.
    for (const { offsets, positions, json } of this.#sets.values()) {
      args.push(offsets.length);
      for (const offset of offsets) args.push(offset);
      for (const position of positions) args.push(position);
      for (const text of json) args.push(text);
    }
    return args;
  }
}
