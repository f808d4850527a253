import { allShardKeys, horizonStart, loadConfig, seededRandom } from '@streamgauge/core';
import { type RunningIngest, startIngest } from '@streamgauge/ingest';
import {
  checkReadModel,
  type Dataset,
  generateDataset,
  type TestRedis,
  testRedis,
  waitForAggregator,
} from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postReadings } from '../support/postReadings.ts';
import { ServiceProcess } from '../support/serviceProcess.ts';

let redis: TestRedis;
let client: Redis;
const processes = new Set<ServiceProcess>();
let ingest: RunningIngest | undefined;
/** What the aggregators logged at warn or above, shown when a test fails. */
const output: string[] = [];

beforeAll(async () => {
  redis = await testRedis();
  client = new Redis(redis.url);
});
afterEach(async () => {
  await Promise.all([...processes].map((p) => p.kill()));
  processes.clear();
  await ingest?.close();
  ingest = undefined;
  await redis.flush();
  output.length = 0;
});
afterAll(async () => {
  client.disconnect();
  await redis.close();
});

/** Short leases and claims: a killed replica's shards move on within about a second. */
function env(shards: number, consumer: string): Record<string, string> {
  return {
    REDIS_URL: redis.url,
    STREAM_SHARDS: String(shards),
    AGGREGATOR_CONSUMER: consumer,
    AGGREGATOR_LEASE_MS: '900',
    AGGREGATOR_CLAIM_IDLE_MS: '2000',
  };
}

async function spawnAggregator(shards: number, consumer: string): Promise<ServiceProcess> {
  const aggregator = await ServiceProcess.start({
    env: env(shards, consumer),
    onOutput: (line) => output.push(`[${consumer}] ${line}`),
  });
  processes.add(aggregator);
  return aggregator;
}

async function kill(aggregator: ServiceProcess): Promise<void> {
  await aggregator.kill();
  processes.delete(aggregator);
}

/** Every key equals the independent computation; every entry was counted exactly once. */
async function expectExact(data: Dataset, now: number, shards: number): Promise<{ redelivered: number }> {
  await waitForAggregator(client, shards, 120_000);
  const problems = await checkReadModel(client, data.unique, {
    ttlSeconds: 24 * 3600,
    horizonStart: horizonStart(now),
  });
  expect(
    problems.slice(0, 20),
    `${problems.length} differences; aggregator output:\n${output.join('\n')}`,
  ).toEqual([]);
  let entries = 0;
  let applied = 0;
  let redelivered = 0;
  let streamLength = 0;
  for (const shard of allShardKeys(shards)) {
    const stats = await client.hgetall(shard.aggregateStats);
    entries += Number(stats.entries ?? 0);
    applied += Number(stats.applied ?? 0);
    redelivered += Number(stats.redelivered ?? 0);
    streamLength += await client.xlen(shard.stream);
  }
  // Counters advance in the same script as the XACK: equal counts mean each entry applied once.
  expect(entries).toBe(streamLength);
  expect(applied).toBe(data.unique.length - data.tooLate);
  return { redelivered };
}

describe('aggregators killed with SIGKILL', () => {
  it('end equal to the independent computation after 10 kills at random moments during 200k readings', async () => {
    const now = Date.now();
    const data = generateDataset({ nodes: 210, days: 7, intervalMs: 10 * 60_000, now, seed: 404 });
    expect(data.sent.length).toBeGreaterThanOrEqual(200_000);
    const config = loadConfig({
      REDIS_URL: redis.url,
      INGEST_HOST: '127.0.0.1',
      INGEST_PORT: '0',
      INGEST_AUTH: 'off',
    });
    ingest = await startIngest(config, pino({ level: 'silent' }));
    let aggregator = await spawnAggregator(1, 'crashy');

    // Ten rounds: a tenth of the readings goes through ingest while the
    // aggregator is frozen, so it has work in hand when it thaws; it is
    // killed at a random moment while working through it, and restarted.
    const random = seededRandom(Number(process.env.FAULT_SEED ?? 1234));
    const round = Math.ceil(data.sent.length / 10);
    let accepted = 0;
    let duplicates = 0;
    for (let kills = 0; kills < 10; kills++) {
      aggregator.pause();
      const sent = await postReadings(ingest.url, data.sent.slice(kills * round, (kills + 1) * round));
      accepted += sent.accepted;
      duplicates += sent.duplicates;
      aggregator.resume();
      await new Promise((r) => setTimeout(r, 30 + random() * 300));
      await kill(aggregator);
      aggregator = await spawnAggregator(1, 'crashy');
    }
    expect({ accepted, duplicates }).toEqual({
      accepted: data.unique.length,
      duplicates: data.sent.length - data.unique.length,
    });
    const { redelivered } = await expectExact(data, now, 1);
    // The kills did land mid-batch: entries read and never acknowledged were delivered again.
    expect(redelivered).toBeGreaterThan(0);
  }, 300_000);

  it('3 replicas over 8 shards, one killed mid-run, end equal to the independent computation', async () => {
    const now = Date.now();
    const data = generateDataset({ nodes: 120, days: 7, intervalMs: 20 * 60_000, now, seed: 808 });
    const config = loadConfig({
      REDIS_URL: redis.url,
      INGEST_HOST: '127.0.0.1',
      INGEST_PORT: '0',
      INGEST_AUTH: 'off',
      STREAM_SHARDS: '8',
    });
    ingest = await startIngest(config, pino({ level: 'silent' }));
    const replicas = await Promise.all(['a', 'b', 'c'].map((name) => spawnAggregator(8, name)));
    // Let the three settle on their shares before the kill.
    const holders = async () =>
      Promise.all(allShardKeys(8).map(async (s) => (await client.get(s.lease))?.split('/')[0]));
    // Balanced: every shard held (none in the middle of a handover), 3-3-2.
    const balanced = async () => {
      const held = await holders();
      return (
        held.every((h) => h !== undefined) &&
        ['a', 'b', 'c'].every((r) => held.filter((h) => h === r).length >= 2)
      );
    };
    for (let i = 0; i < 200 && !(await balanced()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await balanced(), `shard holders: ${(await holders()).join(', ')}`).toBe(true);

    const half = Math.floor(data.sent.length / 2);
    const first = await postReadings(ingest.url, data.sent.slice(0, half));
    const [victim] = replicas;
    if (victim) await kill(victim);
    const second = await postReadings(ingest.url, data.sent.slice(half));
    expect(first.accepted + second.accepted).toBe(data.unique.length);

    await expectExact(data, now, 8);
    // The survivors took over the dead replica's shards and settle on four each.
    const settled = async () => {
      const held = await holders();
      return held.filter((h) => h === 'b').length === 4 && held.filter((h) => h === 'c').length === 4;
    };
    for (let i = 0; i < 100 && !(await settled()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await settled(), `shard holders: ${(await holders()).join(', ')}`).toBe(true);
  }, 180_000);
});
