import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CHANGES_CHANNEL, RANGES, readModelKeys } from '@streamgauge/core';
import { buildAssets } from '@streamgauge/dashboard';
import { freePort } from '@streamgauge/testkit';
import { chromium } from 'playwright-core';
import { LatencyRecorder } from './lib/stats.ts';
import type { SuiteContext } from './lib/types.ts';

export const SUITE = 'dashboard';
const MAIN = fileURLToPath(new URL('../../services/cli/src/main.ts', import.meta.url));
const POLL_CLIENTS = fileURLToPath(new URL('./lib/pollClients.ts', import.meta.url));
const run = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
const CLIENTS = 100;
const SSE_CLIENTS = 500;
/**
 * Preloaded into the service (`--import` of this module as a data: URL): its
 * garbage collections, as a `gc` PerformanceObserver sees them, written to
 * SG_BENCH_GC_FILE on SIGUSR2 as [wall-clock ms, kind, duration ms].
 */
const GC_WATCH = `
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
const seen = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) seen.push([performance.timeOrigin + e.startTime, e.detail.kind, e.duration]);
  if (seen.length > 50000) seen.splice(0, 25000);
}).observe({ entryTypes: ['gc'] });
process.on('SIGUSR2', () => writeFileSync(process.env.SG_BENCH_GC_FILE, JSON.stringify(seen)));
`;
/** perf_hooks' kinds: 1 a scavenge (young generation), 4 a mark-compact, 8 incremental marking, 16 weak callbacks. */
const GC_SCAVENGE = 1;
const GC_MARK_COMPACT = 4;

/**
 * The dashboard's read path, in its own process (`streamgauge dashboard`)
 * over a read model of 1,000 and 10,000 nodes written straight into Redis:
 * 100 clients polling the overview and the first page of nodes while
 * notices for 1,000 nodes a second arrive; 500 SSE clients and the time a
 * change takes to reach all of them; Chromium's time to a usable node
 * table; the page's compressed size; the process's memory per node.
 */
export async function dashboardBench(context: SuiteContext): Promise<void> {
  const rss: Record<number, number> = {};
  for (const nodes of [1_000, 10_000]) {
    await context.redis.flush();
    context.log(`dashboard: writing the read model of ${nodes} nodes`);
    const ids = await seedReadModel(context, nodes);
    const port = await freePort();
    const gcDir = mkdtempSync(join(tmpdir(), 'sg-bench-gc-'));
    const child = await startDashboardProcess(context.redis.url, port, join(gcDir, 'gc.json'));
    const url = `http://127.0.0.1:${port}`;
    try {
      await pollingCase(context, url, ids, () => collections(child, join(gcDir, 'gc.json')));
      await sseCase(context, url, ids);
      if (nodes === 1_000) await pageCase(context, url);
      rss[nodes] = await rssOf(child);
    } finally {
      child.kill('SIGTERM');
      rmSync(gcDir, { recursive: true, force: true });
    }
  }
  const assets = await buildAssets();
  const shipped = [...assets.entries()].filter(([path]) => path !== '/');
  const gzip = shipped.reduce((sum, [, a]) => sum + a.gzip.length, 0);
  const brotli = shipped.reduce((sum, [, a]) => sum + a.brotli.length, 0);
  const perNode = ((rss[10_000] ?? 0) - (rss[1_000] ?? 0)) / 9_000;
  context.record({
    suite: SUITE,
    case: 'page size (JS + CSS) and view memory per node',
    seconds: 0,
    readings: 0,
    requests: 0,
    readingsPerSec: 0,
    requestsPerSec: 0,
    notes: [
      `JS + CSS: ${(gzip / 1024).toFixed(1)} KiB gzip, ${(brotli / 1024).toFixed(1)} KiB brotli`,
      `dashboard RSS ${mib(rss[1_000])} MiB at 1k nodes, ${mib(rss[10_000])} MiB at 10k: ${Math.round(perNode)} B per node`,
    ],
    figures: {
      gzipBytes: gzip,
      brotliBytes: brotli,
      rss1k: rss[1_000] ?? 0,
      rss10k: rss[10_000] ?? 0,
      bytesPerNode: perNode,
    },
  });
}

