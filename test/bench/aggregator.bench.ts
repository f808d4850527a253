import { writeFileSync } from 'node:fs';
import { readModelKeys } from '@streamgauge/core';
import { waitForAggregator } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { ServiceProcess } from '../support/serviceProcess.ts';
import { aggregatorDrain } from './aggregatorDrain.ts';
import { CpuMeter, type CpuTarget } from './lib/cpu.ts';
import { FreshnessLoad, postReadings } from './lib/freshness.ts';
import { IngestProcess } from './lib/ingestProcess.ts';
import { closedLoop } from './lib/load.ts';
import { formatBytes, processMemory } from './lib/memory.ts';
import { BENCH_DISTRICT, ReadingSource } from './lib/readings.ts';
import { LatencyRecorder } from './lib/stats.ts';
import type { SuiteContext } from './lib/types.ts';
import { BenchFailure } from './lib/types.ts';

export const SUITE = 'aggregator';

/**
 * The aggregator: end to end (HTTP batches → ingest → stream → aggregator →
 * keys written) with 1k and 10k nodes; freshness (HTTP 200 → visible in
 * `node:{id}:latest`) at an offered 20k readings/s; the dashboard's overview
 * read; and the aggregator alone draining a filled stream, cold and warm.
 * Ingest and the aggregator run as separate processes, as in production.
 */
export async function aggregatorBench(context: SuiteContext): Promise<void> {
  for (const nodes of [1_000, 10_000]) await endToEnd(context, nodes);
  await freshness(context, 1_000, 20_000);
  await overview(context, 1_000);
  for (const nodes of [1_000, 10_000]) {
    await context.redis.flush();
    const total = nodes === 1_000 ? 200_000 : 400_000;
    context.log(`aggregator alone: ${total} readings, ${nodes} nodes`);
    const drained = await aggregatorDrain(total, nodes, context.redis.url);
    for (const [phase, rate, cpu, redisCpu] of [
      [
        'cold: every node new',
        drained.coldPerSecond,
        drained.coldCpuMicrosPerReading,
        drained.coldRedisCpuMicrosPerReading,
      ],
      [
        'warm: restart, state loaded',
        drained.warmPerSecond,
        drained.warmCpuMicrosPerReading,
        drained.warmRedisCpuMicrosPerReading,
      ],
    ] as const) {
      const cost = `CPU a reading: aggregator ${cpu} µs, Redis ${redisCpu} µs`;
      context.record({
        suite: SUITE,
        case: `aggregator alone, ${nodes} nodes, ${phase}`,
        batch: 1000,
        seconds: total / rate,
        readings: total,
        requests: total / 1000,
        readingsPerSec: rate,
        requestsPerSec: rate / 1000,
        notes: phase.startsWith('warm')
          ? [cost, `state load ${drained.stateLoadSeconds.toFixed(2)} s (not in the rate)`]
          : [cost],
      });
    }
  }
}

interface Services {
  readonly ingest: IngestProcess;
  readonly aggregator: ServiceProcess;
  readonly token: string;
  readonly targets: CpuTarget[];
  stop(): Promise<void>;
}

async function startServices(context: SuiteContext): Promise<Services> {
  await context.redis.flush();
  const log = (line: string) => context.log(`[service] ${line}`);
  const aggregator = await ServiceProcess.start({
    env: { REDIS_URL: context.redis.url },
    onOutput: log,
    nodeArgs: context.options.aggregatorNodeArgs,
    ...(context.options.cpuProfDir !== undefined && { cpuProfDir: context.options.cpuProfDir }),
  });
  const ingest = await IngestProcess.start({ redisUrl: context.redis.url, onOutput: log });
  // (BENCH_CPU_PROF_DIR profiles the aggregator here; the ingest suite profiles ingest.)
  const token = await ingest.addGateway('bench', BENCH_DISTRICT);
  const targets: CpuTarget[] = [
    { name: 'ingest', pid: ingest.pid },
    { name: 'aggregator', pid: aggregator.pid },
    { name: 'bench', pid: 'self' },
  ];
  if (context.redis.pid !== undefined) targets.push({ name: 'redis', pid: context.redis.pid });
  return {
    ingest,
    aggregator,
    token,
    targets,
    async stop() {
      await ingest.stop();
      await aggregator.stop();
    },
  };
}

const post = postReadings;

/**
 * The freshness cases also report the probes sent after this much of the
 * window: its first seconds carry one-off work (every node's first live
 * readings, the clock's first sweep, the first full metrics round) that a
 * running deployment does not do (docs/benchmarks.md, "Reads before writes").
 */
const SETTLED_AFTER_MS = 5_000;

