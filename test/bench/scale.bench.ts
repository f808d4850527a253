import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  allShardKeys,
  compareEntryIds,
  GROUPS,
  loadConfig,
  type Reading,
  readModelKeys,
  systemClock,
} from '@streamgauge/core';
import { catchupBacklog, ReadingLog } from '@streamgauge/redis';
import { freePort, metricValue, scrapeMetrics, waitForAggregator, waitForDrain } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { ServiceProcess } from '../support/serviceProcess.ts';
import { freshness } from './aggregator.bench.ts';
import { CpuMeter, type CpuTarget } from './lib/cpu.ts';
import { FreshnessLoad, postReadings } from './lib/freshness.ts';
import { addGateway, IngestProcess } from './lib/ingestProcess.ts';
import { closedLoop } from './lib/load.ts';
import { formatBytes, memoryOfKeys, processMemory, usedMemory } from './lib/memory.ts';
import { RAW_STREAM, rawXaddPipelineCase } from './lib/rawXadd.ts';
import { BENCH_DISTRICT, ReadingSource } from './lib/readings.ts';
import { fillLog } from './lib/streams.ts';
import { BenchFailure, type SuiteContext } from './lib/types.ts';
import { appendThirtyDays } from './scaling.bench.ts';

export const SUITE = 'scale';

const CASES = ['drain', 'bytes', 'e2e', 'fresh', 'deploy', 'catchup'] as const;
type CaseName = (typeof CASES)[number];

const GB = 2 ** 30;
const SHARD = allShardKeys(1)[0] as ReturnType<typeof allShardKeys>[number];
const STREAM = SHARD.stream;

/**
 * The engine at the scale issue 16 aims for, through public entry points only
 * (the CLI as child processes, the readings log, the read-model keys), so it
 * runs against any implementation of the aggregator's storage:
 *
 * - drain: 100,000 nodes × 10 readings waiting in the log, one
 *   `streamgauge aggregate` with default settings: drain time, peak RSS,
 *   Redis memory, bytes per node; a timeout and memory limits instead of a hang.
 * - bytes: 30 days × 1/min for 200 nodes: Redis bytes per node (agg:* and
 *   node:* keys) and the aggregator process's memory per node.
 * - e2e: 10,000 nodes over HTTP in batches of 1000, `streamgauge start` and
 *   separate processes, accepted and applied readings/s next to the raw
 *   per-reading XADD of the same run.
 * - fresh: freshness p50/p99 at 50k readings/s offered, at least 20 s (and after its first 5 s).
 * - deploy: the brief's large deployment, 100,000 nodes at a reading every
 *   10 s (10,000/s offered), for at least 75 s so that a minute boundary
 *   (the clock's sweep over every node) falls inside: freshness p50/p99.
 * - catchup: a fleet's hour of readings appended at once while live readings
 *   arrive: the absorb rate and the live readings' freshness meanwhile.
 *
 * BENCH_SCALE_CASES picks cases (comma-separated); every case runs even when
 * an earlier one fails, and the suite fails at the end if any did.
 */
export async function scaleBench(context: SuiteContext): Promise<void> {
  const selected = casesFromEnv();
  const failures: string[] = [];
  const run: Record<CaseName, (context: SuiteContext) => Promise<string | undefined>> = {
    drain,
    bytes,
    e2e,
    fresh,
    deploy,
    catchup,
  };
  for (const name of selected) {
    await context.redis.flush();
    try {
      const problem = await run[name](context);
      if (problem !== undefined) failures.push(`${name}: ${problem}`);
    } catch (error) {
      const message =
        error instanceof BenchFailure ? error.message : ((error as Error).stack ?? String(error));
      context.log(`scale / ${name} FAILED: ${message}`);
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  if (failures.length > 0) throw new BenchFailure(failures.join('; '));
}

function casesFromEnv(): CaseName[] {
  const raw = process.env.BENCH_SCALE_CASES?.trim();
  if (!raw) return [...CASES];
  const names = raw.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !(CASES as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new BenchFailure(
      `BENCH_SCALE_CASES: unknown case(s) ${unknown.join(', ')}; known: ${CASES.join(', ')}`,
    );
  }
  return names as CaseName[];
}

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new BenchFailure(`${name}: expected a positive number, got ${raw}`);
  return value;
}

const timeoutSeconds = () => envNumber('BENCH_SCALE_TIMEOUT_SECONDS', 600);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes: number | undefined) => (bytes === undefined ? null : Math.round(bytes / 2 ** 20));
const sum = (map: Readonly<Record<string, number>>, keys: readonly string[]) =>
  keys.reduce((total, key) => total + (map[key] ?? 0), 0);

function cpuNote(usage: Readonly<Record<string, number>>): string {
  return `CPU % of a core: ${Object.entries(usage)
    .map(([name, value]) => `${name} ${value.toFixed(0)}`)
    .join(', ')}`;
}

