import { fieldMap, GROUPS, loadConfig, shardKeys } from '@streamgauge/core';
import { useRedis, waitForDrain } from '@streamgauge/testkit';
import { DuckdbWarehouse } from '@streamgauge/warehouse';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startArchiver } from '../src/index.ts';

const db = useRedis({ flushEach: true });
const shard = shardKeys(0, 1);
const at = Date.UTC(2026, 10, 20, 12);

const entry = (readings: unknown[]) =>
  db.client.xadd(
    shard.stream,
    '*',
    'n',
    String(readings.length),
    'src',
    'gw',
    'readings',
    JSON.stringify(readings),
  );

describe('archiver', () => {
  it('archives what is valid; an entry with an invalid reading stays pending, then is dead-lettered', async () => {
    await db.client.xgroup('CREATE', shard.stream, GROUPS.archiver, '0', 'MKSTREAM');
    const bad = (await entry([
      { node_id: 'A', timestamp: at, flow_rate: 1 },
      { node_id: 'A', timestamp: at + 1, flow_rate: 'abc' },
    ])) as string;
    const good = (await entry([{ node_id: 'B', timestamp: at, pressure: 3 }])) as string;
    // A decodable entry a crashed archiver had taken many times is still archived.
    await db.client.xreadgroup('GROUP', GROUPS.archiver, 'dead', 'STREAMS', shard.stream, '>');
    for (let i = 0; i < 6; i++) await db.client.xclaim(shard.stream, GROUPS.archiver, 'dead', 0, good);
    const warehouse = await DuckdbWarehouse.open(':memory:');
    const config = loadConfig({
      REDIS_URL: db.url,
      AGGREGATOR_BLOCK_MS: '50',
      AGGREGATOR_CLAIM_IDLE_MS: '100',
      AGGREGATOR_MAX_DELIVERIES: '3',
    });
    const archiver = await startArchiver(config, pino({ level: 'silent' }), { warehouse });
    try {
      await waitForDrain(db.client, [shard.stream], GROUPS.archiver, 20_000);
      expect(await warehouse.query('SELECT node_id FROM readings ORDER BY node_id')).toEqual([
        { node_id: 'B' },
      ]);
      const dead = await db.client.xrange(shard.deadLetters, '-', '+');
      expect(dead).toHaveLength(1);
      expect(dead[0]?.[1]).toEqual([
        'stream',
        'readings',
        'id',
        bad,
        'group',
        'archiver',
        'error',
        'reading 1: flow_rate: expected a finite number (L/s), got string "abc"',
        'deliveries',
        '3',
      ]);
      expect(await db.client.get(shard.archive.watermark)).toBe(good);
      expect(await db.client.hgetall(shard.archive.stats)).toMatchObject({
        inserted: '1',
        dead: '1',
        failed: '1', // delivered to the crashed consumer (1), failed here (2), dead-lettered (3)
      });
    } finally {
      await archiver.stop();
      await warehouse.close();
    }
  });

  it('waits ARCHIVER_LINGER_MS after a small read, so more arrives for one write; a stop does not wait it out', async () => {
    const warehouse = await DuckdbWarehouse.open(':memory:');
    const config = loadConfig({ REDIS_URL: db.url, AGGREGATOR_BLOCK_MS: '50', ARCHIVER_LINGER_MS: '60000' });
    const archiver = await startArchiver(config, pino({ level: 'silent' }), { warehouse });
    try {
      await entry([{ node_id: 'A', timestamp: at, flow_rate: 1 }]);
      await waitForDrain(db.client, [shard.stream], GROUPS.archiver, 20_000);
      // The first read found one reading: the next waits, and this entry with it.
      await entry([{ node_id: 'B', timestamp: at, flow_rate: 2 }]);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await warehouse.query('SELECT node_id FROM readings ORDER BY node_id')).toEqual([
        { node_id: 'A' },
      ]);
    } finally {
      const stopping = performance.now();
      await archiver.stop();
      expect(performance.now() - stopping).toBeLessThan(5_000);
      await warehouse.close();
    }
    // What it had not read is still there for the next archiver.
    const [group] = (await db.client.xinfo('GROUPS', shard.stream)) as unknown[][];
    expect(Number(fieldMap(group ?? []).get('lag'))).toBe(1);
  });
});
