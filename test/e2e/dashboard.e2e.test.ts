import { request as httpRequest } from 'node:http';
import { startAggregator } from '@streamgauge/aggregator';
import { CHANGES_CHANNEL, loadConfig, RANGES, type Reading, readModelKeys } from '@streamgauge/core';
import { type RunningDashboard, startDashboard } from '@streamgauge/dashboard';
import { startIngest } from '@streamgauge/ingest';
import { GatewayRegistry, ViewerRegistry } from '@streamgauge/redis';
import { generateDataset, testRedis, waitForAggregator } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postReadings } from '../support/postReadings.ts';
import { type TestSystem, testSystem } from '../support/system.ts';

const silent = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const cleanup: (() => Promise<void>)[] = [];
let system: TestSystem;
let ingestUrl: string;
let dashboard: RunningDashboard;
const now = Date.now();

/** Districts by node: the dataset's nodes spread over two districts, so filters have something to tell apart. */
const districtOf = (nodeId: string) => (Number(nodeId.slice(4)) % 2 === 0 ? 'EAST' : 'WEST');

beforeAll(async () => {
  system = await testSystem('dashboard', {}, (step) => cleanup.push(step));
  const aggregator = await startAggregator(system.config, silent);
  cleanup.push(() => aggregator.stop());
  const ingest = await startIngest(system.config, silent);
  cleanup.push(() => ingest.close());
  ingestUrl = ingest.url;
  const data = generateDataset({ nodes: 10, days: 3, intervalMs: 20 * 60_000, now, seed: 14 });
  const readings: Reading[] = data.sent.map((r) => ({ ...r, district_id: districtOf(r.node_id) }));
  // Pressure under the 1.5 bar floor, twice: a low_pressure anomaly on NODE002.
  for (const ago of [90_000, 60_000]) {
    readings.push({
      node_id: 'NODE002',
      timestamp: now - ago,
      pressure: 0.4,
      flow_rate: 3,
      district_id: 'EAST',
    });
  }
  await postReadings(ingestUrl, readings);
  await waitForAggregator(system.redis, 1, 120_000);
  // The anomaly reaches its keys by the aggregator's copy loop, after the
  // watermark: the fixture is settled once it is there (the view would catch
  // up within a poll, but the tests compare it with Redis at once).
  for (const deadline = Date.now() + 30_000; ; ) {
    const [open, recent] = await Promise.all([
      system.redis.hlen('node:NODE002:anomalies'),
      system.redis.lrange(readModelKeys.anomaliesRecent, 0, -1),
    ]);
    if (open > 0 && recent.some((json) => json.includes('"NODE002"'))) break;
    if (Date.now() > deadline) throw new Error('the low_pressure anomaly of NODE002 never reached its keys');
    await new Promise((r) => setTimeout(r, 100));
  }
  dashboard = await startDashboard(system.config, silent, {
    host: '127.0.0.1',
    port: 0,
    refreshMs: 50,
    pollMs: 200,
  });
  cleanup.push(() => dashboard.stop());
}, 180_000);

afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
});

async function get(path: string, headers: Record<string, string> = {}, base = dashboard.url) {
  const response = await fetch(`${base}${path}`, { headers });
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field against Redis.
  return { status: response.status, body: (await response.json()) as any };
}

/** A GET sent as written (no URL normalisation, any Host header), by node:http. */
function rawGet(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: hostname, port, path, method: 'GET', headers }, (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0 });
    });
    request.on('error', reject);
    request.end();
  });
}

