/**
 * What moving a catch-up lane's chunk into its stream (admitCatchup.lua)
 * costs Redis: a lane of 100 entries of 1000 readings (1000 nodes each, an
 * hour-old round of a 10,000-node fleet, appended by ReadingLog as ingest
 * does while the aggregator is behind), then one chunk of
 * AGGREGATOR_CATCHUP_READINGS' default (50,000) moved, `rounds` times on a
 * throw-away server. Redis' time is INFO commandstats' for the script (it
 * holds every other client meanwhile); the client's, the round trip's.
 *
 *   node test/bench/laneMove.ts [rounds=8]
 */
import { CATCHUP, GROUPS, loadConfig, ManualClock, type Reading, shardKeys } from '@streamgauge/core';
import { ReadingLog, StreamConsumer } from '@streamgauge/redis';
import { RedisServer } from '@streamgauge/testkit';
import { Redis } from 'ioredis';

const rounds = Number(process.argv[2] ?? 8);
const now = Date.UTC(2026, 10, 20, 12, 0, 0);
const server = await RedisServer.start();
const redis = new Redis(server.url);
const shard = shardKeys(0, 1);
const log = new ReadingLog(redis, {
  ...loadConfig({ REDIS_URL: server.url }).stream,
  clock: new ManualClock(now),
});
const consumer = new StreamConsumer(redis, () => new Redis(server.url), {
  group: GROUPS.aggregator,
  consumer: 'bench',
  count: 500,
  blockMs: 50,
  catchup: { readings: 50_000 },
});
const redisMs: number[] = [];
const clientMs: number[] = [];
try {
  for (let round = 0; round < rounds; round++) {
    await redis.flushdb();
    // Behind: the lane takes late readings.
    await redis.xgroup('CREATE', shard.stream, GROUPS.aggregator, '0', 'MKSTREAM');
    for (let i = 0; i < CATCHUP.gateEntries; i++) {
      await log.append([{ node_id: `F${i}`, timestamp: now, flow_rate: i }], 'bench');
    }
    for (let e = 0; e < 100; e++) {
      const at = now - 3_600_000 + Math.floor(e / 10) * 10_000;
      const batch: Reading[] = Array.from({ length: 1000 }, (_, i) => ({
        node_id: `G${(e % 10) * 1000 + i}`,
        timestamp: at,
        flow_rate: i / 10,
        pressure: 3.1,
        temperature: 12.3,
      }));
      await log.append(batch, 'bench');
    }
    // Caught up: the move may go.
    const read = (await redis.xreadgroup('GROUP', GROUPS.aggregator, 'c', 'STREAMS', shard.stream, '>')) as
      | [string, [string, string[]][]][]
      | null;
    const ids = (read?.[0]?.[1] ?? []).map(([id]) => id);
    if (ids.length > 0) await redis.xack(shard.stream, GROUPS.aggregator, ...ids);
    await redis.config('RESETSTAT');
    const started = performance.now();
    const moved = await consumer.admit(shard);
    clientMs.push(performance.now() - started);
    if (moved !== 50_000) throw new Error(`moved ${moved} readings, not 50,000`);
    // EVAL the first time (the script loaded), EVALSHA after.
    const scripts = (await redis.info('commandstats'))
      .split('\n')
      .filter((l) => l.startsWith('cmdstat_eval'));
    redisMs.push(scripts.reduce((sum, l) => sum + Number(/usec=(\d+)/.exec(l)?.[1] ?? 0), 0) / 1000);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  console.log({
    chunkReadings: 50_000,
    redisMsMedian: median(redisMs),
    redisMs: redisMs.map((ms) => Math.round(ms * 10) / 10),
    clientMsMedian: Math.round(median(clientMs) * 10) / 10,
  });
} finally {
  consumer.close();
  redis.disconnect();
  await server.dispose();
}
