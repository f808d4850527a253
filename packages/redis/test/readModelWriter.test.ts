import { readModelKeys } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { ReadModelWriter } from '../src/index.ts';

const db = useRedis({ flushEach: true });

describe('ReadModelWriter', () => {
  it("writes a node's keys with their TTL, and repairs keys an older writer left with another type", async () => {
    const redis = db.client;
    // The old system's mistakes: a hash key held as a string and as a list.
    await redis.set(readModelKeys.nodeLatest('A'), 'stale');
    await redis.rpush(readModelKeys.nodeMetrics('A', '1h'), 'x', 'y');
    await redis.hset(readModelKeys.nodeMetrics('B', '1h'), { old_field: '1' });
    const writer = new ReadModelWriter(redis, 3600);
    writer.writeNode({
      nodeId: 'A',
      latest: { timestamp: '2026-12-03T08:00:00.000Z', flow_rate: '1.5' },
      metrics: new Map([['1h', { reading_count: '2', avg_flow: '1.25' }]]),
      timeseries: '{"timestamps":[],"flow_rates":[],"pressures":[]}',
    });
    writer.writeNode({ nodeId: 'B', metrics: new Map([['1h', { reading_count: '1' }]]) });
    await writer.flush();

    expect(await redis.hgetall(readModelKeys.nodeLatest('A'))).toEqual({
      timestamp: '2026-12-03T08:00:00.000Z',
      flow_rate: '1.5',
    });
    expect(await redis.hgetall(readModelKeys.nodeMetrics('A', '1h'))).toEqual({
      reading_count: '2',
      avg_flow: '1.25',
    });
    expect(await redis.get(readModelKeys.nodeTimeseries7d('A'))).toContain('timestamps');
    // A hash is written field by field: fields it does not name are kept.
    expect(await redis.hgetall(readModelKeys.nodeMetrics('B', '1h'))).toEqual({
      old_field: '1',
      reading_count: '1',
    });
    for (const key of [
      readModelKeys.nodeLatest('A'),
      readModelKeys.nodeMetrics('A', '1h'),
      readModelKeys.nodeTimeseries7d('A'),
      readModelKeys.nodeMetrics('B', '1h'),
    ]) {
      const ttl = await redis.ttl(key);
      expect(ttl, key).toBeGreaterThan(3500);
    }
    expect(await redis.lrange(readModelKeys.nodesAll, 0, -1)).toEqual([]);
  });
});