async function appliedCount(redis: Redis): Promise<number> {
  let total = 0;
  for (const shard of allShardKeys(1))
    total += Number((await redis.hget(shard.aggregateStats, 'applied')) ?? 0);
  return total;
}

interface GroupState {
  readonly pending: number;
  readonly lag: number | null;
  readonly delivered: string | undefined;
  readonly last: string | undefined;
}

/** The aggregator group's position on the stream (XINFO GROUPS / STREAM). */
async function groupState(redis: Redis, group: string): Promise<GroupState> {
  const flat = (list: unknown[]) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = list[i + 1];
    return out;
  };
  const groups = ((await redis.xinfo('GROUPS', STREAM).catch(() => [])) as unknown[][]).map(flat);
  const info = groups.find((g) => g.name === group);
  const stream = flat(((await redis.xinfo('STREAM', STREAM).catch(() => [])) as unknown[]) ?? []);
  return {
    pending: Number(info?.pending ?? Number.NaN),
    lag: info?.lag === null || info?.lag === undefined ? null : Number(info.lag),
    delivered: info?.['last-delivered-id'] as string | undefined,
    last: stream['last-generated-id'] as string | undefined,
  };
}

/**
 * 1. 100,000 nodes × 10 readings (BENCH_SCALE_DRAIN_NODES, _READINGS) in the
 * log (ReadingLog.append, entries of 1000), then one `streamgauge aggregate`
 * with default settings, until the group has read and acknowledged every
 * entry, `nodes:all` lists every node and a sample of 100 nodes' `latest`
 * exists. Stopped (and reported as such) after BENCH_SCALE_TIMEOUT_SECONDS,
 * when the aggregator's RSS passes BENCH_SCALE_RSS_LIMIT_GB (12) or Redis's
 * used_memory BENCH_SCALE_REDIS_LIMIT_GB (8).
 */
