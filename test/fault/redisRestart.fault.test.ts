import { startAggregator } from '@streamgauge/aggregator';
import { horizonStart, loadConfig, systemClock } from '@streamgauge/core';
import { ReadingLog } from '@streamgauge/redis';
import { checkReadModel, generateDataset, RedisServer, waitForAggregator } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';

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
});