const mib = (bytes: number | undefined) => ((bytes ?? 0) / 1024 / 1024).toFixed(0);

/** The contract's keys for `nodes` nodes with 7 days of hourly series, as the aggregator writes them. */
async function seedReadModel(context: SuiteContext, nodes: number): Promise<string[]> {
  const redis = context.redis.client;
  const ids = Array.from({ length: nodes }, (_, i) => `N${String(i).padStart(6, '0')}`);
  const now = Date.now();
  const hours = Array.from({ length: 168 }, (_, h) =>
    new Date(Math.floor(now / 3_600_000) * 3_600_000 - (167 - h) * 3_600_000)
      .toISOString()
      .replace('T', ' ')
      .slice(0, 19),
  );
  for (let i = 0; i < ids.length; i += 500) {
    const pipeline = redis.pipeline();
    for (const id of ids.slice(i, i + 500)) {
      const k = Number(id.slice(1));
      pipeline.rpush(readModelKeys.nodesAll, id);
      pipeline.hset(readModelKeys.nodeMetadata(id), {
        node_id: id,
        node_name: `Logger ${k}`,
        node_type: k % 3 === 0 ? 'pressure' : 'flow',
        district_id: `D${k % 20}`,
      });
      pipeline.hset(readModelKeys.nodeLatest(id), {
        timestamp: new Date(now - (k % 600) * 1000).toISOString(),
        flow_rate: String(10 + (k % 37)),
        pressure: String(3 + (k % 10) / 10),
        temperature: '14',
        volume: String(1000 + k),
      });
      for (const range of RANGES) {
        pipeline.hset(readModelKeys.nodeMetrics(id, range), {
          reading_count: '360',
          avg_flow: String(10 + (k % 41)),
          min_flow: '1',
          max_flow: '60',
          stddev_flow: '4.2',
          avg_pressure: String(3 + (k % 13) / 10),
          min_pressure: '2.5',
          max_pressure: '4.8',
          uptime_percentage: String((k % 100) / 100),
          window_start: new Date(now - 3_600_000).toISOString(),
          window_end: new Date(now).toISOString(),
          updated_at: new Date(now).toISOString(),
        });
      }
      pipeline.set(
        readModelKeys.nodeTimeseries7d(id),
        JSON.stringify({
          timestamps: hours,
          flow_rates: hours.map((_, h) => 10 + ((h + k) % 24)),
          pressures: hours.map((_, h) => 3 + ((h + k) % 10) / 10),
        }),
      );
    }
    await pipeline.exec();
  }
  for (const range of RANGES) {
    await redis.hset(readModelKeys.systemMetrics(range), {
      total_nodes: String(nodes),
      active_nodes: String(Math.round(nodes * 0.9)),
      avg_pressure: '3.6',
      total_flow: String(nodes * 30),
      updated_at: new Date(now).toISOString(),
    });
  }
  return ids;
}