async function drain(context: SuiteContext): Promise<string | undefined> {
  const nodes = Math.round(envNumber('BENCH_SCALE_DRAIN_NODES', 100_000));
  const perNode = Math.round(envNumber('BENCH_SCALE_DRAIN_READINGS', 10));
  const timeout = timeoutSeconds();
  const rssLimit = envNumber('BENCH_SCALE_RSS_LIMIT_GB', 12) * GB;
  const redisLimit = envNumber('BENCH_SCALE_REDIS_LIMIT_GB', 8) * GB;
  const total = nodes * perNode;
  const client = context.redis.client;
  const label = `drain: ${nodes.toLocaleString('en')} nodes × ${perNode} readings, one aggregate process, default settings`;
  const log = new ReadingLog(client, {
    ...loadConfig({ REDIS_URL: context.redis.url }).stream,
    clock: systemClock,
  });

  const memoryEmpty = await usedMemory(client);
  context.log(`${label}: appending ${total.toLocaleString('en')} readings`);
  const appendStarted = performance.now();
  await fillLog(log, { total, nodes, now: Date.now() });
  const appendSeconds = (performance.now() - appendStarted) / 1000;
  const memoryFilled = await usedMemory(client);

  const warnings: string[] = [];
  let warningCount = 0;
  const started = performance.now();
  const aggregator = await ServiceProcess.start({
    env: { REDIS_URL: context.redis.url, METRICS_PORT: '0', AGGREGATOR_CONSUMER: 'bench-drain' },
    onOutput: (line) => {
      warningCount++;
      if (warnings.length < 5) warnings.push(line.slice(0, 300));
    },
  });
  let exitCode: number | null | undefined;
  void aggregator.exited.then((code) => {
    exitCode = code;
  });
  const targets: CpuTarget[] = [{ name: 'aggregator', pid: aggregator.pid }];
  if (context.redis.pid !== undefined) targets.push({ name: 'redis', pid: context.redis.pid });
  const cpu = new CpuMeter(targets);
  cpu.start();
  const rssAtStart = processMemory(aggregator.pid)?.rss ?? Number.NaN;
  const sample = Array.from({ length: 100 }, (_, i) => `N${Math.floor((i * nodes) / 100)}`);
  sample.push(`N${nodes - 1}`);

  let outcome: string | undefined;
  let drainedAfter: number | undefined;
  let state: GroupState = { pending: Number.NaN, lag: null, delivered: undefined, last: undefined };
  let listed = 0;
  let peakRedisUsed = memoryFilled;
  let aggregatorPeak = 0;
  let aggregatorRss = 0;
  let lastProgress = performance.now();
  for (;;) {
    const elapsed = (performance.now() - started) / 1000;
    const memory = processMemory(aggregator.pid);
    if (memory !== undefined) {
      aggregatorPeak = Math.max(aggregatorPeak, memory.peak);
      aggregatorRss = memory.rss;
    }
    const redisUsed = await usedMemory(client);
    peakRedisUsed = Math.max(peakRedisUsed, redisUsed);
    state = await groupState(client, 'aggregator');
    listed = await client.llen(readModelKeys.nodesAll);
    if (state.pending === 0 && state.delivered === state.last && listed >= nodes) {
      const exists = await Promise.all(sample.map((id) => client.exists(readModelKeys.nodeLatest(id))));
      if (exists.every((e) => e === 1)) {
        drainedAfter = elapsed;
        break;
      }
    }
    if (exitCode !== undefined || memory === undefined) {
      outcome = `the aggregator exited (code ${exitCode}) after ${elapsed.toFixed(0)} s`;
      break;
    }
    if (memory.rss > rssLimit) {
      outcome = `stopped: aggregator RSS ${formatBytes(memory.rss)} passed the ${formatBytes(rssLimit)} limit after ${elapsed.toFixed(0)} s`;
      break;
    }
    if (redisUsed > redisLimit) {
      outcome = `stopped: Redis used_memory ${formatBytes(redisUsed)} passed the ${formatBytes(redisLimit)} limit after ${elapsed.toFixed(0)} s`;
      break;
    }
    if (elapsed > timeout) {
      outcome = `did not drain in ${timeout} s`;
      break;
    }
    if (performance.now() - lastProgress > 15_000) {
      lastProgress = performance.now();
      context.log(
        `drain: ${elapsed.toFixed(0)} s, applied ${await appliedCount(client)}, pending ${state.pending}, lag ${state.lag}, ` +
          `nodes:all ${listed}, aggregator RSS ${formatBytes(memory.rss)}, Redis ${formatBytes(redisUsed)}, ${warningCount} warnings`,
      );
    }
    await sleep(500);
  }
  const usage = cpu.stop();
  const applied = await appliedCount(client);
  const memoryAfter = await usedMemory(client);
  const redisPeak = context.redis.pid === undefined ? undefined : processMemory(context.redis.pid)?.peak;
  const benchPeak = processMemory('self')?.peak;
  if (outcome === undefined) await aggregator.stop();
  else await aggregator.kill().catch(() => {});
  const seconds = drainedAfter ?? (performance.now() - started) / 1000;
  const notes = [
    outcome === undefined
      ? `drained in ${seconds.toFixed(1)} s`
      : `FAILED: ${outcome}: applied ${applied.toLocaleString('en')} of ${total.toLocaleString('en')} readings, pending ${state.pending}, lag ${state.lag}, nodes:all ${listed}`,
    `appended in ${appendSeconds.toFixed(1)} s (${Math.round(total / appendSeconds).toLocaleString('en')} readings/s through ReadingLog.append)`,
    `peak RSS (VmHWM): aggregator ${formatBytes(aggregatorPeak)}, redis ${formatBytes(redisPeak ?? Number.NaN)} (over the whole run), bench ${formatBytes(benchPeak ?? Number.NaN)}`,
    `Redis used_memory: empty ${formatBytes(memoryEmpty)}, log filled ${formatBytes(memoryFilled)}, after ${formatBytes(memoryAfter)} (peak seen ${formatBytes(peakRedisUsed)})`,
    `per node: Redis ${formatBytes((memoryAfter - memoryFilled) / nodes)} (used_memory after − log filled), ` +
      `aggregator RSS ${formatBytes((aggregatorRss - rssAtStart) / nodes)} (last RSS ${formatBytes(aggregatorRss)} − at start ${formatBytes(rssAtStart)})`,
    `${warningCount} warning/error lines from the aggregator${warnings.length > 0 ? `, first: ${warnings[0]}` : ''}`,
    cpuNote(usage),
  ];
  context.record({
    suite: SUITE,
    case: label,
    batch: 1000,
    seconds,
    readings: applied,
    requests: total / 1000,
    readingsPerSec: outcome === undefined ? total / seconds : Number.NaN,
    requestsPerSec: outcome === undefined ? total / 1000 / seconds : Number.NaN,
    cpu: usage,
    notes,
    figures: {
      outcome: outcome ?? 'drained',
      drainSeconds: drainedAfter ?? null,
      readingsOffered: total,
      readingsApplied: applied,
      nodesListed: listed,
      pending: state.pending,
      lag: state.lag,
      appendSeconds,
      aggregatorPeakRssMB: mb(aggregatorPeak),
      aggregatorRssMB: mb(aggregatorRss),
      redisPeakRssMB: mb(redisPeak),
      benchPeakRssMB: mb(benchPeak),
      redisUsedMemoryEmptyMB: mb(memoryEmpty),
      redisUsedMemoryFilledMB: mb(memoryFilled),
      redisUsedMemoryAfterMB: mb(memoryAfter),
      redisBytesPerNode: Math.round((memoryAfter - memoryFilled) / nodes),
      aggregatorRssBytesPerNode: Math.round((aggregatorRss - rssAtStart) / nodes),
      aggregatorWarnings: warningCount,
    },
  });
  return outcome;
}

