import { allShardKeys, DEFAULT_ANOMALY_SETTINGS, ManualClock, type Reading } from '@streamgauge/core';
import { AggregateStore, type DeliveredEntry, ReadModelWriter } from '@streamgauge/redis';
import { useRedis } from '@streamgauge/testkit';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { BatchApplier } from '../src/batchApplier.ts';
import { LiveState, type ShardState } from '../src/liveState.ts';
import { MetricsRounds } from '../src/metricsRounds.ts';
import { ShardOwnership } from '../src/shardOwnership.ts';
import { SystemSums } from '../src/systemSums.ts';

const TTL = 24 * 3600;
const db = useRedis({ flushEach: true });
const SHARD = allShardKeys(1)[0] as ReturnType<typeof allShardKeys>[number];

describe('BatchApplier', () => {
  it('leaves nothing of a slice dropped half-way (the lease lost while it yields) to the next one', async () => {
    const now = Date.UTC(2026, 11, 4, 12);
    const live = new LiveState(
      { latest: new ReadModelWriter(db.client, TTL), metrics: new ReadModelWriter(db.client, TTL) },
      {
        group: 'aggregator',
        aheadMs: 60_000,
        clock: new ManualClock(now),
        logger: pino({ level: 'silent' }),
        shardCount: 1,
        maxDeliveries: 5,
        anomalies: DEFAULT_ANOMALY_SETTINGS,
      },
    );
    const sums = new SystemSums(live);
    const rounds = new MetricsRounds(live, sums);
    const ownership = new ShardOwnership(live, rounds, sums);
    const applier = new BatchApplier(live, ownership, rounds);
    await db.client.set(SHARD.lease, 'T');
    const acquire = (): ShardState => {
      const state = {
        shard: SHARD,
        store: new AggregateStore(db.client, SHARD, { ttlSeconds: TTL, token: 'T' }),
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

    // One node's 1,200 readings: the slice yields with some of them applied, and the shard is dropped right then.
    const first = acquire();
    let dropped = false;
    const dropWhenApplying = () => {
      if (live.nodes.get('BIG')?.windows.latest !== undefined) {
        live.shards.delete(SHARD.stream);
        dropped = true;
      } else setImmediate(dropWhenApplying);
    };
    setImmediate(dropWhenApplying);
    const lost = await applier.apply(
      { shard: SHARD, entries: [entry('1-0', readings('BIG', 1_200))] },
      first,
    );
    expect(dropped).toBe(true);
    expect(lost.entries).toBe(0);
    expect(live.nodes.has('BIG')).toBe(false);

    // Acquired again: a small slice of another node is applied as it is, and only its readings reach its detectors.
    const second = acquire();
    const outcome = await applier.apply(
      { shard: SHARD, entries: [entry('2-0', readings('SMALL', 3))] },
      second,
    );
    expect(outcome).toMatchObject({ entries: 1, readings: 3, applied: 3 });
    const small = live.nodes.get('SMALL');
    expect(small?.detector.state().window.flow_rate).toEqual([1, 2, 3]);
    expect(live.nodes.has('BIG')).toBe(false);
  });
});