async function startDashboardProcess(redisUrl: string, port: number, gcFile: string): Promise<ChildProcess> {
  const watch = `data:text/javascript,${encodeURIComponent(GC_WATCH)}`;
  const args = ['--import', watch, MAIN, 'dashboard', '--host', '127.0.0.1', '--port', String(port)];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, REDIS_URL: redisUrl, LOG_LEVEL: 'warn', SG_BENCH_GC_FILE: gcFile },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  // Ready when it answers (its view of every node is loaded by then).
  for (const deadline = Date.now() + 120_000; ; ) {
    if (exited !== undefined) throw new Error(`streamgauge dashboard exited with ${exited}`);
    const ok = await fetch(`http://127.0.0.1:${port}/api/v1/config`, {
      signal: AbortSignal.timeout(2_000),
    }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error('streamgauge dashboard did not answer within 120 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

/** The service's garbage collections so far: [wall-clock ms, kind, duration ms]. */
async function collections(child: ChildProcess, file: string): Promise<[number, number, number][]> {
  rmSync(file, { force: true });
  child.kill('SIGUSR2');
  for (let tries = 0; tries < 50; tries++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as [number, number, number][];
    } catch {
      // not (completely) written yet
    }
  }
  return [];
}

/**
 * 100 dashboards polling: each asks for the overview and the first page of
 * nodes once a second (open loop, phases spread), for the timed window;
 * then the same 100 clients asking as fast as answers come (capacity).
 * Meanwhile the aggregator writes 250 nodes' latest reading and says so in
 * a notice every 250 ms, so the view and its caches keep changing. The
 * service's garbage collections in the timed window are recorded with it.
 */
async function pollingCase(
  context: SuiteContext,
  url: string,
  ids: readonly string[],
  gc: () => Promise<[number, number, number][]>,
): Promise<void> {
  const redis = context.redis.client;
  let offset = 0;
  const notices = setInterval(() => {
    const nodes = Array.from({ length: 250 }, () => ids[offset++ % ids.length] as string);
    const now = Date.now();
    const pipeline = redis.pipeline();
    for (const [i, id] of nodes.entries()) {
      pipeline.hset(readModelKeys.nodeLatest(id), {
        timestamp: new Date(now - (i % 60) * 1000).toISOString(),
        flow_rate: String(10 + ((now / 1000 + i) % 37)),
      });
    }
    pipeline.publish(
      CHANGES_CHANNEL,
      JSON.stringify({ cause: 'readings', keys: 'latest', at: new Date(now).toISOString(), nodes }),
    );
    void pipeline.exec();
  }, 250);
  try {
    for (const mode of ['polling', 'saturated'] as const) {
      // The first case also warms the JIT: at least 3 s of warm-up.
      const warmup = Math.max(3, context.options.warmupSeconds);
      const { stdout } = await run(process.execPath, [
        POLL_CLIENTS,
        url,
        mode,
        String(CLIENTS),
        String(warmup),
        String(context.options.seconds),
      ]);
      const ended = Date.now();
      const result = JSON.parse(stdout) as {
        seconds: number;
        overview: { count: number; p50: number; p99: number };
        nodes: { count: number; p50: number; p99: number };
      };
      const window = (await gc()).filter(([at]) => at >= ended - result.seconds * 1000 && at <= ended);
      const scavenges = window.filter(([, kind]) => kind === GC_SCAVENGE).map(([, , ms]) => ms);
      const markCompacts = window.filter(([, kind]) => kind === GC_MARK_COMPACT).length;
      const scavengeMs = scavenges.reduce((a, b) => a + b, 0);
      const gcNote = `service: ${scavenges.length} scavenges in the window (mean ${(scavengeMs / Math.max(1, scavenges.length)).toFixed(1)} ms, longest ${Math.max(0, ...scavenges).toFixed(1)} ms), ${markCompacts} mark-compacts`;
      for (const which of ['overview', 'nodes'] as const) {
        const { count, p50, p99 } = result[which];
        const what = which === 'overview' ? 'GET overview' : 'GET nodes (first 50)';
        context.record({
          suite: SUITE,
          case: `${what}, ${ids.length} nodes, ${CLIENTS} clients ${mode === 'polling' ? 'polling every 1 s' : 'back to back'}`,
          concurrency: CLIENTS,
          seconds: result.seconds,
          readings: 0,
          requests: count,
          readingsPerSec: 0,
          requestsPerSec: count / result.seconds,
          p50Ms: p50,
          p99Ms: p99,
          notes: ['clients in a process of their own; notices for 1,000 nodes/s arrive meanwhile', gcNote],
          figures: {
            scavenges: scavenges.length,
            scavengeMeanMs: scavengeMs / Math.max(1, scavenges.length),
            scavengeMaxMs: Math.max(0, ...scavenges),
            markCompacts,
          },
        });
      }
    }
  } finally {
    clearInterval(notices);
  }
}

/** 500 SSE clients; a notice is published five times; how long until every client has it. */
async function sseCase(context: SuiteContext, url: string, ids: readonly string[]): Promise<void> {
  const clients = await Promise.all(
    Array.from({ length: SSE_CLIENTS }, () => openStream(`${url}/api/v1/events`)),
  );
  const delays = new LatencyRecorder();
  let slowest = 0;
  try {
    for (let round = 0; round < 5; round++) {
      const marker = `${ids[round]}`;
      const published = performance.now();
      await context.redis.client.publish(
        CHANGES_CHANNEL,
        JSON.stringify({ cause: 'readings', keys: 'latest', at: new Date().toISOString(), nodes: [marker] }),
      );
      const arrivals = await Promise.all(clients.map((c) => c.until(`"${marker}"`)));
      for (const at of arrivals) delays.add(at - published);
      slowest = Math.max(slowest, ...arrivals.map((at) => at - published));
    }
  } finally {
    for (const c of clients) c.close();
  }
  const [p50, p99] = delays.percentiles(50, 99);
  context.record({
    suite: SUITE,
    case: `SSE: a change reaching ${SSE_CLIENTS} clients, ${ids.length} nodes`,
    concurrency: SSE_CLIENTS,
    seconds: 0,
    readings: 0,
    requests: delays.count,
    readingsPerSec: 0,
    requestsPerSec: 0,
    ...(p50 !== undefined && { p50Ms: p50 }),
    ...(p99 !== undefined && { p99Ms: p99 }),
    notes: [`slowest client ${slowest.toFixed(0)} ms after the PUBLISH (view refresh every 200 ms included)`],
    figures: { slowestMs: slowest },
  });
}

async function openStream(url: string) {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal });
  let text = '';
  const waiting = new Map<string, (at: number) => void>();
  void (async () => {
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        text += Buffer.from(chunk).toString();
        for (const [needle, resolve] of waiting) {
          if (text.includes(needle)) {
            waiting.delete(needle);
            resolve(performance.now());
          }
        }
        if (text.length > 100_000) text = text.slice(-10_000);
      }
    } catch {
      // closed
    }
  })();
  return {
    // A change that never comes fails the case rather than hanging the bench.
    until: (needle: string, timeoutMs = 10_000) =>
      new Promise<number>((resolve, reject) => {
        if (text.includes(needle)) return resolve(performance.now());
        const timer = setTimeout(() => {
          waiting.delete(needle);
          reject(new Error(`SSE: no event naming ${needle} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(needle, (at) => {
          clearTimeout(timer);
          resolve(at);
        });
      }),
    close: () => controller.abort(),
  };
}

/** Chromium: from navigation to a node table with rows, five times (a fresh page each). */
async function pageCase(context: SuiteContext, url: string): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    context.log(`dashboard: no ${CHROMIUM}; the page case is skipped`);
    return;
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking'],
  });
  const times = new LatencyRecorder();
  try {
    for (let i = 0; i < 5; i++) {
      const page = await browser.newPage();
      await page.goto(`${url}/#/nodes`);
      await page.locator('#nodes-table tbody tr[data-node-id]').first().waitFor({ timeout: 30_000 });
      // Milliseconds since navigation started, by the page's own clock.
      times.add(await page.evaluate(() => performance.now()));
      await page.close();
    }
  } finally {
    await browser.close();
  }
  const [p50, p99] = times.percentiles(50, 100);
  context.record({
    suite: SUITE,
    case: 'page: navigation → node table usable, 1000 nodes (Chromium, headless)',
    seconds: 0,
    readings: 0,
    requests: times.count,
    readingsPerSec: 0,
    requestsPerSec: 0,
    ...(p50 !== undefined && { p50Ms: p50 }),
    ...(p99 !== undefined && { p99Ms: p99 }),
    notes: ['p99 column: the slowest of five loads'],
  });
}

async function rssOf(child: ChildProcess): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}
