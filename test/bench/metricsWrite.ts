/**
 * A full metrics round's keys through ReadModelWriter, client side: for N
 * nodes, every range's window evaluated, its metrics hash and the node's
 * `latest` built, queued and flushed to a throw-away Redis; this process's
 * CPU per node. Each hash built two ways, alternated round by round in one
 * run: as a record (metricsHash, latestHash) and packed (PackedHash, what
 * the aggregator writes; skipped on a tree without it, to compare with one
 * from before). A third figure is the windows' evaluation alone, which both
 * include. Medians over the rounds.
 *
 *   node test/bench/metricsWrite.ts [nodes=5000] [rounds=8]
 */
import * as core from '@streamgauge/core';
import { RANGES, type Range, type RedisConfig } from '@streamgauge/core';
import { connectRedis, ReadModelWriter } from '@streamgauge/redis';
import { RedisServer } from '@streamgauge/testkit';
import { filledWindows } from './lib/readings.ts';

const nodes = Number(process.argv[2] ?? 5000);
const rounds = Number(process.argv[3] ?? 8);
const start = Date.UTC(2026, 10, 1);
const STEP = 60_000;
// A day at one reading a minute: every range's window has panes to merge.
const PER_NODE = 1440;

const { windows: all, now } = filledWindows(nodes, PER_NODE, start, STEP);

const server = await RedisServer.start();
const redis = connectRedis({ url: server.url } as RedisConfig, { name: 'bench' });
const writer = new ReadModelWriter(redis, 86_400);
const cpu = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

type Mode = 'record' | 'packed' | 'evaluate only';
// Looked up, not imported by name: the bench also runs on a tree from before packed hashes.
const packed = {
  metrics: (core as Partial<typeof core>).packedMetrics as typeof core.packedMetrics,
  latest: (core as Partial<typeof core>).packedLatest as typeof core.packedLatest,
};
const modes: readonly Mode[] =
  packed.metrics === undefined ? ['record', 'evaluate only'] : ['record', 'packed', 'evaluate only'];
async function round(mode: Mode): Promise<number> {
  const at = cpu();
  for (const windows of all) {
    if (mode === 'evaluate only') {
      for (const range of RANGES) windows.evaluate(range, now);
      continue;
    }
    const metrics = new Map<Range, Record<string, string> | core.PackedHash>();
    for (const range of RANGES) {
      const summary = windows.evaluate(range, now);
      metrics.set(range, mode === 'packed' ? packed.metrics(summary, now) : core.metricsHash(summary, now));
    }
    const latest = windows.latest;
    writer.writeNode({
      nodeId: windows.nodeId,
      metrics,
      ...(latest && { latest: mode === 'packed' ? packed.latest(latest) : core.latestHash(latest) }),
    });
  }
  if (mode !== 'evaluate only') await writer.flush();
  return (cpu() - at) / nodes;
}

const figures = new Map<Mode, number[]>(modes.map((mode) => [mode, []]));
try {
  // A round of each first, not counted: the JIT and Redis' script cache.
  for (const mode of modes) await round(mode);
  for (let r = 0; r < rounds; r++) {
    for (const mode of modes) figures.get(mode)?.push(await round(mode));
  }
} finally {
  redis.disconnect();
  await server.dispose();
}
const median = (values: number[]) =>
  Number(([...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number).toFixed(2));
console.log({
  nodes,
  rounds,
  clientMicrosPerNode: Object.fromEntries([...figures].map(([mode, v]) => [mode, median(v)])),
});
