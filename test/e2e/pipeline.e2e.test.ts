import { startAggregator } from '@streamgauge/aggregator';
import { horizonStart, loadConfig } from '@streamgauge/core';
import { startIngest } from '@streamgauge/ingest';
import { GatewayRegistry } from '@streamgauge/redis';
import {
  checkReadModel,
  generateDataset,
  type TestRedis,
  testRedis,
  waitForAggregator,
} from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** A gateway loading 30 days at once: not held to the default rates. */
const BULK_LOAD = { readingsPerSecond: 0, requestsPerSecond: 0 };

let redis: TestRedis;
let client: Redis;

beforeAll(async () => {
  redis = await testRedis();
  await redis.flush();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client.disconnect();
  await redis.close();
});

describe('readings through HTTP to the dashboard keys', () => {
  it('ends with every key of every node and range equal to the independent computation', async () => {
    const now = Date.now();
    // 40 nodes over 30 days, one reading per 20 minutes: out of order, late by
    // hours to days, duplicated (some altered), with gaps, partial measurements
    // and pressure-only nodes.
    const data = generateDataset({ nodes: 40, days: 30, intervalMs: 20 * 60_000, now, seed: 2026 });
    const config = loadConfig({ REDIS_URL: redis.url, INGEST_HOST: '127.0.0.1', INGEST_PORT: '0' });
    const silent = pino({ level: 'silent' });
    const aggregator = await startAggregator(config, silent);
    const ingest = await startIngest(config, silent);
    const { token } = await new GatewayRegistry(client, { now: () => Date.now() }).add(
      'e2e',
      {
        kind: 'district',
        district: 'SELARGIUS',
      },
      BULK_LOAD,
    );

    let accepted = 0;
    let duplicates = 0;
    let rejected = 0;
    const body = (i: number) =>
      JSON.stringify(
        data.sent.slice(i, i + 500).map((r) => ({ ...r, timestamp: new Date(r.timestamp).toISOString() })),
      );
    for (let i = 0; i < data.sent.length; i += 500) {
      const response = await fetch(`${ingest.url}/v1/readings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: body(i),
      });
      expect(response.status).toBe(200);
      const reply = (await response.json()) as { accepted: number; duplicates: number; rejected: unknown[] };
      accepted += reply.accepted;
      duplicates += reply.duplicates;
      rejected += reply.rejected.length;
    }
    expect({ accepted, duplicates, rejected }).toEqual({
      accepted: data.unique.length,
      duplicates: data.sent.length - data.unique.length,
      rejected: 0,
    });

    await waitForAggregator(client, 1, 120_000);
    const problems = await checkReadModel(client, data.unique, {
      ttlSeconds: config.cacheTtlSeconds,
      horizonStart: horizonStart(now),
    });
    expect(problems.slice(0, 30), `${problems.length} differences`).toEqual([]);

    await ingest.close();
    await aggregator.stop();
  }, 180_000);
});
