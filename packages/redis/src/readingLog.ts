import {
  allShardKeys,
  type Clock,
  encodeReading,
  identityOf,
  type Reading,
  type ShardKeys,
  shardOf,
} from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';
import { isUnavailable, RedisUnavailableError } from './errors/RedisUnavailableError.ts';
import { runScript } from './scripts.ts';

export interface ReadingLogOptions {
  readonly shards: number;
  readonly retentionMs: number;
  readonly dedupeHorizonMs: number;
  readonly clock: Clock;
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
  readonly #clock: Clock;

  constructor(redis: Redis | Cluster, options: ReadingLogOptions) {
    this.#redis = redis;
    this.#shards = allShardKeys(options.shards);
    this.#retentionMs = options.retentionMs;
    this.#dedupeSeconds = String(Math.ceil(options.dedupeHorizonMs / 1000));
    this.#clock = options.clock;
  }

  get streams(): readonly string[] {
    return this.#shards.map((s) => s.stream);
  }

  /**
   * Appends the readings that are new. With one shard the call is all or
   * nothing; with several, a failure may leave some shards appended, which a
   * retry of the same request completes without duplicating anything.
   *
   * @throws RedisUnavailableError when Redis could not take the write.
   */
  async append(readings: readonly Reading[], source: string): Promise<AppendResult> {
    if (readings.length === 0) return { accepted: 0, duplicates: 0 };
    const minId = String(Math.max(0, this.#clock.now() - this.#retentionMs));
    const groups = this.#group(readings);
    const calls = groups.map((group) =>
      runScript(this.#redis, 'appendReadings', group.keys, [
        minId,
        this.#dedupeSeconds,
        source,
        ...group.args,
      ]),
    );
    const settled = await Promise.allSettled(calls);
    let accepted = 0;
    let duplicates = 0;
    for (const outcome of settled) {
      if (outcome.status === 'rejected') {
        throw isUnavailable(outcome.reason) ? new RedisUnavailableError(outcome.reason) : outcome.reason;
      }
      const [added, dups] = outcome.value as [number, number, string | null];
      accepted += added;
      duplicates += dups;
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
  readonly keys: string[];
  readonly args: (string | number)[] = [];
  readonly #index = new Map<string, number>();
  readonly #shard: ShardKeys;

  constructor(shard: ShardKeys) {
    this.#shard = shard;
    this.keys = [shard.stream];
  }

  add(reading: Reading): void {
    const identity = identityOf(reading);
    const key = this.#shard.seen(identity);
    let index = this.#index.get(key);
    if (index === undefined) {
      this.keys.push(key);
      index = this.keys.length; // Lua's KEYS is 1-based
      this.#index.set(key, index);
    }
    this.args.push(index, identity.offset, encodeReading(reading));
  }
}
