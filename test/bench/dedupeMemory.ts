/**
 * Redis memory the dedupe layout costs per node: appends a full dedupe
 * horizon (48 h) of readings for a sample of nodes at a given interval and
 * reads used_memory before and after.
 * Run: node test/bench/dedupeMemory.ts [interval seconds…] (10, 60 and 900 by default)
 */
import { ManualClock, type Reading } from '@streamgauge/core';
import { RedisServer } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { benchLog } from './lib/streams.ts';

const NODES = 200;

export async function dedupeBytesPerNode(intervalSeconds: number): Promise<{ total: number; keys: number }> {
  const server = await RedisServer.start();
  const redis = new Redis(server.url);
  try {
    const now = Date.UTC(2026, 10, 25, 12);
    const log = benchLog(redis, new ManualClock(now));
    // The stream itself is not part of the dedupe cost: drop it as we go.
    const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
    const before = await used();
    const perNode = (48 * 3600) / intervalSeconds;
    for (let node = 0; node < NODES; node++) {
      const readings: Reading[] = [];
      for (let i = 0; i < perNode; i++) {
        readings.push({ node_id: `NODE${node}`, timestamp: now - i * intervalSeconds * 1000, flow_rate: 1 });
        if (readings.length === 5000) await log.append(readings.splice(0), 'bench');
      }
      if (readings.length) await log.append(readings, 'bench');
      await redis.del('readings');
    }
    const after = await used();
    return { total: (after - before) / NODES, keys: await redis.dbsize() };
  } finally {
    redis.disconnect();
    await server.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const intervals = process.argv.slice(2).map(Number);
  for (const interval of intervals.length > 0 ? intervals : [10, 60, 900]) {
    const { total, keys } = await dedupeBytesPerNode(interval);
    console.log(
      `one reading per ${interval} s: ${(total / 1024).toFixed(1)} KiB per node (${keys} keys for ${NODES} nodes), ${(total / ((48 * 3600) / interval)).toFixed(1)} bytes per reading`,
    );
  }
}
