import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
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
    const child = await startDashboardProcess(context.redis.url, port);
    const url = `http://127.0.0.1:${port}`;
    try {
      await pollingCase(context, url, ids);
      await sseCase(context, url, ids);
      if (nodes === 1_000) await pageCase(context, url);
      rss[nodes] = await rssOf(child);
    } finally {
      child.kill('SIGTERM');
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

async function startDashboardProcess(redisUrl: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [MAIN, 'dashboard', '--host', '127.0.0.1', '--port', String(port)], {
    env: { ...process.env, REDIS_URL: redisUrl, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  // Ready when it answers (its view of every node is loaded by then).
  for (const deadline = Date.now() + 120_000; ; ) {
    if (exited !== undefined) throw new Error(`streamgauge dashboard exited with ${exited}`);
    const ok = await fetch(`http://127.0.0.1:${port}/api/v1/config`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error('streamgauge dashboard did not answer within 120 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

/**
 * 100 dashboards polling: each asks for the overview and the first page of
 * nodes once a second (open loop, phases spread), for the timed window;
 * then the same 100 clients asking as fast as answers come (capacity).
 * Meanwhile the aggregator's notices say 250 nodes' latest changed every
 * 250 ms, so the view and its caches keep changing.
 */
async function pollingCase(context: SuiteContext, url: string, ids: readonly string[]): Promise<void> {
  const redis = context.redis.client;
  let offset = 0;
  const notices = setInterval(() => {
    const nodes = Array.from({ length: 250 }, () => ids[offset++ % ids.length] as string);
    void redis.publish(
      CHANGES_CHANNEL,
      JSON.stringify({ cause: 'readings', keys: 'latest', at: new Date().toISOString(), nodes }),
    );
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
      const result = JSON.parse(stdout) as {
        seconds: number;
        overview: { count: number; p50: number; p99: number };
        nodes: { count: number; p50: number; p99: number };
      };
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
          notes: ['clients in a process of their own; notices for 1,000 nodes/s arrive meanwhile'],
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
    until: (needle: string) =>
      new Promise<number>((resolve) => {
        if (text.includes(needle)) resolve(performance.now());
        else waiting.set(needle, resolve);
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
