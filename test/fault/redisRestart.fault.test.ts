import { startAggregator } from '@streamgauge/aggregator';
import { horizonStart, loadConfig, type Reading, systemClock } from '@streamgauge/core';
import { startIngest } from '@streamgauge/ingest';
import { ReadingLog } from '@streamgauge/redis';
import { checkReadModel, generateDataset, RedisServer, waitForAggregator } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { postReadings } from '../support/postReadings.ts';

describe('the aggregator across a Redis restart', () => {
  it('resumes by itself and ends equal to the independent computation, nothing counted twice', async () => {
    // AOF with fsync on every write: what Redis acknowledged survives its crash.
    const server = await RedisServer.start({ appendfsync: 'always' });
    const client = new Redis(server.url, { maxRetriesPerRequest: null });
    client.on('error', () => {});
    const now = Date.now();
    const data = generateDataset({ nodes: 10, days: 7, intervalMs: 10 * 60_000, now, seed: 99 });
    const config = loadConfig({
      REDIS_URL: server.url,
      AGGREGATOR_READ_COUNT: '5',
      AGGREGATOR_BLOCK_MS: '100',
    });
    const log = new ReadingLog(client, { ...config.stream, clock: systemClock });
    const aggregator = await startAggregator(config, pino({ level: process.env.FAULT_LOG ?? 'silent' }));
    try {
      const half = Math.floor(data.sent.length / 2);
      for (let i = 0; i < half; i += 100) await log.append(data.sent.slice(i, i + 100), 'fault');
      // Redis dies while the aggregator is working through the first half.
      await server.kill();
      await new Promise((r) => setTimeout(r, 2_000));
      await server.start();
      for (let i = half; i < data.sent.length; i += 100)
        await log.append(data.sent.slice(i, i + 100), 'fault');
      await waitForAggregator(client, 1, 60_000);
      const problems = await checkReadModel(client, data.unique, {
        ttlSeconds: config.cacheTtlSeconds,
        horizonStart: horizonStart(now),
      });
      expect(problems.slice(0, 20)).toEqual([]);
      const stats = await client.hgetall('agg:{readings}:stats');
      expect(Number(stats.entries)).toBe(await client.xlen('readings'));
      expect(Number(stats.applied)).toBe(data.unique.length - data.tooLate);
    } finally {
      await aggregator.stop().catch(() => {});
      client.disconnect();
      await server.dispose();
    }
  }, 120_000);

  it('ingest answers 503 while Redis is stopped, every service resumes by itself, every 200 is kept', async () => {
    const server = await RedisServer.start({ appendfsync: 'always' });
    const client = new Redis(server.url, { maxRetriesPerRequest: null });
    client.on('error', () => {});
    const now = Date.now();
    const data = generateDataset({ nodes: 20, days: 7, intervalMs: 10 * 60_000, now, seed: 7 });
    const config = loadConfig({
      REDIS_URL: server.url,
      INGEST_HOST: '127.0.0.1',
      INGEST_PORT: '0',
      INGEST_AUTH: 'off',
      INGEST_REDIS_TIMEOUT_MS: '1000',
      AGGREGATOR_BLOCK_MS: '100',
      AGGREGATOR_CLAIM_IDLE_MS: '1000',
    });
    const silent = pino({ level: process.env.FAULT_LOG ?? 'silent' });
    const aggregator = await startAggregator(config, silent);
    const ingest = await startIngest(config, silent);
    const statuses = new Map<number, number>();
    const post = (readings: readonly Reading[]) =>
      postReadings(ingest.url, readings, { batch: 200, resendUnavailable: true, statuses });
    try {
      let stopped = false;
      const outage = (async () => {
        await new Promise((r) => setTimeout(r, 300));
        await server.stop();
        stopped = true;
        await new Promise((r) => setTimeout(r, 3_000));
        await server.start();
      })();
      for (let i = 0; i < data.sent.length; i += 200) {
        // A gateway resends a request answered 503 until it gets a 200.
        await post(data.sent.slice(i, i + 200));
        // Keep sending through the outage, but do not finish before it.
        if (!stopped) await new Promise((r) => setTimeout(r, 5));
      }
      await outage;
      expect(statuses.get(503) ?? 0).toBeGreaterThan(0);

      // Nobody restarted ingest or the aggregator: they found Redis again
      // themselves, and well before the 30 s command watchdog would have
      // ended a read left hanging by the drop.
      await waitForAggregator(client, 1, 20_000);
      const problems = await checkReadModel(client, data.unique, {
        ttlSeconds: config.cacheTtlSeconds,
        horizonStart: horizonStart(now),
      });
      const stats = await client.hgetall('agg:{readings}:stats');
      expect(problems.slice(0, 20)).toEqual([]);
      expect(Number(stats.entries)).toBe(await client.xlen('readings'));
      expect(Number(stats.applied)).toBe(data.unique.length - data.tooLate);
      const health = await fetch(`${ingest.url}/readyz`);
      expect(health.status).toBe(200);
    } finally {
      await ingest.close().catch(() => {});
      await aggregator.stop().catch(() => {});
      client.disconnect();
      await server.dispose();
    }
  }, 120_000);
});
