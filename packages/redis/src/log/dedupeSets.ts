import { identityOf, type Reading, type ShardKeys } from '@streamgauge/core';
import { sendBatchOrThrow } from '../batch.ts';
import type { RedisClient } from '../connection.ts';

/** A reading's place in the dedupe sets: the set (node and event-time hour) and its member (ms in the hour). */
export interface DedupeMember {
  readonly set: string;
  readonly member: number;
}

/**
 * The dedupe protocol: per node and event-time hour, a set of the accepted
 * readings' millisecond offsets in that hour (integers below 3.6 million,
 * so Redis keeps it as an intset: 4 bytes a reading), expiring the horizon
 * after its last acceptance. Ingest checks and marks inside
 * appendReadings.lua, one atomic step with the XADD (through `memberOf`);
 * a redrive checks and marks here. Nothing else knows the layout.
 */
export class DedupeSets {
  readonly #redis: RedisClient;
  readonly #shard: ShardKeys;
  readonly #horizonSeconds: number;

  constructor(redis: RedisClient, shard: ShardKeys, options: { readonly horizonMs: number }) {
    this.#redis = redis;
    this.#shard = shard;
    this.#horizonSeconds = Math.ceil(options.horizonMs / 1000);
  }

  static memberOf(shard: ShardKeys, reading: Pick<Reading, 'node_id' | 'timestamp'>): DedupeMember {
    const identity = identityOf(reading);
    return { set: shard.seen(identity), member: identity.offset };
  }

  /** Which of these readings were accepted already (within the horizon): sending them again would count them twice. */
  async accepted(readings: readonly Reading[]): Promise<Reading[]> {
    if (readings.length === 0) return [];
    const replies = await sendBatchOrThrow(this.#redis, (batch) => {
      for (const reading of readings) {
        const { set, member } = DedupeSets.memberOf(this.#shard, reading);
        batch.sismember(set, String(member));
      }
    });
    return readings.filter((_, i) => replies[i] === 1);
  }

  /** Marks readings as accepted, as ingest does, so a gateway resending one is told it is a duplicate. */
  async mark(readings: readonly Reading[]): Promise<void> {
    if (readings.length === 0) return;
    await sendBatchOrThrow(this.#redis, (batch) => {
      for (const reading of readings) {
        const { set, member } = DedupeSets.memberOf(this.#shard, reading);
        batch.sadd(set, String(member));
        batch.expire(set, this.#horizonSeconds);
      }
    });
  }
}
