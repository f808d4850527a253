import { allShardKeys, DEFAULT_ANOMALY_SETTINGS, ManualClock, type Reading } from '@streamgauge/core';
import { AggregateStore, type DeliveredEntry, ReadModelWriter } from '@streamgauge/redis';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { BatchApplier } from '../../src/batchApplier.ts';
import { LiveState, type ShardState } from '../../src/liveState.ts';
import { MetricsRounds } from '../../src/metricsRounds.ts';
import { ShardOwnership } from '../../src/shardOwnership.ts';
import { SystemSums } from '../../src/systemSums.ts';

const TTL = 24 * 3600;
export const SHARD = allShardKeys(1)[0] as ReturnType<typeof allShardKeys>[number];

/** The aggregator's parts over a real Redis (one shard, held under token T), with readings and entries to feed them. */
export async function liveParts(client: Redis, options: { readonly commitReadings?: number } = {}) {
  const now = Date.UTC(2026, 11, 4, 12);
  const clock = new ManualClock(now);
  const live = new LiveState(
    { latest: new ReadModelWriter(client, TTL), metrics: new ReadModelWriter(client, TTL) },
    {
      group: 'aggregator',
      aheadMs: 60_000,
      clock,
      logger: pino({ level: 'silent' }),
      shardCount: 1,
      maxDeliveries: 5,
      anomalies: DEFAULT_ANOMALY_SETTINGS,
      ...options,
    },
  );
  const sums = new SystemSums(live);
  const rounds = new MetricsRounds(live, sums);
  const ownership = new ShardOwnership(live, rounds, sums);
  const applier = new BatchApplier(live, ownership, rounds);
  await client.set(SHARD.lease, 'T');
  const acquire = (): ShardState => {
    const state = {
      shard: SHARD,
      store: new AggregateStore(client, SHARD, { ttlSeconds: TTL, token: 'T' }),
    };
    live.shards.set(SHARD.stream, state);
    return state;
  };
  const readings = (node_id: string, count: number): Reading[] =>
    Array.from({ length: count }, (_, i) => ({
      node_id,
      timestamp: now - (count - i) * 1000,
      flow_rate: 1 + i,
    }));
  const entry = (id: string, rs: Reading[]): DeliveredEntry => ({
    id,
    deliveries: 1,
    source: 'test',
    readings: rs,
  });
  /** Applies one entry's readings to the shard (the applied batch: its commit may still be pending). */
  const applyEntry = (state: ShardState, id: string, rs: Reading[]) =>
    applier.apply({ shard: SHARD, entries: [entry(id, rs)] }, state);
  /** Applies one entry's readings and waits for the commit that holds them. */
  const commitEntry = async (state: ShardState, id: string, rs: Reading[]) =>
    (await applyEntry(state, id, rs)).committed;
  return {
    now,
    clock,
    live,
    sums,
    rounds,
    ownership,
    applier,
    acquire,
    readings,
    entry,
    applyEntry,
    commitEntry,
  };
}
