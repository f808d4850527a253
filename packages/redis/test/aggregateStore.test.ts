import { NodeWindows, shardKeys } from '@streamgauge/core';
import { RedisServer, useRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { AggregateStore } from '../src/index.ts';

const db = useRedis({ flushEach: true });
const shard = shardKeys(0, 1);
const now = Date.UTC(2026, 10, 25, 12);

function node(id: string): NodeWindows {
  const windows = new NodeWindows(id, 360_000);
  windows.add({ node_id: id, timestamp: now - 60_000, flow_rate: 2, pressure: 3 }, now);
  return windows;
}

const commitOf = (windows: NodeWindows[], ackIds: string[]) => ({
  changed: windows,
  added: windows.map((w) => w.nodeId),
  removed: [],
  group: 'aggregator',
  ackIds,
  deadLetters: [{ id: '1-0', error: 'bad entry' }],
  counters: { entries: 2, readings: 1 },
});

describe('AggregateStore', () => {
  it('applies a commit once, however often it is retried', async () => {
    const store = new AggregateStore(db.client, shard, 3600);
    const commit = store.prepare(commitOf([node('N1')], ['1-0', '2-0']));
    await commit();
    await commit(); // as after a reply lost in transit
    expect(await db.client.hgetall(shard.aggregateStats)).toEqual({ entries: '2', readings: '1' });
    expect(await db.client.xlen(shard.deadLetters)).toBe(1);
    const loaded = await store.load(360_000);
    expect(loaded.get('N1')?.evaluate('1h', now).pane[0]).toBe(1);
  });

  it('applies a commit that failed while Redis was away once it is back', async () => {
    const server = await RedisServer.start();
    const client = new Redis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    client.on('error', () => {});
    try {
      const store = new AggregateStore(client, shard, 3600);
      const commit = store.prepare(commitOf([node('N2')], ['5-0']));
      await server.kill();
      await expect(commit()).rejects.toThrow();
      await server.start();
      for (let i = 0; i < 100 && client.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 50));
      await commit();
      await commit();
      expect(await client.hget(shard.aggregateStats, 'entries')).toBe('2');
      expect((await store.load(360_000)).has('N2')).toBe(true);
    } finally {
      client.disconnect();
      await server.dispose();
    }
  });
});
