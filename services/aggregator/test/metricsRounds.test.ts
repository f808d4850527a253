import { allShardKeys, DEFAULT_ANOMALY_SETTINGS, ManualClock, readModelKeys } from '@streamgauge/core';
import { AggregateStore, ReadModelWriter } from '@streamgauge/redis';
import { useRedis } from '@streamgauge/testkit';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LiveState, type ShardState } from '../src/liveState.ts';
import { MetricsRounds } from '../src/metricsRounds.ts';
import { SystemSums } from '../src/systemSums.ts';

const TTL = 24 * 3600;
const db = useRedis({ flushEach: true });

/** The rounds over a real Redis, one shard held under token T, one node `A`. */
async function setup(now: number, longRangesIntervalMs: number) {
  const clock = new ManualClock(now);
  const metrics = new ReadModelWriter(db.client, TTL);
  const live = new LiveState(
    { latest: new ReadModelWriter(db.client, TTL), metrics },
    {
      group: 'aggregator',
      aheadMs: 60_000,
      clock,
      logger: pino({ level: 'silent' }),
      metricsIntervalMs: 0,
      longRangesIntervalMs,
      shardCount: 1,
      maxDeliveries: 5,
      anomalies: DEFAULT_ANOMALY_SETTINGS,
    },
  );
  const rounds = new MetricsRounds(live, new SystemSums(live));
  const shard = allShardKeys(1)[0];
  if (shard === undefined) throw new Error('no shard');
  const state: ShardState = {
    shard,
    store: new AggregateStore(db.client, shard, { ttlSeconds: TTL, token: 'T' }),
  };
  live.shards.set(shard.stream, state);
  await db.client.set(shard.lease, 'T');
  const node = live.newNode('A', state);
  live.nodes.set('A', node);
  let entry = 0;
  /** `count` readings a second apart up to now, as if a batch applied them; the entry it committed. */
  const batch = (count: number) => {
    const at = clock.now();
    for (let i = count - 1; i >= 0; i--) {
      node.windows.add({ node_id: 'A', timestamp: at - i * 1000, flow_rate: 2 }, at);
    }
    rounds.owe(node);
    live.advance(state, `${++entry}-0`);
  };
  const count = async (range: string) =>
    Number((await db.client.hget(readModelKeys.nodeMetrics('A', range as '1h'), 'reading_count')) ?? 0);
  const watermark = () => db.client.get(shard.aggregateWritten);
  const series = async () =>
    JSON.parse((await db.client.get(readModelKeys.nodeTimeseries7d('A'))) ?? '{"timestamps":[]}').timestamps
      .length as number;
  return { clock, rounds, batch, count, watermark, series, metricsKeys: () => metrics.keysWritten };
}

describe('metrics rounds', () => {
  it('write a node owed by several batches between two rounds once, and again once it is owed after', async () => {
    const { clock, rounds, batch, count, metricsKeys } = await setup(Date.UTC(2026, 11, 3, 12, 30), 30_000);
    batch(10);
    await rounds.flush({ limit: 100 });
    // Light rounds: owed by three batches, then by one, the node's keys are written as often.
    const keys = async (batches: number) => {
      clock.advance(1000);
      for (let b = 0; b < batches; b++) batch(1);
      const before = metricsKeys();
      await rounds.flush({ limit: 100 });
      return metricsKeys() - before;
    };
    const thrice = await keys(3);
    expect(await count('1h')).toBe(13);
    const once = await keys(1);
    expect(await count('1h')).toBe(14);
    expect(thrice).toBeGreaterThan(0);
    expect(thrice).toBe(once);
  });

  it('under load write the 1-hour metrics every round and the long ranges, the series and the watermark at most every interval; a quiet stream writes everything', async () => {
    const now = Date.UTC(2026, 11, 3, 12, 30);
    const { clock, rounds, batch, count, watermark, series } = await setup(now, 30_000);
    batch(10);
    // The first round is a full one.
    await rounds.flush({ limit: 100 });
    for (const range of ['1h', '6h', '24h', '3d', '7d', '30d']) expect(await count(range), range).toBe(10);
    expect(await series()).toBe(1);
    expect(await watermark()).toBe('1-0');

    // Rounds between batches, within the interval: light.
    clock.advance(1000);
    batch(5);
    await rounds.flush({ limit: 100 });
    expect(await count('1h')).toBe(15);
    expect(await count('24h')).toBe(10);
    expect(await count('30d')).toBe(10);
    // The keys do not reflect entry 2 in full: the watermark stays.
    expect(await watermark()).toBe('1-0');

    // Once the interval has passed, a full round again.
    clock.advance(30_000);
    batch(1);
    await rounds.flush({ limit: 100 });
    for (const range of ['1h', '6h', '24h', '3d', '7d', '30d']) expect(await count(range), range).toBe(16);
    expect(await watermark()).toBe('3-0');

    // A light round, then the stream goes quiet: everything owed is written.
    clock.advance(1000);
    batch(2);
    await rounds.flush({ limit: 100 });
    expect([await count('1h'), await count('7d')]).toEqual([18, 16]);
    await rounds.flush();
    for (const range of ['1h', '6h', '24h', '3d', '7d', '30d']) expect(await count(range), range).toBe(18);
    expect(await watermark()).toBe('4-0');
  });

  it('with no interval (the default of the options) write every range in every round', async () => {
    const now = Date.UTC(2026, 11, 3, 12, 30);
    const { clock, rounds, batch, count, watermark } = await setup(now, 0);
    batch(3);
    await rounds.flush({ limit: 100 });
    clock.advance(1000);
    batch(4);
    await rounds.flush({ limit: 100 });
    expect([await count('1h'), await count('30d')]).toEqual([7, 7]);
    expect(await watermark()).toBe('2-0');
  });
});