/** rawGet, with the JSON body. */
function rawGetJson(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: hostname, port, path, method: 'GET', headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** A hash as the contract defines it, read independently: decimal strings to numbers, times kept as text. */
async function numbers(redis: Redis, key: string): Promise<Record<string, number | string> | null> {
  const hash = await redis.hgetall(key);
  if (Object.keys(hash).length === 0) return null;
  return Object.fromEntries(
    Object.entries(hash).map(([k, v]) => [
      k,
      /^(window_start|window_end|updated_at)$/.test(k) ? v : Number(v),
    ]),
  );
}

describe('the read API', () => {
  it('answers the overview with system:metrics, every node counted once and open anomalies by severity', async () => {
    const redis = system.redis;
    const ids = await redis.lrange(readModelKeys.nodesAll, 0, -1);
    for (const range of RANGES) {
      const { status, body } = await get(`/api/v1/overview?range=${range}`);
      expect(status).toBe(200);
      const system24 = await numbers(redis, readModelKeys.systemMetrics(range));
      expect(body.system).toEqual(system24);
    }
    const { body } = await get('/api/v1/overview?range=24h');
    const counts = body.status as Record<string, number>;
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(ids.length);
    const open = await Promise.all(ids.map((id) => redis.hvals(`node:${id}:anomalies`)));
    const severities = open.flat().map((json) => JSON.parse(json).severity as string);
    expect(body.anomalies.openTotal).toBe(severities.length);
    expect(body.anomalies.open.critical).toBe(severities.filter((s) => s === 'critical').length);
    expect(body.anomalies.open.critical).toBeGreaterThanOrEqual(1);
    expect(counts.anomaly).toBe(open.filter((list) => list.length > 0).length);
    expect(body.districts).toEqual(['EAST', 'WEST']);
    const newest = Math.max(
      ...(await Promise.all(ids.map((id) => redis.hget(`node:${id}:latest`, 'timestamp')))).map((t) =>
        Date.parse(t ?? ''),
      ),
    );
    expect(body.freshness.newestReadingAt).toBe(new Date(newest).toISOString());
    expect(body.freshness.lag).toEqual({ aggregator: 0, archiver: expect.any(Number) });
  });

  it('computes a district overview from that district’s node metrics by the aggregator’s rules', async () => {
    const redis = system.redis;
    const ids = (await redis.lrange(readModelKeys.nodesAll, 0, -1)).filter((id) => districtOf(id) === 'WEST');
    const metrics = await Promise.all(ids.map((id) => numbers(redis, readModelKeys.nodeMetrics(id, '6h'))));
    const withPressure = metrics.filter((m) => m !== null && (m.avg_pressure !== 0 || m.max_pressure !== 0));
    const { body } = await get('/api/v1/overview?range=6h&district=WEST');
    expect(body.system.total_nodes).toBe(ids.length);
    expect(body.system.active_nodes).toBe(
      metrics.filter((m) => Number(m?.uptime_percentage ?? 0) > 0.1).length,
    );
    expect(body.system.total_flow).toBeCloseTo(
      metrics.reduce((sum, m) => sum + Number(m?.avg_flow ?? 0), 0),
      9,
    );
    expect(body.system.avg_pressure).toBeCloseTo(
      withPressure.reduce((sum, m) => sum + Number(m?.avg_pressure), 0) / withPressure.length,
      9,
    );
  });

  it('lists nodes with the keys’ values, sorted, filtered and paged', async () => {
    const redis = system.redis;
    const ids = await redis.lrange(readModelKeys.nodesAll, 0, -1);
    const asked = Date.now();
    const all = await get('/api/v1/nodes?range=1h&limit=500');
    const answered = Date.now();
    expect(all.body.total).toBe(ids.length);
    expect(all.body.items.map((n: { node_id: string }) => n.node_id)).toEqual([...ids].sort());
    for (const item of all.body.items) {
      expect(item.metrics).toEqual(await numbers(redis, readModelKeys.nodeMetrics(item.node_id, '1h')));
      const latest = await redis.hgetall(readModelKeys.nodeLatest(item.node_id));
      expect(item.latest).toMatchObject({
        timestamp: latest.timestamp,
        flow_rate: Number(latest.flow_rate),
        pressure: Number(latest.pressure),
      });
      expect(item.district_id).toBe(districtOf(item.node_id));
      const series = JSON.parse((await redis.get(readModelKeys.nodeTimeseries7d(item.node_id))) ?? '{}');
      // The hours that overlap the last 24 (an hour starting after now − 25 h), whichever side of an hour the answer fell.
      const lastDay = (now: number) =>
        series.flow_rates.filter(
          (_: number, i: number) => Date.parse(`${series.timestamps[i]}Z`) > now - 25 * 3_600_000,
        );
      expect([lastDay(asked), lastDay(answered)]).toContainEqual(item.sparkline);
      expect(item.sparkline.length).toBeGreaterThan(20);
    }

    const byFlow = await get('/api/v1/nodes?range=24h&sort=avg_flow&order=desc&limit=500');
    const flows = byFlow.body.items.map((n: { metrics: { avg_flow: number } }) => n.metrics.avg_flow);
    expect(flows).toEqual([...flows].sort((a: number, b: number) => b - a));

    const page = await get('/api/v1/nodes?sort=node_id&offset=3&limit=4');
    expect(page.body.items.map((n: { node_id: string }) => n.node_id)).toEqual([...ids].sort().slice(3, 7));

    const east = await get('/api/v1/nodes?district=EAST&limit=500');
    expect(east.body.total).toBe(ids.filter((id) => districtOf(id) === 'EAST').length);
    const search = await get('/api/v1/nodes?q=node00');
    expect(search.body.items.map((n: { node_id: string }) => n.node_id)).toEqual(
      ids.filter((id) => id.toLowerCase().includes('node00')).sort(),
    );
    const flagged = await get('/api/v1/nodes?status=anomaly');
    expect(flagged.body.items.map((n: { node_id: string }) => n.node_id)).toContain('NODE002');
  });

  it('answers one node with every range’s metrics, its 7-day series and its anomalies', async () => {
    const redis = system.redis;
    const { status, body } = await get('/api/v1/nodes/NODE002');
    expect(status).toBe(200);
    for (const range of RANGES) {
      expect(body.metrics[range]).toEqual(await numbers(redis, readModelKeys.nodeMetrics('NODE002', range)));
    }
    const raw = JSON.parse((await redis.get(readModelKeys.nodeTimeseries7d('NODE002'))) ?? '{}');
    expect(body.series.flow_rates).toEqual(raw.flow_rates);
    expect(body.series.pressures).toEqual(raw.pressures);
    expect(body.series.timestamps).toEqual(raw.timestamps.map((t: string) => `${t.replace(' ', 'T')}.000Z`));
    const open = (await redis.hvals('node:NODE002:anomalies')).map((json) => JSON.parse(json));
    expect(body.anomalies.open.map((a: { id: string }) => a.id).sort()).toEqual(open.map((a) => a.id).sort());
    const low = body.anomalies.open.find((a: { type: string }) => a.type === 'low_pressure');
    expect(low).toMatchObject({ severity: 'critical', unit: 'bar', expected_low: 1.5, value: 0.4 });
    expect(low.deviation).toBeCloseTo(0.4 - 1.5, 9);
    // Minimum night flow: per night, the lowest hourly mean in UTC [2, 5).
    const nights = new Map<string, number>();
    raw.timestamps.forEach((t: string, i: number) => {
      const hour = Number(t.slice(11, 13));
      if (hour >= 2 && hour < 5)
        nights.set(t.slice(0, 10), Math.min(nights.get(t.slice(0, 10)) ?? Infinity, raw.flow_rates[i]));
    });
    expect(body.minimumNightFlow.nights).toEqual([...nights].map(([date, flow]) => ({ date, flow })));
    expect((await get('/api/v1/nodes/NOPE')).status).toBe(404);
  });

  it('lists open anomalies and anomalies:recent, filtered', async () => {
    const redis = system.redis;
    const recent = (await redis.lrange(readModelKeys.anomaliesRecent, 0, -1)).map((json) => JSON.parse(json));
    const { body } = await get('/api/v1/anomalies');
    expect(body.recent.map((a: { id: string }) => a.id)).toEqual(recent.map((a) => a.id));
    expect(body.recent[0]).toMatchObject({
      node_id: recent[0].node_id,
      type: recent[0].anomaly_type,
      value: recent[0].value,
    });
    const critical = await get('/api/v1/anomalies?state=open&severity=critical');
    expect(critical.body.recent).toEqual([]);
    expect(critical.body.open.every((a: { severity: string }) => a.severity === 'critical')).toBe(true);
    expect(critical.body.open.some((a: { node_id: string }) => a.node_id === 'NODE002')).toBe(true);
    const west = await get('/api/v1/anomalies?district=WEST&state=open');
    expect(west.body.open.every((a: { district_id: string }) => a.district_id === 'WEST')).toBe(true);
  });

  it('revalidates the polled answers: an ETag per view version and second, 304 to If-None-Match', async () => {
    for (const path of ['/api/v1/overview?range=24h', '/api/v1/nodes?range=24h&limit=5']) {
      let revalidated = false;
      // The view's version or the second may move between the two requests: a few tries.
      for (let attempt = 0; attempt < 5 && !revalidated; attempt++) {
        const first = await fetch(`${dashboard.url}${path}`);
        const etag = first.headers.get('etag') ?? '';
        expect(first.status).toBe(200);
        expect(first.headers.get('content-type')).toBe('application/json; charset=utf-8');
        expect(etag).toMatch(/^W\/"[0-9a-z]+:\d+\.\d+"$/);
        expect(((await first.json()) as { range: string }).range).toBe('24h');
        const again = await fetch(`${dashboard.url}${path}`, { headers: { 'if-none-match': etag } });
        if (again.status === 304) {
          expect(await again.text()).toBe('');
          revalidated = true;
        } else {
          expect(again.status).toBe(200);
          expect(again.headers.get('etag')).not.toBe(etag);
        }
      }
      expect({ path, revalidated }).toEqual({ path, revalidated: true });
    }
    // Another query, another answer: the same generation never serves one query's body for another.
    const five = (await get('/api/v1/nodes?range=24h&limit=5')).body;
    const two = (await get('/api/v1/nodes?range=24h&limit=2')).body;
    expect(five.items).toHaveLength(5);
    expect(two.items).toHaveLength(2);
  });

  it('reports the pipeline as streamgauge status --json does', async () => {
    const { status, body } = await get('/api/v1/pipeline');
    expect(status).toBe(200);
    expect(body.shards).toHaveLength(1);
    expect(body.shards[0].length).toBe(await system.redis.xlen('readings'));
    expect(body.cache).toMatchObject({ keys: expect.any(Number) });
    expect(typeof body.healthy).toBe('boolean');
  });

  it('answers a clear 400 for each bad parameter', async () => {
    for (const [path, parameter] of [
      ['/api/v1/overview?range=2h', 'range'],
      ['/api/v1/nodes?limit=0', 'limit'],
      ['/api/v1/nodes?limit=501', 'limit'],
      ['/api/v1/nodes?offset=-1', 'offset'],
      ['/api/v1/nodes?sort=colour', 'sort'],
      ['/api/v1/nodes?order=up', 'order'],
      ['/api/v1/nodes?status=fine', 'status'],
      ['/api/v1/anomalies?severity=bad', 'severity'],
      ['/api/v1/anomalies?state=closed', 'state'],
    ] as const) {
      const { status, body } = await get(path);
      expect({ path, status }).toEqual({ path, status: 400 });
      expect(body.parameter).toBe(parameter);
      expect(body.error).toMatch(new RegExp(`^${parameter}: expected`));
    }
  });

  it('serves its OpenAPI description', async () => {
    const { status, body } = await get('/api/v1/openapi.json');
    expect(status).toBe(200);
    expect(Object.keys(body.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/overview',
        '/api/v1/nodes',
        '/api/v1/nodes/{id}',
        '/api/v1/anomalies',
        '/api/v1/pipeline',
        '/api/v1/events',
      ]),
    );
  });
});