/** HTTP batches of 1000 for a timed window, then until the group has applied everything. */
async function endToEnd(context: SuiteContext, nodes: number): Promise<void> {
  const services = await startServices(context);
  const source = new ReadingSource({ nodes });
  const pool = new Pool(services.ingest.url, { connections: 4, keepAliveTimeout: 60_000 });
  try {
    // Every node known before the window: this measures the steady state, not node creation.
    for (let i = 0; i < nodes; i += 1000) await post(pool, services.token, source.nextBody(1000), 1000);
    await waitForAggregator(context.redis.client, 1, 120_000);
    const before = source.taken;
    context.log(`end to end, ${nodes} nodes: ${context.options.seconds} s of HTTP batches of 1000`);
    const cpu = new CpuMeter(services.targets);
    cpu.start();
    const started = performance.now();
    const sent = await closedLoop({
      next: () => source.nextBody(1000),
      concurrency: 4,
      durationMs: context.options.seconds * 1000,
      call: (body) => post(pool, services.token, body, 1000),
    });
    if (sent.failures > 0) throw new BenchFailure(`requests failed: ${sent.failureSamples.join('; ')}`);
    const sendSeconds = (performance.now() - started) / 1000;
    await waitForAggregator(context.redis.client, 1, 300_000);
    const seconds = (performance.now() - started) / 1000;
    const usage = cpu.stop();
    const readings = sent.completed * 1000;
    const stats = await context.redis.client.hgetall('agg:{readings}:stats');
    if (Number(stats.applied) !== source.taken) {
      throw new BenchFailure(`the aggregator applied ${stats.applied} readings, ${source.taken} were sent`);
    }
    const [p50, p99] = sent.latency.percentiles(50, 99);
    context.record({
      suite: SUITE,
      case: `end to end, ${nodes} nodes, HTTP batch 1000 → keys written`,
      batch: 1000,
      concurrency: 4,
      seconds,
      readings,
      requests: sent.completed,
      readingsPerSec: readings / seconds,
      requestsPerSec: sent.completed / seconds,
      ...(p50 !== undefined && { p50Ms: p50 }),
      ...(p99 !== undefined && { p99Ms: p99 }),
      cpu: usage,
      notes: [
        `ingest alone took them at ${Math.round(readings / sendSeconds).toLocaleString('en')} readings/s; ` +
          `the group drained ${(seconds - sendSeconds).toFixed(2)} s after the last 200 (${before} warm-up readings not counted)`,
      ],
    });
  } finally {
    await pool.close();
    await services.stop();
  }
}

/**
 * Open loop at `rate` readings/s in requests of `rate / 100` every 10 ms
 * (FreshnessLoad): each request carries one probe reading, whose freshness is
 * the time from the HTTP 200 to the moment `node:{probe}:latest` shows it.
 * The scale suite runs it at 50k/s.
 */
