import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isStreamgaugeKey } from '@streamgauge/core';
import {
  freePort,
  metricSamples,
  metricValue,
  RedisServer,
  redisServerOnPath,
  scanKeys,
  scrapeMetrics,
} from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../../services/cli/src/main.ts', import.meta.url));

describe('pnpm start (streamgauge start --simulate)', () => {
  it.skipIf(!redisServerOnPath())(
    'starts its own Redis and shows fresh keys within 10 seconds',
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-start-'));
      const redisPort = await freePort();
      const ingestPort = await freePort();
      const started = Date.now();
      const { child, output: out } = startCommand({ redisPort, ingestPort, dataDir });
      const output = () => out.text;
      const exited = once(child, 'exit');
      // Bounded calls: a Redis that never comes up fails the test with start's output, not a timeout.
      const redis = new Redis(redisPort, '127.0.0.1', {
        lazyConnect: true,
        retryStrategy: () => 100,
        commandTimeout: 1_000,
      });
      redis.on('error', () => {});
      try {
        // Fresh: a latest reading from the last 10 s, and metrics that count it.
        let fresh: Record<string, string> = {};
        let metrics: Record<string, string> = {};
        while (Date.now() - started < 10_000) {
          fresh = await redis.hgetall('node:215542:latest').catch(() => ({}));
          metrics = await redis.hgetall('node:215542:metrics:1h').catch(() => ({}));
          const recent = fresh.timestamp !== undefined && Date.now() - Date.parse(fresh.timestamp) < 10_000;
          if (recent && Number(metrics.reading_count) > 0) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const elapsed = Date.now() - started;
        expect(fresh.timestamp, output()).toBeDefined();
        expect(Number(metrics.reading_count), output()).toBeGreaterThan(0);
        expect(elapsed, output()).toBeLessThan(10_000);
        expect((await redis.lrange('nodes:all', 0, -1)).length).toBe(12);
        expect(output()).toContain('LRANGE nodes:all 0 -1');
        // The banner names the dashboard, and it answers there with the page and the node.
        const page = /dashboard\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(output())?.[1];
        expect(page, output()).toBeDefined();
        const html = await fetch(`${page}/`);
        expect(html.headers.get('content-type')).toMatch(/^text\/html/);
        // In the dashboard's view once the aggregator's notice for it was taken in.
        let node: { node_id?: string } = {};
        for (const deadline = Date.now() + 5_000; node.node_id === undefined && Date.now() < deadline; ) {
          node = (await (await fetch(`${page}/api/v1/nodes/215542`)).json()) as { node_id?: string };
          if (node.node_id === undefined) await new Promise((r) => setTimeout(r, 100));
        }
        expect(node.node_id).toBe('215542');
        // One /metrics for the whole process, on the ingest port: every service's series.
        const scraped = await scrapeMetrics(`http://127.0.0.1:${ingestPort}/metrics`);
        expect(metricValue(scraped, 'streamgauge_readings_total', { outcome: 'accepted' })).toBeGreaterThan(
          0,
        );
        for (const group of ['aggregator', 'archiver']) {
          expect(
            metricSamples(scraped, 'streamgauge_consumer_lag', { messaging_consumer_group_name: group }),
          ).toHaveLength(1);
        }
        for (const name of [
          'streamgauge_reading_event_age_seconds_count',
          'streamgauge_archiver_rows_total',
          'streamgauge_anomalies_open',
          'streamgauge_reconcile_runs_total',
          'process_cpu_seconds_total',
        ]) {
          expect(metricValue(scraped, name), name).toBeGreaterThanOrEqual(0);
        }
        expect(scraped.every((s) => s.labels.service === 'streamgauge')).toBe(true);
        // The status line (every second here) counts what flows, not only the
        // simulator. The aggregator's counts come from its thread: a line may
        // show the start's system keys before its first batch's nodes.
        const statusLine =
          /\d+\.\d readings\/s accepted \| aggregator lag \d+ entries \| nodes 12 \| keys written [1-9]\d* \| open anomalies \d+/;
        await untilOutput(out, statusLine, 5_000);
        // Every key start wrote is one streamgauge knows as its own (what its
        // check of a foreign Redis relies on). The 3d–30d metrics and the
        // 7-day series come with the first full metrics round (at most
        // AGGREGATOR_LONG_RANGES_INTERVAL_MS, 30 s, after the nodes' first
        // readings), unless a cold-start backfill found the readings first.
        let keys = await scanKeys(redis);
        for (const deadline = Date.now() + 40_000; keys.length <= 100 && Date.now() < deadline; ) {
          await new Promise((r) => setTimeout(r, 500));
          keys = await scanKeys(redis);
        }
        expect(keys.length).toBeGreaterThan(100);
        expect(keys.filter((key) => !isStreamgaugeKey(key))).toEqual([]);
        console.log(`first fresh key after ${elapsed} ms`);
      } finally {
        redis.disconnect();
        child.kill('SIGINT');
        const [code] = await within(15_000, exited, output);
        expect(code, output()).toBe(0);
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    90_000,
  );

  it.skipIf(!redisServerOnPath())(
    'stops cleanly on Ctrl-C while still starting, leaving no redis-server behind',
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-start-'));
      const redisPort = await freePort();
      const ingestPort = await freePort();
      const { child, output } = startCommand({ redisPort, ingestPort, dataDir });
      const exited = once(child, 'exit');
      try {
        // Redis is up and the services are starting on it: the moment a stop used to pull Redis from under them.
        await untilOutput(output, 'started redis-server', 15_000);
        child.kill('SIGINT');
        const [code, signal] = await within(20_000, exited, () => output.text);
        expect({ code, signal }, output.text).toEqual({ code: 0, signal: null });
        expect(output.text).not.toContain('error while stopping');
        // Nothing listens on the Redis port any more: the server start launched is gone.
        const probe = connect(redisPort, '127.0.0.1');
        const [error] = (await once(probe, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException];
        expect(error.code).toBe('ECONNREFUSED');
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    45_000,
  );

  it.skipIf(!redisServerOnPath())(
    "refuses a Redis that holds another application's keys, writing nothing, unless told to share it",
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-start-'));
      const server = await RedisServer.start();
      const redis = new Redis(server.port, '127.0.0.1');
      try {
        await redis.set('session:4f2a', 'another application');
        await redis.hset('bull:emails:1', 'data', '{}');
        const { child, output } = startCommand({ redisPort: server.port, ingestPort: 0, dataDir });
        const [code] = await within(15_000, once(child, 'exit'), () => output.text);
        expect(code, output.text).toBe(2);
        expect(output.text).toContain(
          `Redis at redis://127.0.0.1:${server.port}/0 holds keys that are not streamgauge's`,
        );
        expect(output.text).toContain('--allow-foreign-keys');
        expect(output.text).not.toMatch(/\n\s+at /); // a message, not a stack trace
        expect((await redis.keys('*')).sort()).toEqual(['bull:emails:1', 'session:4f2a']);

        const shared = startCommand({ redisPort: server.port, ingestPort: 0, dataDir }, [
          '--allow-foreign-keys',
        ]);
        const sharedExit = once(shared.child, 'exit');
        await untilOutput(shared.output, 'streamgauge is running', 20_000);
        shared.child.kill('SIGINT');
        const [sharedCode] = await within(15_000, sharedExit, () => shared.output.text);
        expect(sharedCode, shared.output.text).toBe(0);
        expect(await redis.get('session:4f2a')).toBe('another application');
      } finally {
        redis.disconnect();
        await server.dispose();
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});

/** `streamgauge start --simulate` on its own Redis port, ingest port and data directory; its output collected. */
function startCommand(
  at: {
    redisPort: number;
    ingestPort: number;
    dashboardPort?: number;
    dataDir: string;
  },
  extra: string[] = [],
) {
  const child = spawn(process.execPath, [MAIN, 'start', '--simulate', '--status-seconds', '1', ...extra], {
    env: {
      ...process.env,
      REDIS_URL: '',
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: String(at.redisPort),
      INGEST_PORT: String(at.ingestPort),
      DASHBOARD_PORT: String(at.dashboardPort ?? 0),
      // Relative, as the default ./data is: the Redis start runs must find its files all the same.
      DATA_DIR: './data',
      LOG_LEVEL: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: at.dataDir,
  });
  const output = { text: '' };
  child.stdout.on('data', (chunk: Buffer) => {
    output.text += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output.text += chunk.toString();
  });
  return { child, output };
}

async function untilOutput(output: { text: string }, text: string | RegExp, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (typeof text === 'string' ? !output.text.includes(text) : !text.test(output.text)) {
    if (Date.now() > deadline)
      throw new Error(`"${text}" not printed within ${ms} ms; output:\n${output.text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The promise's value, or a failure naming the wait and showing the command's output so far. */
async function within<T>(ms: number, promise: Promise<T>, output: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms; output:\n${output()}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