describe('access', () => {
  it('needs a viewer token off loopback; gateway tokens do not open it and viewer tokens cannot ingest', async () => {
    const open = await startDashboard(system.config, silent, { host: '0.0.0.0', port: 0, heartbeatMs: 500 });
    try {
      const base = open.url;
      const viewers = new ViewerRegistry(system.redis, { now: () => Date.now() });
      const { token } = await viewers.add('alice');
      const gateway = await new GatewayRegistry(system.redis, { now: () => Date.now() }).add('gw', {
        kind: 'district',
        district: 'EAST',
      });
      const none = await get('/api/v1/overview', {}, base);
      expect(none.status).toBe(401);
      expect(none.body.error).toMatch(/viewer token is required/);
      expect((await get('/api/v1/overview', { authorization: `Bearer ${gateway.token}` }, base)).status).toBe(
        401,
      );
      expect((await get('/api/v1/overview', { authorization: `Bearer ${token}` }, base)).status).toBe(200);
      expect((await get(`/api/v1/nodes?access_token=${token}`, {}, base)).status).toBe(200);
      // The page itself is no secret: it asks for the token.
      expect((await fetch(`${base}/`)).status).toBe(200);
      // Nor are the deployment probes: a probe sends no token and names the pod's address.
      const probeHost = { host: `10.1.2.3:${new URL(base).port}` };
      expect(await rawGetJson(base, '/healthz', probeHost)).toEqual({ status: 200, body: { status: 'ok' } });
      expect(await rawGetJson(base, '/readyz', probeHost)).toEqual({
        status: 200,
        body: { status: 'ready' },
      });
      // On loopback nothing is needed, but a token sent must still be a viewer's.
      expect((await get('/api/v1/overview')).status).toBe(200);
      expect((await get('/api/v1/overview', { authorization: `Bearer ${gateway.token}` })).status).toBe(401);

      // The route decides, not the raw URL: an encoded or absolute-form path is no way around it.
      expect((await rawGet(base, '/%61pi/v1/nodes')).status).toBe(401);
      expect((await rawGet(base, `${base}/api/v1/nodes`)).status).toBe(401);
      // Something shaped unlike a viewer token is refused without a lookup.
      expect(
        (await get('/api/v1/overview', { authorization: `Bearer sgv_${'x'.repeat(200)}` }, base)).status,
      ).toBe(401);
      // On loopback the Host must name this machine: a page that rebinds a name to 127.0.0.1 gets nothing.
      const rebound = await rawGet(dashboard.url, '/api/v1/overview', { host: 'evil.example' });
      expect(rebound.status).toBe(403);
      expect((await rawGet(dashboard.url, '/api/v1/overview', { host: 'localhost' })).status).toBe(200);

      const second = await viewers.add('bob');
      // A revoked viewer's open event stream ends at the next heartbeat.
      const stream = await fetch(`${base}/api/v1/events?access_token=${second.token}`);
      expect(stream.status).toBe(200);
      const ended = (async () => {
        for await (const _ of stream.body as AsyncIterable<Uint8Array>);
      })();
      await viewers.revoke('bob');
      const started = Date.now();
      await ended;
      expect(Date.now() - started).toBeLessThan(5_000);
      const revoked = await get('/api/v1/overview', { authorization: `Bearer ${second.token}` }, base);
      expect(revoked.status).toBe(403);

      // Ingest (auth on) refuses a viewer token.
      const { startIngest: start } = await import('@streamgauge/ingest');
      const ingest = await start(
        { ...system.config, ingest: { ...system.config.ingest, auth: true } },
        silent,
      );
      try {
        const response = await fetch(`${ingest.url}/v1/readings`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify([{ node_id: 'NODE001', timestamp: now, flow_rate: 1 }]),
        });
        expect(response.status).toBe(401);
      } finally {
        await ingest.close();
      }
    } finally {
      await open.stop();
    }
  });
});