export async function freshness(
  context: SuiteContext,
  nodes: number,
  rate: number,
  suite: string = SUITE,
  windowSeconds: number = context.options.seconds,
  history = 1,
): Promise<void> {
  const services = await startServices(context);
  // A live fleet: each node's readings newer than the last, `nodes / rate` s
  // apart, so that every one moves `latest` and is examined by the detectors,
  // their time keeping up with the clock (a minute behind once the history
  // is in).
  if (nodes * 1000 < rate) {
    throw new BenchFailure(`freshness: ${nodes} nodes cannot take ${rate} readings/s at most one a ms each`);
  }
  const stepMs = Math.round((1000 * nodes) / rate);
  const source = new ReadingSource({
    nodes,
    forward: true,
    stepMs,
    anchorMs: Date.now() - 60_000 - (history - 1) * stepMs,
  });
  const pool = new Pool(services.ingest.url, { connections: 16, keepAliveTimeout: 60_000 });
  const load = new FreshnessLoad({
    redisUrl: context.redis.url,
    pool,
    token: services.token,
    source,
    rate,
  });
  try {
    for (let i = 0; i < nodes; i += 1000) await post(pool, services.token, source.nextBody(1000), 1000);
    // `history` readings a node before the window (1: each node new to the
    // detectors, their warm-up of 100 readings and the σ window's growth in
    // the window; 150 or more: a fleet in its steady state).
    const historyLeft = (history - 1) * nodes;
    if (historyLeft > 0) {
      context.log(`freshness: ${history} readings a node before the window`);
      const stop = source.taken + historyLeft;
      const loaded = await closedLoop({
        next: () => {
          const count = Math.min(1000, stop - source.taken);
          return count > 0 ? { count, body: source.nextBody(count) } : undefined;
        },
        concurrency: 4,
        durationMs: Number.POSITIVE_INFINITY,
        call: ({ count, body }) => post(pool, services.token, body, count),
      });
      if (loaded.failures > 0)
        throw new BenchFailure(`freshness: history: ${loaded.failureSamples.join('; ')}`);
    }
    await waitForAggregator(context.redis.client, 1, 120_000 + historyLeft / 10);

    context.log(`freshness: offered ${rate} readings/s for ${windowSeconds} s`);
    await context.redis.resetStats();
    const cpu = new CpuMeter(services.targets);
    cpu.start();
    const started = performance.now();
    const end = started + windowSeconds * 1000;
    await load.run(() => performance.now() >= end);
    await waitForAggregator(context.redis.client, 1, 60_000);
    const result = await load.settle();
    const seconds = (performance.now() - started) / 1000;
    const usage = cpu.stop();
    const redisCommands = await context.redis.commandStats();
    // The aggregator's peak resident size over its life (nodes posted, the window, the drain).
    const aggregatorPeak = processMemory(services.aggregator.pid)?.peak;
    if (result.failures > 0 || result.unresolved > 0) {
      throw new BenchFailure(
        `${result.failures} requests failed, ${result.unresolved} probes never became visible`,
      );
    }
    const [p50, p99] = result.latencies.percentiles(50, 99);
    const settled = load.percentilesAfter(SETTLED_AFTER_MS, 50, 99);
    // BENCH_FRESHNESS_TRACE=<file>: every probe's time sent and freshness, to see where the tail falls.
    const tracePath = process.env.BENCH_FRESHNESS_TRACE;
    if (tracePath) writeFileSync(tracePath, load.traceCsv());
    context.record({
      suite,
      case: `freshness at offered ${rate.toLocaleString('en')} readings/s, ${nodes} nodes (HTTP 200 → latest)`,
      batch: load.perRequest,
      seconds,
      readings: result.readings,
      requests: result.requests,
      readingsPerSec: result.readings / seconds,
      requestsPerSec: result.requests / seconds,
      ...(p50 !== undefined && { p50Ms: p50 }),
      ...(p99 !== undefined && { p99Ms: p99 }),
      cpu: usage,
      redisCommands,
      notes: [
        `${result.latencies.count} probes`,
        settled.count === 0
          ? `no probe sent after the first ${SETTLED_AFTER_MS / 1000} s`
          : `after the first ${SETTLED_AFTER_MS / 1000} s (${settled.count} probes): p50 ${settled.values[0]?.toFixed(1)} ms, p99 ${settled.values[1]?.toFixed(1)} ms`,
        `aggregator peak RSS (VmHWM) ${aggregatorPeak === undefined ? '-' : formatBytes(aggregatorPeak)}`,
      ],
    });
  } finally {
    load.close();
    await pool.close();
    await services.stop();
  }
}

/**
 * What a dashboard's overview costs: 1000 nodes' `latest` and `metrics:24h`
 * plus `system:metrics:24h`, in one pipeline, from a fresh client.
 */
async function overview(context: SuiteContext, nodes: number): Promise<void> {
  const client = new Redis(context.redis.url);
  try {
    const ids = (await client.lrange(readModelKeys.nodesAll, 0, -1)).slice(0, nodes);
    if (ids.length < nodes) throw new BenchFailure(`only ${ids.length} nodes listed; expected ${nodes}`);
    const latencies = new LatencyRecorder();
    const started = performance.now();
    let rounds = 0;
    while (performance.now() - started < context.options.seconds * 1000) {
      const t0 = performance.now();
      const pipeline = client.pipeline();
      for (const id of ids)
        pipeline.hgetall(readModelKeys.nodeLatest(id)).hgetall(readModelKeys.nodeMetrics(id, '24h'));
      pipeline.hgetall(readModelKeys.systemMetrics('24h'));
      const replies = (await pipeline.exec()) ?? [];
      if (replies.length !== 2 * nodes + 1 || replies.some(([error]) => error)) {
        throw new BenchFailure('an overview read failed');
      }
      latencies.add(performance.now() - t0);
      rounds++;
    }
    const seconds = (performance.now() - started) / 1000;
    const [p50, p99] = latencies.percentiles(50, 99);
    context.record({
      suite: SUITE,
      case: `dashboard overview read: ${nodes} × (latest + metrics:24h) + system:metrics:24h`,
      seconds,
      readings: rounds,
      requests: rounds,
      readingsPerSec: rounds / seconds,
      requestsPerSec: rounds / seconds,
      ...(p50 !== undefined && { p50Ms: p50 }),
      ...(p99 !== undefined && { p99Ms: p99 }),
      notes: ['readings/s column: overview reads per second', `${2 * nodes + 1} keys per read, one pipeline`],
    });
  } finally {
    client.disconnect();
  }
}
