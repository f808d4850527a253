import { readModelKeys } from '@streamgauge/core';
import { waitForAggregator } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { ServiceProcess } from '../support/serviceProcess.ts';
import { aggregatorDrain } from './aggregatorDrain.ts';
import { CpuMeter, type CpuTarget } from './lib/cpu.ts';
import { IngestProcess } from './lib/ingestProcess.ts';
import { closedLoop } from './lib/load.ts';
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
    for (const [phase, rate] of [
      ['cold: every node new', drained.coldPerSecond],
      ['warm: restart, state loaded', drained.warmPerSecond],
    ] as const) {
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
          ? [`state load ${drained.stateLoadSeconds.toFixed(2)} s (not in the rate)`]
          : [],
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

async function post(pool: Pool, token: string, body: Buffer, expected: number): Promise<void> {
  const response = await pool.request({
    path: '/v1/readings',
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
  const reply = JSON.parse(text) as { accepted: number };
  if (reply.accepted !== expected) throw new Error(`accepted ${reply.accepted} of ${expected}`);
}

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
 * Open loop at `rate` readings/s in requests of 200 every 10 ms. Each request
 * carries one probe reading (a probe node, a newer timestamp each time); its
 * freshness is the time from the HTTP 200 to the moment `node:{probe}:latest`
 * shows it, detected through the change notifications.
 */
async function freshness(context: SuiteContext, nodes: number, rate: number): Promise<void> {
  const services = await startServices(context);
  const source = new ReadingSource({ nodes });
  const pool = new Pool(services.ingest.url, { connections: 16, keepAliveTimeout: 60_000 });
  const subscriber = new Redis(context.redis.url);
  const reader = new Redis(context.redis.url);
  const latencies = new LatencyRecorder();
  const waiting = new Map<string, { timestamp: number; since: number }[]>();
  const PROBES = 10;
  const perRequest = Math.round(rate / 100);
  try {
    for (let i = 0; i < nodes; i += 1000) await post(pool, services.token, source.nextBody(1000), 1000);
    await waitForAggregator(context.redis.client, 1, 120_000);

    const settle = async (node: string) => {
      const pending = waiting.get(node);
      if (!pending || pending.length === 0) return;
      const shown = Date.parse((await reader.hget(readModelKeys.nodeLatest(node), 'timestamp')) ?? '');
      const now = performance.now();
      waiting.set(
        node,
        pending.filter((probe) => {
          if (probe.timestamp > shown) return true;
          latencies.add(now - probe.since);
          return false;
        }),
      );
    };
    await subscriber.subscribe('streamgauge:changes');
    subscriber.on('message', (_channel, message) => {
      const notice = JSON.parse(message) as { nodes?: string[] };
      for (const node of notice.nodes ?? []) if (node.startsWith('PROBE')) void settle(node);
    });

    context.log(`freshness: offered ${rate} readings/s for ${context.options.seconds} s`);
    const cpu = new CpuMeter(services.targets);
    cpu.start();
    const base = Date.now() - 60_000;
    let sequence = 0;
    let failures = 0;
    const inFlight: Promise<void>[] = [];
    const started = performance.now();
    const end = started + context.options.seconds * 1000;
    // An absolute schedule: request k leaves at started + 10k ms, whatever the
    // event loop's delays, so the offered rate holds.
    while (performance.now() < end) {
      const due = Math.floor((performance.now() - started) / 10) + 1;
      while (sequence < due) {
        const seq = sequence++;
        const probe = `PROBE${seq % PROBES}`;
        const timestamp = base + seq;
        const parts: string[] = [];
        for (let i = 0; i < perRequest - 1; i++) parts.push(source.nextJson());
        parts.push(
          `{"node_id":"${probe}","timestamp":${timestamp},"flow_rate":1,"district_id":"${BENCH_DISTRICT}"}`,
        );
        inFlight.push(
          post(pool, services.token, Buffer.from(`[${parts.join(',')}]`), perRequest).then(
            () => {
              const list = waiting.get(probe) ?? [];
              list.push({ timestamp, since: performance.now() });
              waiting.set(probe, list);
              return settle(probe);
            },
            () => {
              failures++;
            },
          ),
        );
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await Promise.all(inFlight);
    await waitForAggregator(context.redis.client, 1, 60_000);
    for (let i = 0; i < PROBES; i++) await settle(`PROBE${i}`);
    const seconds = (performance.now() - started) / 1000;
    const usage = cpu.stop();
    const unresolved = [...waiting.values()].reduce((n, list) => n + list.length, 0);
    if (failures > 0 || unresolved > 0) {
      throw new BenchFailure(`${failures} requests failed, ${unresolved} probes never became visible`);
    }
    const [p50, p99] = latencies.percentiles(50, 99);
    context.record({
      suite: SUITE,
      case: `freshness at offered ${rate.toLocaleString('en')} readings/s, ${nodes} nodes (HTTP 200 → latest)`,
      batch: perRequest,
      seconds,
      readings: sequence * perRequest,
      requests: sequence,
      readingsPerSec: (sequence * perRequest) / seconds,
      requestsPerSec: sequence / seconds,
      ...(p50 !== undefined && { p50Ms: p50 }),
      ...(p99 !== undefined && { p99Ms: p99 }),
      cpu: usage,
      notes: [`${latencies.count} probes`],
    });
  } finally {
    subscriber.disconnect();
    reader.disconnect();
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
