import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type RunningAggregator, startAggregator } from '@streamgauge/aggregator';
import { startArchiver } from '@streamgauge/archiver';
import { allShardKeys, GROUPS, loadConfig, type Reading } from '@streamgauge/core';
import { startIngest } from '@streamgauge/ingest';
import { type TestRedis, testRedis, waitForAggregator, waitForDrain } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const exec = promisify(execFile);
let redis: TestRedis;
const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-status-'));

beforeAll(async () => {
  redis = await testRedis();
});
afterAll(async () => {
  await redis.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function status(args: string[] = []): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await exec(process.execPath, [MAIN, 'status', ...args], {
      env: { ...process.env, REDIS_URL: redis.url, STREAM_SHARDS: '2' },
    });
    return { code: 0, stdout };
  } catch (error) {
    const e = error as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

function readings(from: number, count: number): Reading[] {
  return Array.from({ length: count }, (_, i) => ({
    node_id: `S${i % 7}`,
    timestamp: from + i * 1000,
    flow_rate: 5 + (i % 3),
    pressure: 3,
  }));
}

async function post(url: string, batch: Reading[]): Promise<void> {
  for (let i = 0; i < batch.length; i += 50) {
    const response = await fetch(`${url}/v1/readings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(batch.slice(i, i + 50)),
    });
    expect(response.status).toBe(200);
  }
}

describe('streamgauge status', () => {
  it('shows the lag of a stopped aggregator and is unhealthy; after a restart the lag drains to 0', async () => {
    const config = loadConfig({
      REDIS_URL: redis.url,
      STREAM_SHARDS: '2',
      DATA_DIR: dataDir,
      INGEST_HOST: '127.0.0.1',
      INGEST_PORT: '0',
      INGEST_AUTH: 'off',
      AGGREGATOR_BLOCK_MS: '100',
    });
    const logger = pino({ level: 'silent' });
    const client = new Redis(redis.url);
    const ingest = await startIngest(config, logger);
    const archiver = await startArchiver(config, logger);
    let aggregator: RunningAggregator | undefined = await startAggregator(config, logger);
    const streams = allShardKeys(2).map((s) => s.stream);
    try {
      const now = Date.now() - 3_600_000;
      await post(ingest.url, readings(now, 200));
      await waitForAggregator(client, 2);
      await waitForDrain(client, streams, GROUPS.archiver);
      const calm = await status(['--json', '--max-lag', '0']);
      expect(calm.code).toBe(0);
      const before = JSON.parse(calm.stdout);
      expect(before.healthy).toBe(true);
      for (const shard of before.shards) {
        expect(shard.groups.map((g: { name: string }) => g.name)).toEqual(['aggregator', 'archiver']);
        for (const group of shard.groups) expect(group).toMatchObject({ lag: 0, pending: 0 });
        expect(shard.archiveWatermark).toBeDefined();
      }

      await aggregator.stop();
      aggregator = undefined;
      await post(ingest.url, readings(now + 200_000, 300));
      await waitForDrain(client, streams, GROUPS.archiver);
      const behind = await status(['--json', '--max-lag', '0']);
      expect(behind.code).toBe(1);
      const stalled = JSON.parse(behind.stdout);
      const lag = stalled.shards
        .flatMap((s: { groups: { name: string; lag: number }[] }) => s.groups)
        .filter((g: { name: string }) => g.name === 'aggregator')
        .reduce((n: number, g: { lag: number }) => n + g.lag, 0);
      const entries = stalled.shards.reduce((n: number, s: { length: number }) => n + s.length, 0);
      expect(lag).toBeGreaterThan(0);
      expect(lag).toBeLessThan(entries);
      expect(stalled.problems.join('\n')).toMatch(/group aggregator is \d+ entries behind \(limit 0\)/);
      const human = await status(['--max-lag', '0']);
      expect(human.code).toBe(1);
      expect(human.stdout).toMatch(/^UNHEALTHY/);
      expect(human.stdout).toMatch(/group aggregator: lag [1-9]/);
      expect(human.stdout).toMatch(/consumer aggregator-1: pending 0, idle \d+ s/);
      // Within the lag limit, but nobody works the group off: unhealthy once its consumers were idle too long.
      await new Promise((r) => setTimeout(r, 1_500));
      const idle = await status(['--json', '--max-consumer-idle', '1']);
      expect(idle.code).toBe(1);
      expect(JSON.parse(idle.stdout).problems.join('\n')).toMatch(
        /group aggregator has \d+ entries waiting and no live consumer \(none read for 1 s; is its service running\?\)/,
      );

      aggregator = await startAggregator(config, logger);
      await waitForAggregator(client, 2);
      const drained = await status(['--json', '--max-lag', '0', '--max-consumer-idle', '1']);
      expect(drained.code, drained.stdout).toBe(0);
      for (const shard of JSON.parse(drained.stdout).shards) {
        for (const group of shard.groups) expect(group.lag).toBe(0);
      }
    } finally {
      await aggregator?.stop();
      await archiver.stop();
      await ingest.close();
      client.disconnect();
    }
  }, 120_000);
});