describe('probes', () => {
  it('answers /readyz 503 while Redis does not answer a PING, and /healthz 200 throughout', async () => {
    const redis = await testRedis();
    cleanup.push(() => redis.close());
    const probed = await startDashboard(loadConfig({ REDIS_URL: redis.url }), silent, {
      host: '127.0.0.1',
      port: 0,
    });
    try {
      expect(await get('/readyz', {}, probed.url)).toEqual({ status: 200, body: { status: 'ready' } });
      // On loopback the probes are no way around the Host check either.
      expect((await rawGet(probed.url, '/healthz', { host: 'evil.example' })).status).toBe(403);
      if (redis.server === undefined) return; // not our server: it cannot be frozen
      redis.server.pause();
      try {
        const started = Date.now();
        const frozen = await get('/readyz', {}, probed.url);
        expect(frozen.status).toBe(503);
        expect(frozen.body.reason).toMatch(/Redis did not answer a PING within 1000 ms/);
        expect(Date.now() - started).toBeLessThan(3_000);
        expect(await get('/healthz', {}, probed.url)).toEqual({ status: 200, body: { status: 'ok' } });
      } finally {
        redis.server.resume();
      }
      expect((await get('/readyz', {}, probed.url)).status).toBe(200);
      // Gone altogether: a refused connection, answered at once.
      await redis.server.kill();
      for (const deadline = Date.now() + 5_000; ; ) {
        const gone = await get('/readyz', {}, probed.url);
        if (gone.status === 503) {
          expect(gone.body.reason).toMatch(/^Redis did not answer a PING/);
          break;
        }
        if (Date.now() > deadline) throw new Error(`/readyz still ${gone.status} with Redis killed`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await probed.stop();
    }
  }, 30_000);
});

describe('a Redis that stops answering', () => {
  it('fails a refresh step after the deadline, follows again once Redis answers, and a bad key costs only that key', async () => {
    const redis = await testRedis();
    cleanup.push(() => redis.close());
    if (redis.server === undefined) return; // not our server: it cannot be frozen
    const writer = new Redis(redis.url);
    cleanup.push(async () => writer.disconnect());
    const following = await startDashboard(loadConfig({ REDIS_URL: redis.url }), silent, {
      host: '127.0.0.1',
      port: 0,
      refreshMs: 50,
      pollMs: 200,
      deadlineMs: 500,
    });
    try {
      // Subscribed once started (ioredis could let SUBSCRIBE through before its ready check and lose it).
      expect(await writer.pubsub('NUMSUB', CHANGES_CHANNEL)).toEqual([CHANGES_CHANNEL, 1]);
      redis.server.pause();
      const frozenAt = Date.now();
      try {
        await new Promise((r) => setTimeout(r, 2_000));
        // The refreshes went on failing, one after another: none waits for a reply that does not come.
        expect(following.view.state().lastRefreshAt).toBeGreaterThan(frozenAt + 400);
      } finally {
        redis.server.resume();
      }
      await writer.rpush(readModelKeys.nodesAll, 'THAWED');
      await writer.hset(readModelKeys.nodeLatest('THAWED'), {
        timestamp: new Date().toISOString(),
        flow_rate: '4.5',
        pressure: '3',
        temperature: '0',
        volume: '0',
      });
      await writer.publish(
        CHANGES_CHANNEL,
        JSON.stringify({ cause: 'readings', keys: 'all', at: new Date().toISOString(), nodes: ['THAWED'] }),
      );
      let found: { latest?: { flow_rate: number } } = {};
      for (const deadline = Date.now() + 15_000; found.latest === undefined && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 100));
        found = (await get('/api/v1/nodes/THAWED', {}, following.url)).body;
      }
      expect(found.latest?.flow_rate).toBe(4.5);

      // A key of the wrong type (an older writer's) costs that key, not the node's latest reading.
      await writer.set(readModelKeys.nodeMetrics('THAWED', '1h'), 'not a hash');
      await writer.hset(readModelKeys.nodeLatest('THAWED'), { flow_rate: '5.5' });
      await writer.publish(
        CHANGES_CHANNEL,
        JSON.stringify({ cause: 'readings', keys: 'all', at: new Date().toISOString(), nodes: ['THAWED'] }),
      );
      for (const deadline = Date.now() + 15_000; found.latest?.flow_rate !== 5.5 && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 100));
        found = (await get('/api/v1/nodes/THAWED', {}, following.url)).body;
      }
      expect(found.latest?.flow_rate).toBe(5.5);
    } finally {
      await following.stop();
    }
  }, 30_000);
});

