import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GROUPS, loadConfig, seededRandom, shardKeys } from '@streamgauge/core';
import { type RunningIngest, startIngest } from '@streamgauge/ingest';
import { generateDataset, type TestRedis, testRedis, waitForDrain } from '@streamgauge/testkit';
import { DuckdbWarehouse, duckdbPath } from '@streamgauge/warehouse';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postReadings } from '../support/postReadings.ts';
import { ServiceProcess } from '../support/serviceProcess.ts';

let redis: TestRedis;
let client: Redis;
let ingest: RunningIngest | undefined;
const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-archive-'));
const output: string[] = [];

beforeAll(async () => {
  redis = await testRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  await ingest?.close();
  client.disconnect();
  await redis.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const spawnArchiver = () =>
  ServiceProcess.start({
    command: 'archive',
    // Small reads, one right after another: many batches, so a kill lands
    // inside one (with the default linger, the archiver would mostly be waiting).
    env: {
      REDIS_URL: redis.url,
      DATA_DIR: dataDir,
      AGGREGATOR_CLAIM_IDLE_MS: '2000',
      AGGREGATOR_READ_COUNT: '4',
      ARCHIVER_LINGER_MS: '0',
    },
    onOutput: (line) => output.push(line),
  });

describe('the archiver', () => {
  it('holds exactly one row per reading, through SIGKILLs mid-batch and resent readings', async () => {
    const now = Date.now();
    const data = generateDataset({ nodes: 40, days: 7, intervalMs: 10 * 60_000, now, seed: 55 });
    const config = loadConfig({
      REDIS_URL: redis.url,
      INGEST_HOST: '127.0.0.1',
      INGEST_PORT: '0',
      INGEST_AUTH: 'off',
    });
    ingest = await startIngest(config, pino({ level: 'silent' }));
    let archiver = await spawnArchiver();

    // The readings pile up while the archiver is frozen; then it is killed
    // at random moments while it works through them, and started again.
    archiver.pause();
    expect((await postReadings(ingest.url, data.sent, { batch: 250 })).accepted).toBe(data.unique.length);
    archiver.resume();
    const random = seededRandom(7);
    // Each kill waits until the archiver holds entries it read and has not
    // acknowledged (a kill at a fixed delay could land while a slow start
    // was still loading, and then left nothing to redeliver), then lands a
    // moment later, mid-batch.
    // (No group yet: the archiver has not read.)
    const pending = async () =>
      Number((await client.xpending('readings', GROUPS.archiver).catch(() => [0]))[0] ?? 0);
    let leftPending = 0;
    for (let kills = 0; kills < 5; kills++) {
      const deadline = Date.now() + 10_000;
      while ((await pending()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, random() * 50));
      await archiver.kill();
      if ((await pending()) > 0) leftPending++;
      archiver = await spawnArchiver();
    }
    expect(leftPending, 'kills that left entries read and not acknowledged').toBeGreaterThan(0);

    // A gateway resends everything (ingest drops it as duplicates), and a
    // copy of some readings reaches the stream past ingest's dedupe (resent
    // after the dedupe horizon): the warehouse must still hold each once.
    expect((await postReadings(ingest.url, data.sent, { batch: 1000 })).accepted).toBe(0);
    const copies = data.unique.slice(0, 500);
    await client.xadd(
      'readings',
      '*',
      'n',
      String(copies.length),
      'src',
      'late-resend',
      'readings',
      JSON.stringify(copies),
    );

    await waitForDrain(client, ['readings'], GROUPS.archiver, 60_000);
    const shard = shardKeys(0, 1);
    const last = (await client.xrevrange('readings', '+', '-', 'COUNT', 1))[0]?.[0];
    expect(await client.get(shard.archive.watermark)).toBe(last);
    const stats = await client.hgetall(shard.archive.stats);
    expect(await archiver.stop()).toBe(0);

    const warehouse = await DuckdbWarehouse.open(duckdbPath(loadConfig({ DATA_DIR: dataDir })));
    try {
      expect(await warehouse.count()).toBe(data.unique.length);
      const rows = await warehouse.query(
        `SELECT node_id, epoch_ms("timestamp")::DOUBLE AS ts, flow_rate FROM readings ORDER BY node_id, "timestamp"`,
      );
      const expected = [...data.unique]
        .sort((a, b) => (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : a.timestamp - b.timestamp))
        .map((r) => ({ node_id: r.node_id, ts: r.timestamp, flow_rate: r.flow_rate ?? null }));
      expect(rows).toEqual(expected);
    } finally {
      await warehouse.close();
    }
    // The copies, and readings of entries re-read after a kill, were skipped
    // as duplicates. (A kill after the warehouse commit but before the
    // acknowledgement makes the redelivered rows count as duplicates, so
    // `inserted` may fall short of the rows stored: the table is the truth.)
    expect(Number(stats.inserted) + Number(stats.duplicates)).toBe(Number(stats.readings));
    expect(Number(stats.readings)).toBeGreaterThanOrEqual(data.unique.length + copies.length);
    expect(Number(stats.inserted)).toBeLessThanOrEqual(data.unique.length);
    // The kills did land between a read and its acknowledgement.
    expect(Number(stats.redelivered)).toBeGreaterThan(0);
    expect(output.filter((line) => /"level":50/.test(line))).toEqual([]);
  }, 180_000);
});