/**
 * 2. 30 days × 1 reading/min for BENCH_SCALE_BYTES_NODES (200) nodes through
 * a `streamgauge aggregate` process: Redis bytes per node of the aggregator's
 * state (agg:* keys) and of the dashboard keys (node:* keys), MEMORY USAGE
 * summed; and the process's memory per node (RSS and V8 heap + external from
 * its /metrics), after the drain and after a restart, against the same
 * process idle before any reading.
 */
async function bytes(context: SuiteContext): Promise<string | undefined> {
  const nodes = Math.round(envNumber('BENCH_SCALE_BYTES_NODES', 200));
  const client = context.redis.client;
  const label = `bytes per node: ${nodes} nodes × 30 days × 1 reading/min`;
  const startAggregator = async () => {
    const port = await freePort();
    const service = await ServiceProcess.start({
      env: { REDIS_URL: context.redis.url, METRICS_PORT: String(port), METRICS_HOST: '127.0.0.1' },
      onOutput: (line) => context.log(`[aggregator] ${line.slice(0, 300)}`),
    });
    return { process: service, metricsUrl: `http://127.0.0.1:${port}/metrics` };
  };
  const measure = async (running: { process: ServiceProcess; metricsUrl: string }) => {
    await sleep(3_000);
    const samples = await scrapeMetrics(running.metricsUrl).catch(() => []);
    const heap = metricValue(samples, 'nodejs_heap_size_used_bytes');
    const external = metricValue(samples, 'nodejs_external_memory_bytes');
    return {
      rss: processMemory(running.process.pid)?.rss ?? Number.NaN,
      heap: heap === undefined ? Number.NaN : heap + (external ?? 0),
    };
  };

  let running = await startAggregator();
  let idle: { rss: number; heap: number };
  let drained: { rss: number; heap: number };
  let restarted: { rss: number; heap: number };
  const started = performance.now();
  let perNode: number;
  try {
    idle = await measure(running);
    context.log(`${label}: appending (the aggregator reads meanwhile)`);
    perNode = await appendThirtyDays(client, nodes);
    await waitForAggregator(client, 1, timeoutSeconds() * 1000);
    drained = await measure(running);
  } finally {
    await running.process.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  running = await startAggregator();
  try {
    restarted = await measure(running);
  } finally {
    await running.process.stop();
  }
  const state = await memoryOfKeys(client, 'agg:*');
  const dashboard = await memoryOfKeys(client, 'node:*');
  const kb = (value: number) => Math.round(value / nodes / 102.4) / 10;
  context.record({
    suite: SUITE,
    case: label,
    seconds,
    readings: perNode * nodes,
    requests: 0,
    readingsPerSec: (perNode * nodes) / seconds,
    requestsPerSec: 0,
    notes: [
      `Redis KB per node: aggregator state (agg:*, ${state.keys} keys) ${kb(state.bytes)}, dashboard keys (node:*, ${dashboard.keys} keys) ${kb(dashboard.bytes)}, total ${kb(state.bytes + dashboard.bytes)}`,
      `aggregator KB per node after the drain: RSS ${kb(drained.rss - idle.rss)}, heap+external ${kb(drained.heap - idle.heap)}; ` +
        `after a restart: RSS ${kb(restarted.rss - idle.rss)}, heap+external ${kb(restarted.heap - idle.heap)} (idle: RSS ${formatBytes(idle.rss)}, heap+external ${formatBytes(idle.heap)})`,
      'readings/s: appended and drained together, from the first append to the drain',
    ],
    figures: {
      readingsPerNode: perNode,
      redisStateKBPerNode: kb(state.bytes),
      redisDashboardKBPerNode: kb(dashboard.bytes),
      redisTotalKBPerNode: kb(state.bytes + dashboard.bytes),
      aggregatorRssKBPerNodeDrained: kb(drained.rss - idle.rss),
      aggregatorHeapKBPerNodeDrained: kb(drained.heap - idle.heap),
      aggregatorRssKBPerNodeRestarted: kb(restarted.rss - idle.rss),
      aggregatorHeapKBPerNodeRestarted: kb(restarted.heap - idle.heap),
      aggregatorIdleRssMB: mb(idle.rss),
    },
  });
  return undefined;
}

/**
 * 3. End to end at 10,000 nodes (BENCH_SCALE_E2E_NODES), HTTP batches of
 * 1000, 4 in flight, for BENCH_SECONDS: `streamgauge start` (ingest,
 * aggregator and archiver in one process), then the three as separate
 * processes. Accepted = readings answered 200 per second; applied = the
 * aggregator's `applied` counter's growth over the same window. Next to them,
 * the raw per-reading pipelined XADD of the same run.
 */
async function e2e(context: SuiteContext): Promise<string | undefined> {
  const nodes = Math.round(envNumber('BENCH_SCALE_E2E_NODES', 10_000));
  const rawSource = new ReadingSource({ nodes });
  const jsons = Array.from({ length: 10_000 }, () => rawSource.nextJson());
  const rawTargets: CpuTarget[] = [{ name: 'bench', pid: 'self' }];
  if (context.redis.pid !== undefined) rawTargets.push({ name: 'redis', pid: context.redis.pid });
  const raw = await rawXaddPipelineCase(context, SUITE, jsons, rawTargets);
  context.record(raw);
  await context.redis.client.del(RAW_STREAM);
  // BENCH_SCALE_E2E_LAYOUTS: `start`, `separate` or both (default), to repeat one layout's runs.
  const layouts = (process.env.BENCH_SCALE_E2E_LAYOUTS ?? 'start,separate').split(',');
  for (const layout of (['start', 'separate'] as const).filter((l) => layouts.includes(l))) {
    await context.redis.flush();
    await e2eLayout(context, layout, nodes, raw.readingsPerSec);
  }
  return undefined;
}

async function e2eLayout(
  context: SuiteContext,
  layout: 'start' | 'separate',
  nodes: number,
  rawPerSecond: number,
): Promise<void> {
  const client = context.redis.client;
  const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-scale-'));
  const onOutput = (line: string) => {
    if (line.startsWith('{')) context.log(`[${layout}] ${line.slice(0, 300)}`);
  };
  const stops: (() => Promise<unknown>)[] = [];
  const targets: CpuTarget[] = [];
  let ingestUrl: string;
  const { cpuProfDir } = context.options;
  const profiled = cpuProfDir !== undefined ? { cpuProfDir } : {};
  try {
    if (layout === 'start') {
      const port = await freePort();
      const start = await ServiceProcess.start({
        command: 'start',
        env: {
          REDIS_URL: context.redis.url,
          INGEST_PORT: String(port),
          INGEST_HOST: '127.0.0.1',
          INGEST_AUTH: 'on',
          // A bench sends from one gateway to the nodes it introduces itself (as IngestProcess).
          INGEST_NEW_NODES_PER_HOUR: '1000000',
          DATA_DIR: dataDir,
          STREAM_SHARDS: '1',
          LOG_LEVEL: 'warn',
        },
        onOutput,
        ...profiled,
      });
      stops.push(() => start.stop());
      targets.push({ name: 'start', pid: start.pid });
      ingestUrl = `http://127.0.0.1:${port}`;
    } else {
      const env = { REDIS_URL: context.redis.url, METRICS_PORT: '0', DATA_DIR: dataDir, STREAM_SHARDS: '1' };
      const aggregator = await ServiceProcess.start({ env, onOutput, ...profiled });
      stops.push(() => aggregator.stop());
      const archiver = await ServiceProcess.start({ command: 'archive', env, onOutput, ...profiled });
      stops.push(() => archiver.stop());
      const ingest = await IngestProcess.start({ redisUrl: context.redis.url, onOutput, cpuProfDir });
      stops.unshift(() => ingest.stop());
      targets.push(
        { name: 'ingest', pid: ingest.pid },
        { name: 'aggregator', pid: aggregator.pid },
        { name: 'archiver', pid: archiver.pid },
      );
      ingestUrl = ingest.url;
    }
    targets.push({ name: 'bench', pid: 'self' });
    if (context.redis.pid !== undefined) targets.push({ name: 'redis', pid: context.redis.pid });
    const token = await addGateway(context.redis.url, 'bench', BENCH_DISTRICT);
    // Each node's readings newer than the last (moving `latest`, examined by
    // the detectors), 10 ms apart from a minute ago: at 50,000/s over 10,000
    // nodes their time gains 50 ms a second, so they fall behind the clock
    // and turn late (CATCHUP, 5 min) only after about four minutes, and get
    // ahead of it only past 1M readings/s.
    const source = new ReadingSource({ nodes, forward: true, stepMs: 10 });
    const pool = new Pool(ingestUrl, { connections: 4, keepAliveTimeout: 60_000 });
    try {
      for (let i = 0; i < nodes; i += 1000) await postReadings(pool, token, source.nextBody(1000), 1000);
      await waitForAggregator(client, 1, 300_000);
      context.log(`e2e (${layout}), ${nodes} nodes: ${context.options.seconds} s of HTTP batches of 1000`);
      const appliedBefore = await appliedCount(client);
      const cpu = new CpuMeter(targets);
      cpu.start();
      const started = performance.now();
      const sent = await closedLoop({
        next: () => source.nextBody(1000),
        concurrency: 4,
        durationMs: context.options.seconds * 1000,
        call: (body) => postReadings(pool, token, body, 1000),
      });
      const window = (performance.now() - started) / 1000;
      const applied = (await appliedCount(client)) - appliedBefore;
      const usage = cpu.stop();
      if (sent.failures > 0) throw new BenchFailure(`requests failed: ${sent.failureSamples.join('; ')}`);
      await waitForAggregator(client, 1, timeoutSeconds() * 1000);
      const aggregatorDrained = (performance.now() - started) / 1000 - window;
      await waitForDrain(client, [STREAM], GROUPS.archiver, timeoutSeconds() * 1000);
      const archiverDrained = (performance.now() - started) / 1000 - window;
      const accepted = (sent.completed * 1000) / window;
      const appliedRate = applied / window;
      const [p50, p99] = sent.latency.percentiles(50, 99);
      const services = layout === 'start' ? ['start'] : ['ingest', 'aggregator', 'archiver'];
      context.record({
        suite: SUITE,
        case: `e2e ${layout === 'start' ? '`streamgauge start`' : 'ingest + aggregate + archive processes'}, ${nodes} nodes, HTTP batch 1000: applied`,
        batch: 1000,
        concurrency: 4,
        seconds: window,
        readings: applied,
        requests: sent.completed,
        readingsPerSec: appliedRate,
        requestsPerSec: sent.completed / window,
        ...(p50 !== undefined && { p50Ms: p50 }),
        ...(p99 !== undefined && { p99Ms: p99 }),
        cpu: usage,
        notes: [
          `accepted ${Math.round(accepted).toLocaleString('en')} readings/s, applied ${Math.round(appliedRate).toLocaleString('en')}/s in the same window; ` +
            `applied/raw ${(appliedRate / rawPerSecond).toFixed(3)}, accepted/raw ${(accepted / rawPerSecond).toFixed(3)} (raw per-reading XADD ${Math.round(rawPerSecond).toLocaleString('en')}/s)`,
          `after the window the aggregator drained in ${aggregatorDrained.toFixed(1)} s, the archiver in ${archiverDrained.toFixed(1)} s`,
          `${cpuNote(usage)} (services together ${sum(usage, services).toFixed(0)})`,
        ],
        figures: {
          acceptedPerSec: Math.round(accepted),
          appliedPerSec: Math.round(appliedRate),
          rawXaddPerSec: Math.round(rawPerSecond),
          appliedOverRaw: appliedRate / rawPerSecond,
          acceptedOverRaw: accepted / rawPerSecond,
          aggregatorDrainSecondsAfter: aggregatorDrained,
          archiverDrainSecondsAfter: archiverDrained,
        },
      });
    } finally {
      await pool.close();
    }
  } finally {
    for (const stop of stops) await stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * 4. The aggregator suite's freshness case at 50k readings/s offered
 * (BENCH_SCALE_FRESH_RATE, _NODES), for at least 20 s (BENCH_SECONDS if
 * longer): its first ~5 s are one-off work, and the steady state after them
 * is the figure the goal is about. BENCH_SCALE_FRESH_HISTORY readings a node
 * go in before the window (1: the nodes are new to the detectors, whose
 * warm-up then falls in the window; 150: past every detector's warm-up).
 */
async function fresh(context: SuiteContext): Promise<string | undefined> {
  const rate = Math.round(envNumber('BENCH_SCALE_FRESH_RATE', 50_000));
  const nodes = Math.round(envNumber('BENCH_SCALE_FRESH_NODES', 10_000));
  const history = Math.max(1, Math.round(envNumber('BENCH_SCALE_FRESH_HISTORY', 1)));
  await freshness(context, nodes, rate, SUITE, Math.max(20, context.options.seconds), history);
  return undefined;
}

/**
 * 4b. The large deployment's shape (BENCH_SCALE_DEPLOY_NODES, 100,000; one
 * reading every 10 s each), at least 75 s (BENCH_SECONDS if longer).
 */
async function deploy(context: SuiteContext): Promise<string | undefined> {
  const nodes = Math.round(envNumber('BENCH_SCALE_DEPLOY_NODES', 100_000));
  await freshness(context, nodes, Math.round(nodes / 10), SUITE, Math.max(75, context.options.seconds));
  return undefined;
}

/**
 * 5. Catch-up: BENCH_SCALE_CATCHUP_NODES (10,000) gateways' nodes come back
 * after BENCH_SCALE_CATCHUP_HOURS (1) offline with a reading every 10 s
 * each (3.6M readings), appended as fast as the log takes them (entries of
 * 1000, 4 appends in flight, each node's readings in event-time order), while
 * live readings of other nodes keep arriving over HTTP at
 * BENCH_SCALE_CATCHUP_LIVE_RATE (1000/s) with freshness probes. Readings
 * more than five minutes old go to the shard's catch-up lane once the
 * aggregator is behind (CATCHUP), the newer ones to the stream. Absorbed:
 * once everything is appended, the lane is empty, the aggregator has
 * written the keys of every entry up to the stream's last one at that
 * moment, and the last catch-up entry's nodes show their last reading in
 * `latest`.
 */
async function catchup(context: SuiteContext): Promise<string | undefined> {
  const nodes = Math.round(envNumber('BENCH_SCALE_CATCHUP_NODES', 10_000));
  const hours = envNumber('BENCH_SCALE_CATCHUP_HOURS', 1);
  const liveRate = Math.round(envNumber('BENCH_SCALE_CATCHUP_LIVE_RATE', 1000));
  const rounds = Math.round((hours * 3600) / 10);
  const total = rounds * nodes;
  const client = context.redis.client;
  const label = `catch-up: ${nodes.toLocaleString('en')} nodes × ${hours} h at 1/10 s (${total.toLocaleString('en')} readings), live ${liveRate.toLocaleString('en')}/s`;
  const aggregator = await ServiceProcess.start({
    env: { REDIS_URL: context.redis.url, METRICS_PORT: '0' },
    onOutput: (line) => context.log(`[aggregator] ${line.slice(0, 300)}`),
    // BENCH_CPU_PROF_DIR: the aggregator's profile while it absorbs the backlog.
    ...(context.options.cpuProfDir !== undefined && { cpuProfDir: context.options.cpuProfDir }),
  });
  const ingest = await IngestProcess.start({
    redisUrl: context.redis.url,
    onOutput: (line) => context.log(`[ingest] ${line}`),
  });
  const appender = new Redis(context.redis.url);
  const pool = new Pool(ingest.url, { connections: 16, keepAliveTimeout: 60_000 });
  // Forward: the live readings must not turn late during a long catch-up.
  const liveSource = new ReadingSource({ nodes: Math.max(1000, liveRate), forward: true });
  let load: FreshnessLoad | undefined;
  try {
    const token = await ingest.addGateway('bench', BENCH_DISTRICT);
    load = new FreshnessLoad({
      redisUrl: context.redis.url,
      pool,
      token,
      source: liveSource,
      rate: liveRate,
    });
    const log = new ReadingLog(appender, {
      ...loadConfig({ REDIS_URL: context.redis.url }).stream,
      clock: systemClock,
    });
    const gapStart = Math.floor(Date.now() / 1000) * 1000 - hours * 3_600_000;
    const reading = (n: number, timestamp: number, r: number): Reading => ({
      node_id: `G${n}`,
      timestamp,
      flow_rate: ((r * 7 + n) % 500) / 10,
      pressure: 3 + (n % 13) / 10,
      temperature: 12 + (r % 40) / 10,
    });
    // Before the outage: every fleet node and live node known, the last fleet reading 10 s before the gap.
    for (let n = 0; n < nodes; n += 1000) {
      const batch: Reading[] = [];
      for (let k = n; k < Math.min(n + 1000, nodes); k++) batch.push(reading(k, gapStart - 10_000, 0));
      await log.append(batch, 'bench-catchup');
    }
    await postReadings(pool, token, liveSource.nextBody(1000), 1000);
    await waitForAggregator(client, 1, 300_000);

    let next = 0;
    const nextBatch = (): Reading[] | undefined => {
      if (next >= total) return undefined;
      const batch: Reading[] = [];
      for (let g = next; g < Math.min(next + 1000, total); g++) {
        const r = Math.floor(g / nodes);
        batch.push(reading(g % nodes, gapStart + r * 10_000, r));
      }
      next += batch.length;
      return batch;
    };
    const lastRound = gapStart + (rounds - 1) * 10_000;
    const lastNodes = [Math.max(0, nodes - 1000), nodes - 1].map((n) => `G${n}`);
    const timeout = timeoutSeconds();
    const targets: CpuTarget[] = [
      { name: 'ingest', pid: ingest.pid },
      { name: 'aggregator', pid: aggregator.pid },
      { name: 'bench', pid: 'self' },
    ];
    if (context.redis.pid !== undefined) targets.push({ name: 'redis', pid: context.redis.pid });
    const cpu = new CpuMeter(targets);
    context.log(`${label}: appending`);
    cpu.start();
    const started = performance.now();
    let appendSeconds: number | undefined;
    let absorbedSeconds: number | undefined;
    // The backlog in the committed state and every node's `latest`: the
    // metrics' long ranges follow with the next full round, at most every
    // AGGREGATOR_LONG_RANGES_INTERVAL_MS (30 s) under load, which adds 0–30 s
    // to `absorbedSeconds` by where the lane's end falls in that period.
    let appliedSeconds: number | undefined;
    let stop = false;
    let appendFailure: string | undefined;
    const appending = closedLoop({
      next: nextBatch,
      concurrency: 4,
      durationMs: timeout * 1000,
      call: async (batch) => {
        const result = await log.append(batch, 'bench-catchup');
        if (result.accepted !== batch.length)
          throw new Error(`accepted ${result.accepted} of ${batch.length}`);
      },
    }).then((result) => {
      appendSeconds = (performance.now() - started) / 1000;
      if (result.failures > 0) appendFailure = `appends failed: ${result.failureSamples.join('; ')}`;
      context.log(`catch-up: appended in ${appendSeconds.toFixed(1)} s`);
    });
    let laneEmptyAt: string | undefined;
    let lanePeak = 0;
    const watching = (async () => {
      await appending;
      while (!stop && appendFailure === undefined) {
        if (laneEmptyAt === undefined) {
          if ((await catchupBacklog(client, SHARD)).entries === 0) {
            // Everything appended is in the stream now, at or before its last entry.
            const [last] = await client.xrevrange(SHARD.stream, '+', '-', 'COUNT', 1);
            laneEmptyAt = last?.[0] ?? '0-0';
          }
        }
        const [written, applied] = await Promise.all([
          client.get(SHARD.aggregateWritten),
          client.get(SHARD.aggregateApplied),
        ]);
        const shown = await Promise.all(
          lastNodes.map(async (id) =>
            Date.parse((await client.hget(readModelKeys.nodeLatest(id), 'timestamp')) ?? ''),
          ),
        );
        if (
          appliedSeconds === undefined &&
          laneEmptyAt !== undefined &&
          applied !== null &&
          compareEntryIds(applied, laneEmptyAt) >= 0 &&
          shown.every((t) => t >= lastRound)
        ) {
          appliedSeconds = (performance.now() - started) / 1000;
        }
        if (
          laneEmptyAt !== undefined &&
          written !== null &&
          compareEntryIds(written, laneEmptyAt) >= 0 &&
          shown.every((t) => t >= lastRound)
        ) {
          absorbedSeconds = (performance.now() - started) / 1000;
          return;
        }
        if ((performance.now() - started) / 1000 > timeout) return;
        await sleep(100);
      }
    })();
    const progress = setInterval(() => {
      void appliedCount(client).then((applied) =>
        context.log(
          `catch-up: ${((performance.now() - started) / 1000).toFixed(0)} s, applied ${applied}, appended ${next}, lane ${lanePeak} entries at most`,
        ),
      );
    }, 15_000);
    const laneWatch = setInterval(() => {
      void catchupBacklog(client, SHARD).then(({ entries }) => {
        lanePeak = Math.max(lanePeak, entries);
      });
    }, 500);
    try {
      await load.run(
        () =>
          absorbedSeconds !== undefined ||
          appendFailure !== undefined ||
          (performance.now() - started) / 1000 > timeout,
      );
      stop = true;
      await watching;
    } finally {
      clearInterval(progress);
      clearInterval(laneWatch);
    }
    const usage = cpu.stop();
    const peak = processMemory(aggregator.pid)?.peak;
    await waitForAggregator(client, 1, timeout * 1000).catch(() => {});
    const live = await load.settle();
    const [p50, p99] = live.latencies.percentiles(50, 99);
    // BENCH_FRESHNESS_TRACE=<file>: every live probe's time sent and freshness.
    const tracePath = process.env.BENCH_FRESHNESS_TRACE;
    if (tracePath) writeFileSync(tracePath, load.traceCsv());
    const outcome =
      appendFailure ?? (absorbedSeconds === undefined ? `did not absorb in ${timeout} s` : undefined);
    const seconds = absorbedSeconds ?? (performance.now() - started) / 1000;
    context.record({
      suite: SUITE,
      case: label,
      batch: 1000,
      concurrency: 4,
      seconds,
      readings: total,
      requests: total / 1000,
      readingsPerSec: outcome === undefined ? total / seconds : Number.NaN,
      requestsPerSec: outcome === undefined ? total / 1000 / seconds : Number.NaN,
      ...(p50 !== undefined && { p50Ms: p50 }),
      ...(p99 !== undefined && { p99Ms: p99 }),
      cpu: usage,
      notes: [
        outcome === undefined
          ? `absorbed in ${seconds.toFixed(1)} s (${Math.round(total / seconds).toLocaleString('en')} readings/s)`
          : `FAILED: ${outcome}`,
        `applied (state committed, every latest shown) in ${appliedSeconds?.toFixed(1) ?? '-'} s (${appliedSeconds ? Math.round(total / appliedSeconds).toLocaleString('en') : '-'} readings/s); the absorbed time adds the metrics' next full round`,
        `appended in ${appendSeconds?.toFixed(1) ?? '-'} s (${appendSeconds ? Math.round(total / appendSeconds).toLocaleString('en') : '-'} readings/s, ReadingLog.append, 4 in flight)`,
        `p50/p99: freshness of the live readings meanwhile (${live.latencies.count} probes, HTTP 200 → latest; ${live.failures} failed requests, ${live.unresolved} probes never seen)`,
        `aggregator peak RSS ${formatBytes(peak ?? Number.NaN)}`,
        `catch-up lane: ${lanePeak.toLocaleString('en')} entries at most (sampled every 0.5 s)`,
        cpuNote(usage),
      ],
      figures: {
        outcome: outcome ?? 'absorbed',
        lanePeakEntries: lanePeak,
        absorbSeconds: absorbedSeconds ?? null,
        appliedSeconds: appliedSeconds ?? null,
        appendSeconds: appendSeconds ?? null,
        liveProbes: live.latencies.count,
        liveFailures: live.failures,
        aggregatorPeakRssMB: mb(peak),
      },
    });
    return outcome;
  } finally {
    load?.close();
    await pool.close();
    appender.disconnect();
    await ingest.stop();
    await aggregator.stop();
  }
}