describe('live events', () => {
  it('tells every client of a node that appeared, and replays what a reconnecting client missed', async () => {
    const first = await openEvents(`${dashboard.url}/api/v1/events`);
    const second = await openEvents(`${dashboard.url}/api/v1/events`);
    try {
      await postReadings(ingestUrl, [
        { node_id: 'LIVE01', timestamp: Date.now() - 1_000, flow_rate: 2.5, pressure: 3.1 },
      ]);
      for (const client of [first, second]) {
        const event = await client
          .until((e) => e.event === 'change' && JSON.parse(e.data).nodes?.includes('LIVE01'))
          .catch(async (error: Error) => {
            // What the service saw, to tell a lost notice from a lost stream.
            const latest = await system.redis.hgetall(readModelKeys.nodeLatest('LIVE01'));
            throw new Error(
              `${error.message}; hub clients ${dashboard.events.clients}, view version ${dashboard.view.version}, view ${JSON.stringify({ ...dashboard.view.state(), now: Date.now() })}, LIVE01 in view ${dashboard.view.nodes.has('LIVE01')}, latest ${JSON.stringify(latest)}`,
            );
          });
        expect(event.id).toMatch(/^\d+-\d+$/);
      }
      // The view took it in before telling: the node is there at once, in its place in the list.
      expect((await get('/api/v1/nodes/LIVE01')).body.latest.flow_rate).toBe(2.5);
      const listed = (await get('/api/v1/nodes?limit=500')).body.items.map(
        (n: { node_id: string }) => n.node_id,
      );
      expect(listed).toEqual((await system.redis.lrange(readModelKeys.nodesAll, 0, -1)).sort());
      expect(listed).toContain('LIVE01');

      // A second change; a client that saw only the first resumes from it and gets the second.
      await postReadings(ingestUrl, [
        { node_id: 'LIVE02', timestamp: Date.now() - 1_000, flow_rate: 1, pressure: 3 },
      ]);
      const missed = await first.until(
        (e) => e.event === 'change' && JSON.parse(e.data).nodes?.includes('LIVE02'),
      );
      const seenBefore = first.events[first.events.indexOf(missed) - 1];
      expect(seenBefore?.id).toBeDefined();
      const resumed = await openEvents(`${dashboard.url}/api/v1/events`, seenBefore?.id);
      try {
        const replayed = await resumed.until((e) => e.id === missed.id);
        expect(replayed.data).toBe(missed.data);
        expect(resumed.events.find((e) => e.id === seenBefore?.id)).toBeUndefined();
      } finally {
        resumed.close();
      }
      const stranger = await openEvents(`${dashboard.url}/api/v1/events`, '1-1');
      try {
        expect((await stranger.until((e) => e.event === 'reset')).event).toBe('reset');
      } finally {
        stranger.close();
      }
    } finally {
      first.close();
      second.close();
    }
  }, 90_000);
});

