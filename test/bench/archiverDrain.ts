/**
 * The archiver alone: fills the stream with N readings of K nodes (entries
 * of 1000, as ingest writes them, each reading as the e2e case's load sends
 * it), then times `startArchiver` draining it into a fresh DuckDB file;
 * then R - 1 rounds more of as many new readings into the same file (a
 * table that grows: whether a reading costs more as it does). Readings/s,
 * and the process' CPU a reading (DuckDB's threads included; the fill is
 * not counted), each round.
 * BENCH_CPU_PROF_DIR: a CPU profile of each drain.
 * Run: node test/bench/archiverDrain.ts [readings=400000] [nodes=10000] [rounds=2]
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArchiver } from '@streamgauge/archiver';
import { GROUPS, loadConfig, ManualClock, shardKeys } from '@streamgauge/core';
import { RedisServer, waitForDrain } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ReadingSource } from './lib/readings.ts';
import { benchLog } from './lib/streams.ts';

const total = Number(process.argv[2] ?? 400_000);
const nodes = Number(process.argv[3] ?? 10_000);
const rounds = Number(process.argv[4] ?? 2);
const perEntry = 1000;

const server = await RedisServer.start();
const redis = new Redis(server.url);
const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-archiver-drain-'));
try {
  const now = Date.UTC(2026, 10, 20, 12, 0, 0);
  const log = benchLog(redis, new ManualClock(now));
  const source = new ReadingSource({ nodes, anchorMs: now - 3_600_000, forward: true });
  const fill = async () => {
    for (let i = 0; i < total; i += perEntry)
      await log.append(source.nextReadings(perEntry), 'bench-gateway');
  };
  const config = loadConfig({ ...process.env, REDIS_URL: server.url, DATA_DIR: dataDir });
  const profileDir = process.env.BENCH_CPU_PROF_DIR;
  const drain = async (name: string) => {
    const session = profileDir ? new Session() : undefined;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const started = performance.now();
    const cpu = process.cpuUsage();
    const archiver = await startArchiver(config, pino({ level: 'silent' }));
    await waitForDrain(redis, [shardKeys(0, 1).stream], GROUPS.archiver, 600_000);
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    await archiver.stop();
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(`${profileDir}/archiverDrain-${name}.cpuprofile`, JSON.stringify(profile));
      session.disconnect();
    }
    return {
      perSecond: Math.round(total / seconds),
      cpuMicrosPerReading: Number(((used.user + used.system) / total).toFixed(2)),
    };
  };
  for (let round = 1; round <= rounds; round++) {
    await fill();
    console.log({ round, readings: total, nodes, ...(await drain(`round${round}`)) });
  }
} finally {
  redis.disconnect();
  await server.dispose();
  rmSync(dataDir, { recursive: true, force: true });
}
