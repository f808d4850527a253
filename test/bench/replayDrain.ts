/**
 * Replay to the aggregator: fills the stream with N readings for K nodes
 * (entries of `perEntry` readings), lets the aggregator apply them, then
 * times a replay of the whole stream (every entry handed back, claimed,
 * recognised as applied, acknowledged, its nodes' keys rewritten).
 * Run: node test/bench/replayDrain.ts [readings] [nodes] [readings per entry (1000)]
 */
import { startAggregator } from '@streamgauge/aggregator';
import { GROUPS, loadConfig, ManualClock, shardKeys } from '@streamgauge/core';
import { StreamReplay } from '@streamgauge/redis';
import { RedisServer, waitForAggregator } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { benchLog, fillLog } from './lib/streams.ts';

export async function replayDrain(total: number, nodes: number, perEntry = 1000) {
  const server = await RedisServer.start();
  const redis = new Redis(server.url);
  try {
    const now = Date.now();
    const log = benchLog(redis, new ManualClock(now));
    await fillLog(log, { total, nodes, now, perEntry });
    const claimIdleMs = 200;
    const config = loadConfig({ REDIS_URL: server.url, AGGREGATOR_CLAIM_IDLE_MS: String(claimIdleMs) });
    const aggregator = await startAggregator(config, pino({ level: 'silent' }));
    await waitForAggregator(redis, 1, 600_000);
    const started = performance.now();
    const replay = new StreamReplay(
      redis,
      shardKeys(0, 1),
      { group: GROUPS.aggregator, from: '-', to: '+' },
      'bench',
    );
    const done = await replay.run(claimIdleMs);
    const handedBack = performance.now();
    while ((await replay.remaining(done)) > 0) await new Promise((r) => setTimeout(r, 20));
    const finished = performance.now();
    const stats = await redis.hgetall(shardKeys(0, 1).aggregateStats);
    await aggregator.stop();
    return {
      readings: total,
      nodes,
      entries: done.replayed,
      handBackSeconds: (handedBack - started) / 1000,
      readingsPerSecond: Math.round(total / ((finished - started) / 1000)),
      replayedCounted: Number(stats.replayed),
      appliedCounted: Number(stats.applied),
    };
  } finally {
    redis.disconnect();
    await server.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const total = Number(process.argv[2] ?? 200_000);
  const nodes = Number(process.argv[3] ?? 1000);
  const perEntry = Number(process.argv[4] ?? 1000);
  console.log({ perEntry, ...(await replayDrain(total, nodes, perEntry)) });
}