describe('metadata', () => {
  it('shows a node’s new name with its reading, and keeps it while later readings change only values', async () => {
    const at = Date.now() - 10_000;
    const shown = async (flow: number) => {
      // biome-ignore lint/suspicious/noExplicitAny: the node's JSON answer.
      let body: any = {};
      for (const deadline = Date.now() + 15_000; body.latest?.flow_rate !== flow && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 50));
        body = (await get('/api/v1/nodes/LIVE03')).body;
      }
      expect(body.latest?.flow_rate).toBe(flow);
      return body;
    };
    await postReadings(ingestUrl, [{ node_id: 'LIVE03', timestamp: at, flow_rate: 1, node_name: 'Pump A' }]);
    expect((await shown(1)).node_name).toBe('Pump A');
    await postReadings(ingestUrl, [
      { node_id: 'LIVE03', timestamp: at + 1_000, flow_rate: 2, node_name: 'Pump B' },
    ]);
    expect((await shown(2)).node_name).toBe('Pump B');
    await postReadings(ingestUrl, [{ node_id: 'LIVE03', timestamp: at + 2_000, flow_rate: 3 }]);
    expect((await shown(3)).node_name).toBe('Pump B');
  }, 60_000);
});

describe('lost notices', () => {
  it('reads everything again when the aggregator moved on and no notice came', async () => {
    const quiet = await testSystem('dashboard-lost-notice', {}, (step) => cleanup.push(step));
    const redis = quiet.redis;
    await redis.xgroup('CREATE', 'readings', 'aggregator', '0', 'MKSTREAM');
    const view = await startDashboard(quiet.config, silent, {
      host: '127.0.0.1',
      port: 0,
      refreshMs: 50,
      pollMs: 200,
    });
    try {
      // What an aggregator whose notice was lost leaves: the node's keys, and the group moved on.
      await redis.rpush(readModelKeys.nodesAll, 'GHOST1');
      await redis.hset(readModelKeys.nodeLatest('GHOST1'), {
        timestamp: new Date().toISOString(),
        flow_rate: '7',
        pressure: '3',
        temperature: '0',
        volume: '0',
      });
      await redis.xadd('readings', '*', 'r', '1');
      await redis.xreadgroup('GROUP', 'aggregator', 'a1', 'COUNT', 10, 'STREAMS', 'readings', '>');
      let found: { latest?: { flow_rate: number } } = {};
      for (const deadline = Date.now() + 15_000; found.latest === undefined && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 200));
        found = (await get('/api/v1/nodes/GHOST1', {}, view.url)).body;
      }
      expect(found.latest?.flow_rate).toBe(7);
      expect(view.view.state().lastFallbackAt).toBeGreaterThan(0);
    } finally {
      await view.stop();
    }
  }, 30_000);
});

interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** A minimal Server-Sent Events client (fetch + the text/event-stream format), as a browser's EventSource reads it. */
async function openEvents(url: string, lastEventId?: string) {
  const controller = new AbortController();
  const response = await fetch(url, {
    signal: controller.signal,
    headers: lastEventId ? { 'last-event-id': lastEventId } : {},
  });
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: SseEvent[] = [];
  const waiters: (() => void)[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: SseEvent = { event: 'message', data: '' };
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) event.id = line.slice(4);
            else if (line.startsWith('event: ')) event.event = line.slice(7);
            else if (line.startsWith('data: ')) event.data += line.slice(6);
          }
          if (event.data !== '' || event.id !== undefined) events.push(event);
          for (const wake of waiters.splice(0)) wake();
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    events,
    close: () => controller.abort(),
    async until(match: (e: SseEvent) => boolean, timeoutMs = 30_000): Promise<SseEvent> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = events.find(match);
        if (found !== undefined) return found;
        if (Date.now() > deadline)
          throw new Error(`no matching event within ${timeoutMs} ms: ${JSON.stringify(events)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
  };
}
