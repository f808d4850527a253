/**
 * Aggregator alone: fills the stream with N readings for K nodes (entries of
 * 1000 readings, as ingest writes them), then times the group draining it:
 * readings/s, the aggregator's CPU and Redis' (INFO cpu) per reading.
 * Run: node test/bench/aggregatorDrain.ts [readings] [nodes] [readings per entry (1000)]
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { startAggregator } from '@streamgauge/aggregator';
import { loadConfig, ManualClock } from '@streamgauge/core';
import { RedisServer, waitForAggregator } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { benchLog, fillLog } from './lib/streams.ts';

export async function aggregatorDrain(total: number, nodes: number, url?: string, perEntry = 1000) {
  const server = url ? undefined : await RedisServer.start();
  const redisUrl = url ?? (server as RedisServer).url;
  const redis = new Redis(redisUrl);
  try {
    await redis.flushdb();
    // A fixed instant, for the log and the aggregator alike: the detectors
    // judge readings by their time of day, so readings stamped from the wall
    // clock opened between 700 and 20,000 anomalies a round from one minute to
    // the next, and the warm round's cost with them.
    const now = Date.UTC(2026, 10, 20, 12, 0, 0);
    const log = benchLog(redis, new ManualClock(now));
    const fill = (round: number) => fillLog(log, { total, nodes, now, round, perEntry });
    const config = loadConfig({ ...process.env, REDIS_URL: redisUrl });
    // Round 0: every node is new (cold). Round 1: the same nodes again, after a
    // restart that loads their state (steady state). Each round is timed from
    // the aggregator's start (state loaded, keys rewritten) until drained.
    // Redis' own CPU (INFO cpu: its main thread and the rest of the server), seconds.
    const redisCpu = async () => {
      const info = await redis.info('cpu');
      const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? Number.NaN);
      return field('used_cpu_user') + field('used_cpu_sys');
    };
    // BENCH_CPU_PROF_DIR: a CPU profile of each drain alone (the fill is not in it).
    // BENCH_HEAP_PROF_DIR: a sampling profile of what each drain allocates,
    // garbage included (what the collector's time is spent on).
    const profileDir = process.env.BENCH_CPU_PROF_DIR;
    const heapDir = process.env.BENCH_HEAP_PROF_DIR;
    const profiled = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
      if (!profileDir && !heapDir) return work();
      const session = new Session();
      session.connect();
      if (profileDir) {
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      }
      if (heapDir) {
        await session.post('HeapProfiler.enable');
        await session.post('HeapProfiler.startSampling', {
          samplingInterval: 16_384,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        });
      }
      try {
        return await work();
      } finally {
        if (profileDir) {
          const { profile } = await session.post('Profiler.stop');
          await mkdir(profileDir, { recursive: true });
          await writeFile(`${profileDir}/aggregatorDrain-${name}.cpuprofile`, JSON.stringify(profile));
        }
        if (heapDir) {
          const { profile } = await session.post('HeapProfiler.stopSampling');
          await mkdir(heapDir, { recursive: true });
          await writeFile(`${heapDir}/aggregatorDrain-${name}.heapprofile`, JSON.stringify(profile));
        }
        session.disconnect();
      }
    };
    const drain = async () => {
      const redisBefore = await redisCpu();
      const started = performance.now();
      const aggregator = await startAggregator(
        config,
        process.env.BENCH_LOG
          ? pino({ level: 'info' }, pino.destination(process.env.BENCH_LOG))
          : pino({ level: 'silent' }),
        // The clock stands still while it drains.
        { clock: new ManualClock(now) },
      );
      const loaded = performance.now();
      const cpu = process.cpuUsage();
      await waitForAggregator(redis, 1, 600_000);
      const finished = performance.now();
      const used = process.cpuUsage(cpu);
      const redisUsed = (await redisCpu()) - redisBefore;
      await aggregator.stop();
      // The aggregator runs in this process: its CPU while it drains, ioredis included (Redis' own is not).
      return {
        load: (loaded - started) / 1000,
        apply: (finished - loaded) / 1000,
        cpu: used.user + used.system,
        // From the aggregator's start (its state loaded and keys rewritten) until drained.
        redisCpu: redisUsed * 1e6,
      };
    };
    await fill(0);
    const cold = await profiled('cold', drain);
    await fill(1);
    const warm = await profiled('warm', drain);
    return {
      readings: total,
      nodes,
      coldPerSecond: Math.round(total / cold.apply),
      warmPerSecond: Math.round(total / warm.apply),
      coldCpuMicrosPerReading: Number((cold.cpu / total).toFixed(2)),
      warmCpuMicrosPerReading: Number((warm.cpu / total).toFixed(2)),
      coldRedisCpuMicrosPerReading: Number((cold.redisCpu / total).toFixed(2)),
      warmRedisCpuMicrosPerReading: Number((warm.redisCpu / total).toFixed(2)),
      stateLoadSeconds: warm.load,
    };
  } finally {
    redis.disconnect();
    await server?.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const total = Number(process.argv[2] ?? 200_000);
  const nodes = Number(process.argv[3] ?? 1000);
  const perEntry = Number(process.argv[4] ?? 1000);
  console.log({ perEntry, ...(await aggregatorDrain(total, nodes, undefined, perEntry)) });
}
