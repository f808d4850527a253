import { anomalyKeys, readModelKeys } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { ReadModelReader } from '../src/index.ts';

const db = useRedis({ flushEach: true });

describe('ReadModelReader', () => {
  it('reads many keys in one call; a missing key is empty, a key of another type an error of its own', async () => {
    const redis = db.client;
    await redis.hset(readModelKeys.nodeLatest('A'), {
      timestamp: '2026-12-04T01:00:00.000Z',
      flow_rate: '2.5',
    });
    await redis.hset(anomalyKeys.open('A'), { a1: '{"id":"a1"}', a2: '{"id":"a2"}' });
    await redis.set(readModelKeys.nodeMetrics('A', '1h'), 'an older writer');
    const replies = await new ReadModelReader(redis).read([
      { key: readModelKeys.nodeLatest('A'), what: 'hash' },
      { key: readModelKeys.nodeMetadata('A'), what: 'hash' },
      { key: readModelKeys.nodeMetrics('A', '1h'), what: 'hash' },
      { key: anomalyKeys.open('A'), what: 'values' },
    ]);
    expect(replies[0]).toEqual(['timestamp', '2026-12-04T01:00:00.000Z', 'flow_rate', '2.5']);
    expect(replies[1]).toEqual([]);
    expect(replies[2]).toBeInstanceOf(Error);
    expect((replies[2] as Error).message).toBe(
      `${readModelKeys.nodeMetrics('A', '1h')} holds a string, not a hash`,
    );
    expect([...(replies[3] as string[])].sort()).toEqual(['{"id":"a1"}', '{"id":"a2"}']);
    expect(await new ReadModelReader(redis).read([])).toEqual([]);
  });
});
