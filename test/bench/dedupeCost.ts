/**
 * Redis time of ingest's append script per reading once the dedupe hashes
 * hold what a steady stream leaves in them: `nodes` nodes send one reading
 * every `interval` seconds, in requests of 1000 (one reading a node, as a
 * gateway polling them sends). A first hour fills the hashes; the second is
 * timed (INFO commandstats: the script with the commands it runs).
 * Run: node test/bench/dedupeCost.ts [nodes=1000] [interval seconds=10]
 */
import { ManualClock, type Reading } from '@streamgauge/core';
import { RedisServer } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { benchLog } from './lib/streams.ts';

const HOUR = 3_600_000;

export async function dedupeCost(nodes: number, intervalSeconds: number) {
  const server = await RedisServer.start();
  const redis = new Redis(server.url);
  try {
    const start = Date.UTC(2026, 10, 25, 10);
    const rounds = HOUR / (intervalSeconds * 1000);
    const log = benchLog(redis, new ManualClock(start + 2 * HOUR));
    await log.prepare();
    const ids = Array.from({ length: nodes }, (_, i) => `N${i}`);
    const round = async (r: number) => {
      let batch: Reading[] = [];
      for (const node_id of ids) {
        batch.push({ node_id, timestamp: start + r * intervalSeconds * 1000, flow_rate: r });
        if (batch.length === 1000) {
          await log.append(batch, 'bench');
          batch = [];
        }
      }
      if (batch.length > 0) await log.append(batch, 'bench');
      // The stream is not what is measured: keep it short.
      if (r % 50 === 0) await redis.del('readings');
    };
    for (let r = 0; r < rounds; r++) await round(r);
    await redis.config('RESETSTAT');
    for (let r = rounds; r < 2 * rounds; r++) await round(r);
    const calls = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(await redis.info('commandstats'));
    return {
      nodes,
      intervalSeconds,
      scriptMicrosPerReading: Number((Number(calls?.[2]) / (rounds * nodes)).toFixed(3)),
    };
  } finally {
    redis.disconnect();
    await server.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await dedupeCost(Number(process.argv[2] ?? 1000), Number(process.argv[3] ?? 10)));
}
