import { describe, expect, it } from 'vitest';
import {
  CATCHUP,
  catchupLaneOf,
  identityOf,
  identitySlotOf,
  readModelKeys,
  shardKeys,
  shardOf,
} from '../src/index.ts';

describe('key layout', () => {
  it('keeps the dashboard contract names', () => {
    expect(readModelKeys.nodesAll).toBe('nodes:all');
    expect(readModelKeys.nodeMetadata('215542')).toBe('node:215542:metadata');
    expect(readModelKeys.nodeLatest('215542')).toBe('node:215542:latest');
    expect(readModelKeys.nodeMetrics('215542', '24h')).toBe('node:215542:metrics:24h');
    expect(readModelKeys.nodeTimeseries7d('215542')).toBe('node:215542:timeseries:7d');
    expect(readModelKeys.systemMetrics('30d')).toBe('system:metrics:30d');
    expect(readModelKeys.anomaliesRecent).toBe('anomalies:recent');
  });

  it('keeps one shard named "readings" and tags its other keys into the same slot', () => {
    const one = shardKeys(0, 1);
    expect(one.stream).toBe('readings');
    const id = identityOf({ node_id: 'N1', timestamp: Date.UTC(2024, 0, 1, 5, 30) });
    expect(one.seen(identitySlotOf(Date.UTC(2024, 0, 1, 5, 30)).slot)).toBe(
      `seen:{readings}:s${Date.UTC(2024, 0, 1, 5, 20) / 1_200_000}`,
    );
    expect(one.seenHour(id.bucket)).toBe(`seen:{readings}:${Date.UTC(2024, 0, 1, 5) / 3_600_000}`);
    expect(one.seenBefore(id)).toBe(`seen:{readings}:N1:${Date.UTC(2024, 0, 1, 5) / 3_600_000}`);
  });

  it('gives each of several shards its own hash tag', () => {
    const s3 = shardKeys(3, 8);
    expect(s3.stream).toBe('readings:{3}');
    expect(s3.seen(1_500_000)).toBe('seen:{3}:s1500000');
    expect(s3.seenHour(3_600_000 * 500_000)).toBe('seen:{3}:500000');
    expect(s3.seenHoursUntil).toBe('seen:{3}:hours');
    expect(s3.seenBefore(identityOf({ node_id: 'N', timestamp: 3_600_000 * 500_000 }))).toBe(
      'seen:{3}:N:500000',
    );
    expect(s3.seenBeforeUntil).toBe('seen:{3}:before');
    expect(() => shardKeys(8, 8)).toThrow(RangeError);
  });

  it('routes a node to a stable shard and spreads nodes across shards', () => {
    expect(shardOf('anything', 1)).toBe(0);
    expect(shardOf('215542', 8)).toBe(shardOf('215542', 8));
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[shardOf(`NODE${i}`, 8)]++;
    for (const count of counts) expect(count).toBeGreaterThan(800);
  });

  it("spreads each shard's nodes over every catch-up lane, ids that differ in their last character too", () => {
    expect(shardKeys(0, 1).catchupLanes).toEqual([
      '{readings}:catchup',
      ...Array.from({ length: CATCHUP.lanes - 1 }, (_, i) => `{readings}:catchup:${i + 1}`),
    ]);
    expect(shardKeys(2, 4).catchupLanes[3]).toBe('{2}:catchup:3');
    const counts = new Array(2 * CATCHUP.lanes).fill(0);
    for (let i = 0; i < 16_000; i++) {
      const id = `N${i}`;
      counts[shardOf(id, 2) * CATCHUP.lanes + catchupLaneOf(id)]++;
    }
    // 1,000 a lane and shard on average.
    for (const count of counts) expect(count).toBeGreaterThan(850);
    expect(new Set(Array.from({ length: 10 }, (_, i) => catchupLaneOf(`G${i}`))).size).toBeGreaterThan(4);
  });

  it('splits identity into an hour bucket and a millisecond offset', () => {
    const ts = Date.UTC(2024, 0, 1, 5, 30, 15, 7);
    expect(identityOf({ node_id: 'n', timestamp: ts })).toEqual({
      nodeId: 'n',
      bucket: Date.UTC(2024, 0, 1, 5),
      offset: 30 * 60_000 + 15_007,
    });
    // Dedupe slots: three an hour, none across two.
    expect(identitySlotOf(ts)).toEqual({
      slot: Date.UTC(2024, 0, 1, 5, 20) / 1_200_000,
      offset: 10 * 60_000 + 15_007,
    });
    expect(identitySlotOf(Date.UTC(2024, 0, 1, 6) - 1).offset).toBe(1_199_999);
  });
});

describe('aggregator keys', () => {
  it('keep a shard state and its stream in one Redis Cluster slot', () => {
    const one = shardKeys(0, 1);
    expect(one.aggregateNode('N1')).toBe('agg:{readings}:node:N1');
    expect(one.aggregateNodes).toBe('agg:{readings}:nodes');
    expect(one.deadLetters).toBe('{readings}:dead');
    const two = shardKeys(1, 4);
    expect(two.aggregateNode('N1')).toBe('agg:{1}:node:N1');
    expect(two.deadLetters).toBe('{1}:dead');
  });
});
