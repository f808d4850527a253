import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_ANOMALY_SETTINGS, decodeEntry } from '@streamgauge/core';
import { freePort, type TestRedis, testRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const exec = promisify(execFile);
let redis: TestRedis;

beforeAll(async () => {
  redis = await testRedis();
  await redis.flush();
});
afterAll(() => redis.close());

async function streamgauge(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [MAIN, ...args], {
      env: { ...process.env, REDIS_URL: redis.url, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('streamgauge CLI', () => {
  it('prints help and exits 0; a wrong command exits 2', async () => {
    const help = await streamgauge(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('ingest');
    expect(help.stdout).toContain('gateways');
    const wrong = await streamgauge(['frobnicate']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("unknown command 'frobnicate'");
  });

  it('exits 3 naming every bad variable, and 4 when Redis cannot be reached', async () => {
    const bad = await streamgauge(['gateways', 'list'], {
      REDIS_URL: '',
      REDIS_PORT: 'x',
      CACHE_TTL_HOURS: '0',
    });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('REDIS_PORT: expected a whole number from 1 to 65535, got "x"');
    expect(bad.stderr).toContain('CACHE_TTL_HOURS');
    const port = await freePort();
    const down = await streamgauge(['gateways', 'list'], { REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(down.code).toBe(4);
    expect(down.stderr).toContain(`cannot reach Redis at redis://127.0.0.1:${port}`);
    // A cluster that does not answer is never replaced by a local server.
    const cluster = await streamgauge(['start'], {
      REDIS_CLUSTER_NODES: `127.0.0.1:${port}`,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'streamgauge-cli-')),
    });
    expect(cluster.code).toBe(4);
    expect(cluster.stderr).toContain(`cannot reach the Redis Cluster at 127.0.0.1:${port}`);
  });

  it('adds, lists and revokes gateways; the token is printed once', async () => {
    const added = await streamgauge(['gateways', 'add', 'north', '--district', 'SEL', '--json']);
    expect(added.code).toBe(0);
    const { name, token } = JSON.parse(added.stdout) as { name: string; token: string };
    expect(name).toBe('north');
    expect(token).toMatch(/^sg_/);

    const plain = await streamgauge(['gateways', 'add', 'south', '--nodes', 'A, B,A']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/gateway south \(nodes A,B\)\ntoken: sg_\S+\nThis token is shown once/);

    const again = await streamgauge(['gateways', 'add', 'north', '--district', 'SEL']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('gateway "north" exists; revoke it first');

    expect((await streamgauge(['gateways', 'add', 'x'])).code).toBe(2);
    expect((await streamgauge(['gateways', 'add', 'x', '--nodes', 'A', '--district', 'D'])).code).toBe(2);

    const listed = await streamgauge(['gateways', 'list', '--json']);
    const records = JSON.parse(listed.stdout) as { name: string; tokenHash?: string }[];
    expect(records.map((r) => r.name)).toEqual(['north', 'south']);
    expect(listed.stdout).not.toContain(token);
    expect(records.every((r) => r.tokenHash === undefined)).toBe(true);

    expect((await streamgauge(['gateways', 'revoke', 'north'])).stdout).toContain('gateway north revoked');
    expect((await streamgauge(['gateways', 'list'])).stdout).toMatch(
      /north\tdistrict SEL\tcreated \S+\trevoked/,
    );
    const unknown = await streamgauge(['gateways', 'revoke', 'nobody']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no gateway named "nobody"');
  });

  it('adds, lists and revokes dashboard viewers, apart from gateways', async () => {
    const added = await streamgauge(['viewers', 'add', 'alice', '--json']);
    expect(added.code).toBe(0);
    const { token } = JSON.parse(added.stdout) as { token: string };
    expect(token).toMatch(/^sgv_/);
    const again = await streamgauge(['viewers', 'add', 'alice']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('viewer "alice" exists; revoke it first');
    expect((await streamgauge(['viewers', 'add', 'bad name'])).code).toBe(2);
    const listed = JSON.parse((await streamgauge(['viewers', 'list', '--json'])).stdout) as {
      name: string;
    }[];
    expect(listed.map((v) => v.name)).toEqual(['alice']);
    // A viewer is no gateway.
    const gateways = JSON.parse((await streamgauge(['gateways', 'list', '--json'])).stdout) as {
      name: string;
    }[];
    expect(gateways.map((g) => g.name)).not.toContain('alice');
    expect((await streamgauge(['viewers', 'revoke', 'alice'])).stdout).toContain('viewer alice revoked');
    expect((await streamgauge(['viewers', 'list'])).stdout).toMatch(/alice {2}created \S+ {2}REVOKED/);
    const unknown = await streamgauge(['viewers', 'revoke', 'nobody']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no viewer named "nobody"');
  });

  it('nodes: lists owners, assigns to a district, releases; refuses what a live gateway names; gateways carry their own rates', async () => {
    const rated = await streamgauge([
      'gateways',
      'add',
      'pump9',
      '--nodes',
      'P9',
      '--requests-per-second',
      '5',
      '--readings-per-second',
      '0',
    ]);
    expect(rated.code, rated.stderr).toBe(0);
    expect((await streamgauge(['gateways', 'list'])).stdout).toMatch(
      /pump9\tnodes P9\tcreated \S+\tactive\tlimits \{"readingsPerSecond":0,"requestsPerSecond":5\}/,
    );
    const badRate = await streamgauge([
      'gateways',
      'add',
      'x',
      '--district',
      'D',
      '--requests-per-second',
      'fast',
    ]);
    expect(badRate.code).toBe(2);
    expect(badRate.stderr).toContain('--requests-per-second: expected a number ≥ 0, got "fast"');
    const taken = await streamgauge(['gateways', 'add', 'pump10', '--nodes', 'P9,P10']);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('node "P9" is named by gateway "pump9"; revoke that gateway first');

    const assigned = await streamgauge(['nodes', 'assign', 'N7', 'N8,P9', '--district', 'SEL']);
    expect(assigned.stdout).toContain('3 nodes assigned to district SEL');
    expect((await streamgauge(['nodes', 'list', '--district', 'SEL'])).stdout).toBe(
      'N7\tdistrict SEL\tgateway -\nN8\tdistrict SEL\tgateway -\nP9\tdistrict SEL\tgateway pump9\n',
    );
    const held = await streamgauge(['nodes', 'release', 'N7', 'P9']);
    expect(held.code).toBe(1);
    expect(held.stderr).toContain('node "P9" is named by gateway "pump9"; revoke that gateway first');
    expect((await streamgauge(['nodes', 'release', 'N7'])).stdout).toContain('1 of 1 node released');
    expect(JSON.parse((await streamgauge(['nodes', 'list', '--json'])).stdout)).toEqual([
      // Named by the gateway the test above added.
      { node: 'A', gateway: 'south' },
      { node: 'B', gateway: 'south' },
      { node: 'N8', district: 'SEL' },
      { node: 'P9', district: 'SEL', gateway: 'pump9' },
    ]);
    const bad = await streamgauge(['nodes', 'assign', 'odd:1', '--district', 'SEL']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      `node id "odd:1": use 1 to 128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  });

  it('ingest finishes an in-flight request on SIGTERM, then exits 0', async () => {
    const port = await freePort();
    const child: ChildProcess = spawn(
      process.execPath,
      [MAIN, 'ingest', '--port', String(port), '--host', '127.0.0.1'],
      {
        env: { ...process.env, REDIS_URL: redis.url, INGEST_AUTH: 'off', LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let logs = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      logs += chunk.toString();
    });
    const exited = once(child, 'exit');
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    while (
      !(await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (Date.now() > deadline) throw new Error(`ingest did not start:\n${logs}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(logs).toContain('"auth":false');

    // Send the head of a request, signal, then the rest: the request is in
    // flight when SIGTERM arrives and must still be served.
    const reading = JSON.stringify({ node_id: 'SIG', timestamp: Date.now() - 1000, flow_rate: 1 });
    let sendRest: () => void = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(`[${reading}`));
        sendRest = () => {
          controller.enqueue(new TextEncoder().encode(']'));
          controller.close();
        };
      },
    });
    const pending = fetch(`${url}/v1/readings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    sendRest();
    const response = await pending;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    const [code] = await exited;
    expect(code).toBe(0);
    expect(logs).toContain('ingest stopped');
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();

    const client = new Redis(redis.url);
    const entries = await client.xrange('readings', '-', '+');
    client.disconnect();
    expect(entries.flatMap(([id, f]) => decodeEntry(id, f).readings).map((r) => r.node_id)).toContain('SIG');
  });

  it('simulate rejects bad numbers with exit 2, and sends readings ingest accepts', async () => {
    const bad = await streamgauge(['simulate', '--nodes', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--nodes: expected a positive whole number, got "0"');

    const port = await freePort();
    const ingest = spawn(process.execPath, [MAIN, 'ingest', '--port', String(port), '--host', '127.0.0.1'], {
      env: { ...process.env, REDIS_URL: redis.url, INGEST_AUTH: 'off', LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    while (
      !(await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const simulate = spawn(
      process.execPath,
      [MAIN, 'simulate', '--nodes', '3', '--rate', '30', '--url', url],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    simulate.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    await new Promise((r) => setTimeout(r, 2_500));
    simulate.kill('SIGTERM');
    const [code] = await once(simulate, 'exit');
    ingest.kill('SIGTERM');
    await once(ingest, 'exit');
    expect(code).toBe(0);
    const stats = JSON.parse(output.trim().split('\n').pop()?.replace('simulate: ', '') ?? '{}');
    expect(stats.accepted).toBeGreaterThan(0);
    expect(stats.failedRequests).toBe(0);
    const client = new Redis(redis.url);
    const entries = await client.xrange('readings', '-', '+');
    client.disconnect();
    const nodes = new Set(entries.flatMap(([id, f]) => decodeEntry(id, f).readings.map((r) => r.node_id)));
    expect([...nodes].sort()).toEqual(expect.arrayContaining(['215542', '281492', '287156']));
  });

  it('archive --no-backfill is refused with DuckDB, where no other process could run the backfill', async () => {
    const refused = await streamgauge(['archive', '--no-backfill'], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('archive --no-backfill needs the BigQuery warehouse (BIGQUERY_PROJECT)');
  });

  it('aggregate runs until SIGTERM and exits 0', async () => {
    const child = spawn(process.execPath, [MAIN, 'aggregate', '--consumer', 'cli-test'], {
      env: { ...process.env, REDIS_URL: redis.url, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      logs += chunk.toString();
    });
    const deadline = Date.now() + 10_000;
    while (!logs.includes('aggregator running') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(logs).toContain('"consumer":"cli-test"');
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(logs).toContain('aggregator stopped');
  });

  it('imports a CSV into the warehouse with a summary; a second run finds only duplicates', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-import-'));
    const file = join(dataDir, 'history.csv');
    writeFileSync(
      file,
      [
        'node_id,timestamp,flow_rate,pressure,district_id',
        '215542,2026-11-01 00:00:00,12.5,3.1,SELARGIUS',
        '215542,2026-11-01 00:15:00,13,3.2,SELARGIUS',
        '287156,2026-11-01 00:00:00,NaN,3,SELARGIUS',
      ].join('\n'),
    );
    const first = await streamgauge(['import', file], { DATA_DIR: dataDir });
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('imported 2, duplicates 0');
    expect(first.stdout).toContain('rejected 1');
    expect(first.stdout).toContain('line 4: flow_rate:');
    expect(first.stderr).toMatch(/import \[#+\] 100%/);
    const again = await streamgauge(['import', file, '--json'], { DATA_DIR: dataDir });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ imported: 0, duplicates: 2, rejected: 1 });

    writeFileSync(join(dataDir, 'readings.txt'), 'x');
    const unknown = await streamgauge(['import', join(dataDir, 'readings.txt')], { DATA_DIR: dataDir });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('pass --format csv or --format ndjson');
    writeFileSync(join(dataDir, 'bad.csv'), 'id,time\n1,2\n');
    const header = await streamgauge(['import', join(dataDir, 'bad.csv')], { DATA_DIR: dataDir });
    expect(header.code).toBe(2);
    expect(header.stderr).toContain('the CSV header must name node_id and timestamp');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('backfill --now: says at once that no aggregator runs, fills the cache with one, asks a running archive for a run; cache-stats tells', async () => {
    const own = await testRedis();
    const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-backfill-'));
    const env = { REDIS_URL: own.url, DATA_DIR: dataDir, STREAM_SHARDS: '2', AGGREGATOR_BLOCK_MS: '200' };
    const run = (args: string[], extra: Record<string, string> = {}) =>
      streamgauge(args, { ...env, ...extra });
    const service = async (command: string, ready: string) => {
      const child = spawn(process.execPath, [MAIN, command], {
        env: { ...process.env, ...env, LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let logs = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        logs += chunk.toString();
      });
      const deadline = Date.now() + 15_000;
      while (!logs.includes(ready) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(logs).toContain(ready);
      return async () => {
        child.kill('SIGTERM');
        const [code] = await once(child, 'exit');
        expect(code).toBe(0);
      };
    };
    const client = new Redis(own.url);
    try {
      const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
      const lines = ['node_id,timestamp,flow_rate,pressure'];
      for (let i = 1; i <= 48; i++) lines.push(`BF1,${new Date(hour - i * 1_800_000).toISOString()},${i},3`);
      lines.push(`BF2,${new Date(hour - 3_600_000).toISOString()},7,2.5`);
      writeFileSync(join(dataDir, 'history.csv'), lines.join('\n'));
      expect((await run(['import', join(dataDir, 'history.csv')])).code).toBe(0);

      // No aggregator: said within seconds, not after BACKFILL_APPLY_TIMEOUT_SECONDS (300 s) behind a bar.
      const asking = Date.now();
      const alone = await run(['backfill', '--now']);
      expect(Date.now() - asking).toBeLessThan(5_000);
      expect(alone.code).toBe(1);
      expect(alone.stderr).toContain('no aggregator is running (no replica holds a shard)');
      expect(alone.stderr).not.toContain('[#');
      expect(JSON.parse((await run(['cache-stats', '--json'])).stdout)).toMatchObject({ initialized: false });

      const stopAggregator = await service('aggregate', 'aggregator running');
      const filled = await run(['backfill', '--now']);
      expect(filled.code).toBe(0);
      expect(filled.stdout).toMatch(/backfill \S+: complete/);
      // (The first run's panes may have been applied by the aggregator on its start, or replaced by this run's.)
      expect(filled.stdout).toContain('shards applied 2/2');
      expect(filled.stderr).toMatch(
        /backfill \[#+\] 100% \S+ phase 3\/3, waiting for the aggregators to apply them: shards 2\/2/,
      );
      expect(filled.stdout).toMatch(/panes compared [1-9]/);
      expect(await client.hget('node:BF1:metrics:7d', 'reading_count')).toBe('48');
      expect(await client.hget('node:BF2:latest', 'flow_rate')).toBe('7');
      const stats = await run(['cache-stats']);
      expect(stats.code).toBe(0);
      expect(stats.stdout).toMatch(/status\s+ok/);
      expect(stats.stdout).toMatch(/last refresh\s+20\d\d-/);

      // The archive holds the DuckDB file: --now asks it for the run.
      const stopArchive = await service('archive', 'archiver running');
      const asked = await run(['backfill', '--now', '--json']);
      expect(asked.code).toBe(0);
      expect(asked.stderr).toContain('asked the running backfill');
      expect(JSON.parse(asked.stdout)).toMatchObject({
        status: 'complete',
        panesChanged: 0,
        request: expect.any(String),
      });
      const busy = await run(['backfill']);
      expect(busy.code).toBe(1);
      expect(busy.stderr).toContain('runs the backfill already');
      await stopArchive();
      await stopAggregator();
    } finally {
      client.disconnect();
      await own.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);

  it('detect scores every row of a history offline: two columns or DATA_MODEL columns; bad input is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'streamgauge-detect-'));
    try {
      // Ten days of a noisy diurnal flow every 15 minutes, a 30-minute burst at night on day 8.
      const lines = ['timestamp,value'];
      let seed = 7;
      const noise = () => {
        seed = (seed * 16807) % 2147483647;
        return seed / 2147483647 - 0.5;
      };
      const start = Date.UTC(2014, 3, 1);
      const burst = start + 8 * 86_400_000 + 3 * 3_600_000;
      for (let t = start; t < start + 10 * 86_400_000; t += 900_000) {
        const hour = (t / 3_600_000) % 24;
        const bursting = t >= burst && t < burst + 30 * 60_000;
        const flow = (bursting ? 40 : 10 + 8 * Math.exp(-(((hour - 7.5) / 2) ** 2))) * (1 + 0.1 * noise());
        lines.push(`${new Date(t).toISOString().replace('T', ' ').slice(0, 19)},${flow.toFixed(3)}`);
      }
      lines.push('2014-04-11 00:00:00,lots');
      writeFileSync(join(dir, 'flow.csv'), lines.join('\n'));
      const two = await streamgauge(['detect', join(dir, 'flow.csv')]);
      expect(two.code).toBe(0);
      const out = two.stdout.trim().split('\n');
      expect(out[0]).toBe('timestamp,value,anomaly_score,anomaly_type');
      expect(out).toHaveLength(lines.length);
      const row = (t: number) => {
        const at = new Date(t).toISOString().replace('T', ' ').slice(0, 19);
        return (out.find((l) => l.startsWith(at)) ?? '').split(',');
      };
      const { alarmScore } = DEFAULT_ANOMALY_SETTINGS;
      // Unlikely from its first reading; an anomaly once the second confirms it.
      expect(Number(row(burst)[2])).toBeGreaterThanOrEqual(alarmScore);
      expect(row(burst)[3]).toBe('');
      expect(row(burst + 15 * 60_000)[3]).toBe('high_flow');
      const quiet = out.slice(1).filter((l) => Number(l.split(',')[2]) >= alarmScore);
      expect(quiet.length, 'rows at the alarm score').toBeLessThan(10);
      for (const row of out.slice(1)) {
        const s = row.split(',')[2] ?? '';
        if (s === '') continue;
        expect(Number(s)).toBeGreaterThanOrEqual(0);
        expect(Number(s)).toBeLessThanOrEqual(1);
      }
      expect(out.at(-1)).toBe('2014-04-11 00:00:00,lots,,');
      expect(two.stderr).toContain(`line ${lines.length}: flow_rate: expected a finite number`);

      writeFileSync(
        join(dir, 'model.csv'),
        [
          'node_id,timestamp,flow_rate,pressure',
          'A,2014-04-01 00:00:00,1,3',
          'A,2014-04-01 00:15:00,1,0.5',
          'A,2014-04-01 00:30:00,1,0.4',
        ].join('\n'),
      );
      const model = await streamgauge(['detect', join(dir, 'model.csv'), '--as', 'pressure']);
      expect(model.code).toBe(0);
      // Below the default 1.5 bar minimum twice in a row: low_pressure from the second.
      expect(
        model.stdout
          .trim()
          .split('\n')
          .map((l) =>
            l
              .split(',')
              .slice(0, 2)
              .concat(l.split(',')[3] ?? ''),
          ),
      ).toEqual([
        ['timestamp', 'value', 'anomaly_type'],
        ['2014-04-01 00:00:00', '3', ''],
        ['2014-04-01 00:15:00', '0.5', ''],
        ['2014-04-01 00:30:00', '0.4', 'low_pressure'],
      ]);

      // --as value: any series, the score alone; the burst's first reading is a high value.
      const value = await streamgauge(['detect', join(dir, 'flow.csv'), '--as', 'value']);
      expect(value.code).toBe(0);
      const valued = value.stdout.trim().split('\n');
      expect(valued).toHaveLength(lines.length);
      const at = new Date(burst).toISOString().replace('T', ' ').slice(0, 19);
      expect(valued.find((l) => l.startsWith(at))?.split(',')[3]).toBe('high_value');
      expect(valued.at(-1)).toBe('2014-04-11 00:00:00,lots,,');
      expect(value.stderr).toContain(`line ${lines.length}: value: expected a finite number, got "lots"`);
      const wrongShape = await streamgauge(['detect', join(dir, 'model.csv'), '--as', 'value']);
      expect(wrongShape.code).toBe(2);
      expect(wrongShape.stderr).toContain('--as value reads one series, the columns timestamp,value');

      expect((await streamgauge(['detect', join(dir, 'flow.csv'), '--as', 'volume'])).code).toBe(2);
      writeFileSync(join(dir, 'bad.csv'), 'when,amount\n1,2\n');
      const bad = await streamgauge(['detect', join(dir, 'bad.csv')]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('the header must be');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
