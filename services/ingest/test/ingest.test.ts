import { decodeEntry, type Reading } from '@streamgauge/core';
import { RedisServer, useRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { IngestReply } from '../src/index.ts';
import { issueToken, startTestIngest, type TestIngest } from './harness.ts';

const db = useRedis();

async function streamReadings(redisClient: Redis = db.client): Promise<Reading[]> {
  const entries = await redisClient.xrange('readings', '-', '+');
  return entries.flatMap(([id, fields]) => decodeEntry(id, fields).readings);
}

const now = Date.now();
const t = (minutesAgo: number) => now - minutesAgo * 60_000;
const iso = (ms: number) => new Date(ms).toISOString();
/** What any reply of the service may hold. */
type Reply = Partial<IngestReply> & { error?: string; stored?: string };
const json = async (response: Response): Promise<Reply> => (await response.json()) as Reply;
const ndjson = (items: unknown[]) => `${items.map((i) => JSON.stringify(i)).join('\n')}\n`;

describe('POST /v1/readings', () => {
  let ingest: TestIngest;
  let token: string;

  beforeAll(async () => {
    ingest = await startTestIngest(db.url, { INGEST_AUTH_CACHE_SECONDS: '0' });
  });
  afterAll(() => ingest.close());
  beforeEach(async () => {
    await db.redis.flush();
    token = await issueToken(db.url, 'sel', { district: 'SEL' });
  });

  // Valid, invalid in several ways, duplicate, out of scope, future-dated.
  const mixed = () => [
    {
      node_id: 'A',
      timestamp: iso(t(10)),
      flow_rate: 12.5,
      pressure_1: 3,
      pressure_2: 3.5,
      node_type: 'distribution',
    },
    { node_id: 'A', timestamp: t(9), flow_rate: '12' },
    { node_id: 'B', timestamp: Math.floor(t(9) / 1000), pressure: 2 },
    { node_id: 'A', timestamp: iso(t(10)), flow_rate: 99 },
    { node_id: 'C', timestamp: t(8), pressure: 4.25, district_id: 'OTHER' },
    // An hour ahead of the request, not of the file's loading (a slow start must not make it 3599 s).
    { node_id: 'D', timestamp: Date.now() + 3_600_000, flow_rate: 1 },
    { timestamp: t(7), flow_rate: 1 },
    { node_id: 'E', timestamp: t(7), data_quality_score: 0.9 },
    { node_id: 'B', timestamp: t(6), temperature: 18.2, volume: 1234.5, district_id: 'SEL' },
    { node_id: 'B', timestamp: t(5), pressure: null, flow_rate: 0 },
  ];
  const expectedReply: IngestReply = {
    accepted: 3,
    duplicates: 1,
    rejected: [
      { index: 1, error: 'flow_rate: expected a finite number (L/s), got string "12"' },
      {
        index: 2,
        error: `timestamp: ${Math.floor(t(9) / 1000)} is too small for epoch milliseconds (it would be before 1973); if it is epoch seconds, send ${Math.floor(t(9) / 1000) * 1000}`,
      },
      { index: 4, error: 'district_id: "OTHER" is outside this gateway\'s district "SEL"' },
      {
        index: 5,
        error: expect.stringMatching(/^timestamp: .* is 3600 s in the future \(at most 300 s allowed/),
      },
      { index: 6, error: 'node_id: is required' },
      {
        index: 7,
        error:
          'reading: no measurement; expected at least one of flow_rate, pressure, pressure_1, pressure_2, temperature, volume',
      },
    ],
  } as unknown as IngestReply;
  const expectedStream: Reading[] = [
    {
      node_id: 'A',
      timestamp: t(10),
      flow_rate: 12.5,
      pressure_1: 3,
      pressure_2: 3.5,
      pressure: 3.25,
      node_type: 'distribution',
      district_id: 'SEL',
    },
    { node_id: 'B', timestamp: t(6), temperature: 18.2, volume: 1234.5, district_id: 'SEL' },
    { node_id: 'B', timestamp: t(5), flow_rate: 0, district_id: 'SEL' },
  ];

  it('answers a mixed batch item by item and appends exactly the valid new readings', async () => {
    const response = await ingest.post(JSON.stringify(mixed()), { token });
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual(expectedReply);
    expect(await streamReadings()).toEqual(expectedStream);
  });

  it('gives identical results for the same readings as NDJSON', async () => {
    const response = await ingest.post(ndjson(mixed()), { token, contentType: 'application/x-ndjson' });
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual(expectedReply);
    expect(await streamReadings()).toEqual(expectedStream);
  });

  it('appends a batch sent three times once', async () => {
    const body = JSON.stringify({ readings: mixed() });
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await json(await ingest.post(body, { token })));
    expect(replies.map((r) => [r.accepted, r.duplicates])).toEqual([
      [3, 1],
      [0, 4],
      [0, 4],
    ]);
    expect(await streamReadings()).toEqual(expectedStream);
    expect(await db.client.xlen('readings')).toBe(1);
  });

  it('takes a single reading, an array, and {"readings": [...]}', async () => {
    const one = { node_id: 'A', timestamp: t(3), flow_rate: 1 };
    const two = { node_id: 'A', timestamp: t(2), flow_rate: 2 };
    const three = { node_id: 'A', timestamp: t(1), flow_rate: 3 };
    for (const body of [one, [two], { readings: [three] }]) {
      const response = await ingest.post(JSON.stringify(body), { token });
      expect(await json(response)).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    }
    expect((await streamReadings()).map((r) => r.flow_rate)).toEqual([1, 2, 3]);
  });

  it('answers 422 with the reasons when nothing in the request is usable', async () => {
    const response = await ingest.post(JSON.stringify([{ node_id: 'A', timestamp: t(1), flow_rate: 'x' }]), {
      token,
    });
    expect(response.status).toBe(422);
    expect(await json(response)).toEqual({
      accepted: 0,
      duplicates: 0,
      rejected: [{ index: 0, error: 'flow_rate: expected a finite number (L/s), got string "x"' }],
    });
    expect(await db.client.exists('readings')).toBe(0);
  });

  it('answers 400 for bodies that cannot be read, naming the problem', async () => {
    const cases: [string | Buffer, string, RegExp][] = [
      ['{"node_id": ', 'application/json', /not valid JSON/],
      ['', 'application/json', /body is empty/],
      [Buffer.from([0x7b, 0xff, 0x7d]), 'application/json', /not valid UTF-8/],
      ['42', 'application/json', /expected a reading/],
      ['{"readings": 5}', 'application/json', /"readings": expected an array/],
      ['[]', 'application/json', /no readings/],
      ['\n\n', 'application/x-ndjson', /no readings/],
      ['nope\n{bad', 'application/x-ndjson', /no line of the body is valid JSON/],
    ];
    for (const [body, contentType, message] of cases) {
      const response = await ingest.post(body, { token, contentType });
      expect(response.status, String(body)).toBe(400);
      expect((await json(response)).error).toMatch(message);
    }
    expect((await ingest.post('x', { token, contentType: 'text/plain' })).status).toBe(415);
    const latin1 = await ingest.post('{}', { token, contentType: 'application/json; charset=latin1' });
    expect(latin1.status).toBe(415);
    expect((await json(latin1)).error).toBe('charset=latin1 is not supported: send UTF-8');
    const utf8 = JSON.stringify({ node_id: 'U', timestamp: t(1), flow_rate: 1 });
    expect((await ingest.post(utf8, { token, contentType: 'application/json; charset=UTF-8' })).status).toBe(
      200,
    );
  });

  it('reports a broken NDJSON line per item and keeps the good lines', async () => {
    const body = `${JSON.stringify({ node_id: 'A', timestamp: t(1), flow_rate: 1 })}\n{oops\n[1]\n`;
    const response = await ingest.post(body, { token, contentType: 'application/x-ndjson' });
    expect(response.status).toBe(200);
    const reply = await json(response);
    expect(reply.accepted).toBe(1);
    expect(reply.rejected).toEqual([
      { index: 1, error: expect.stringMatching(/^line 2: not valid JSON/) },
      { index: 2, error: 'line 3: expected one reading per line, got an array' },
    ]);
  });

  it('refuses missing, malformed, unknown and revoked tokens', async () => {
    const body = JSON.stringify({ node_id: 'A', timestamp: t(1), flow_rate: 1 });
    const missing = await ingest.post(body);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    const malformed = await fetch(`${ingest.url}/v1/readings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${token}` },
      body,
    });
    expect(malformed.status).toBe(401);
    expect((await ingest.post(body, { token: 'sg_unknown' })).status).toBe(401);

    const doomed = await issueToken(db.url, 'doomed', { nodes: ['A'] });
    expect((await ingest.post(body, { token: doomed })).status).toBe(200);
    const revoke = new Redis(db.url);
    const { GatewayRegistry } = await import('@streamgauge/redis');
    await new GatewayRegistry(revoke, { now: () => Date.now() }).revoke('doomed');
    revoke.disconnect();
    const revoked = await ingest.post(body, { token: doomed });
    expect(revoked.status).toBe(403);
    expect((await json(revoked)).error).toMatch(/gateway "doomed" was revoked/);
  });

  it("binds a node to the first district that sends it; another district's gateway cannot write it", async () => {
    const other = await issueToken(db.url, 'quartu', { district: 'QUARTU' });
    const body = (district?: string) =>
      JSON.stringify([
        { node_id: 'BOUND', timestamp: t(2), flow_rate: 1, ...(district && { district_id: district }) },
        { node_id: 'OTHER', timestamp: t(2), flow_rate: 1 },
      ]);
    // SEL sends BOUND first: it is SEL's from now on.
    expect(await json(await ingest.post(body(), { token }))).toMatchObject({ accepted: 2, rejected: [] });
    const refused = await json(await ingest.post(body(), { token: other }));
    expect(refused.rejected).toEqual([
      {
        index: 0,
        error: 'node_id: "BOUND" belongs to district "SEL", outside this gateway\'s district "QUARTU"',
      },
      {
        index: 1,
        error: 'node_id: "OTHER" belongs to district "SEL", outside this gateway\'s district "QUARTU"',
      },
    ]);
    // Claiming the district in the reading does not help either.
    const claimed = await json(await ingest.post(body('QUARTU'), { token: other }));
    expect(claimed.rejected?.[0]?.error).toMatch(/belongs to district "SEL"/);
    expect(await db.client.hget('{gateways}:node-district', 'BOUND')).toBe('SEL');
    // The metadata written for BOUND stays SEL's.
    expect((await streamReadings()).every((r) => r.district_id === 'SEL')).toBe(true);
  });

  it('rejects readings for nodes outside a node-scoped token, item by item', async () => {
    const scoped = await issueToken(db.url, 'ab', { nodes: ['A', 'B'] });
    const response = await ingest.post(
      JSON.stringify([
        { node_id: 'A', timestamp: t(1), flow_rate: 1 },
        { node_id: 'Z', timestamp: t(1), flow_rate: 1 },
      ]),
      { token: scoped },
    );
    expect(await json(response)).toEqual({
      accepted: 1,
      duplicates: 0,
      rejected: [{ index: 1, error: 'node_id: "Z" is not among this gateway\'s nodes' }],
    });
    const stream = await db.client.xrange('readings', '-', '+');
    expect(decodeEntry(...(stream[0] as [string, string[]])).source).toBe('ab');
  });
});

describe('limits and authentication settings', () => {
  beforeEach(() => db.redis.flush());

  it('answers 413 above the body size or the batch size, appending nothing', async () => {
    const ingest = await startTestIngest(db.url, {
      INGEST_AUTH: 'off',
      INGEST_MAX_BODY_BYTES: '4096',
      INGEST_MAX_READINGS: '10',
    });
    try {
      const readings = (n: number) =>
        Array.from({ length: n }, (_, i) => ({ node_id: 'A', timestamp: t(i), flow_rate: i }));
      const tooMany = await ingest.post(JSON.stringify(readings(11)));
      expect(tooMany.status).toBe(413);
      expect((await json(tooMany)).error).toBe(
        'the request holds 11 readings; at most 10 are taken per request',
      );
      const tooBig = await ingest.post(JSON.stringify({ readings: readings(10), pad: 'x'.repeat(5000) }));
      expect(tooBig.status).toBe(413);
      expect(await db.client.exists('readings')).toBe(0);
      expect((await ingest.post(JSON.stringify(readings(10)))).status).toBe(200);
    } finally {
      await ingest.close();
    }
  });

  it('accepts readings without a token only when INGEST_AUTH=off', async () => {
    const body = JSON.stringify({ node_id: 'A', timestamp: t(1), flow_rate: 1 });
    const open = await startTestIngest(db.url, { INGEST_AUTH: 'off' });
    const closed = await startTestIngest(db.url);
    try {
      expect((await open.post(body)).status).toBe(200);
      expect((await closed.post(body)).status).toBe(401);
      const stream = await db.client.xrange('readings', '-', '+');
      expect(decodeEntry(...(stream[0] as [string, string[]])).source).toBe('anonymous');
    } finally {
      await open.close();
      await closed.close();
    }
  });

  it('deduplicates across ingest replicas and restarts', async () => {
    const body = JSON.stringify([
      { node_id: 'A', timestamp: t(2), flow_rate: 1 },
      { node_id: 'B', timestamp: t(2), flow_rate: 2 },
    ]);
    const first = await startTestIngest(db.url, { INGEST_AUTH: 'off' });
    const second = await startTestIngest(db.url, { INGEST_AUTH: 'off' });
    expect(await json(await first.post(body))).toMatchObject({ accepted: 2, duplicates: 0 });
    expect(await json(await second.post(body))).toMatchObject({ accepted: 0, duplicates: 2 });
    await first.close();
    await second.close();
    const restarted = await startTestIngest(db.url, { INGEST_AUTH: 'off' });
    expect(await json(await restarted.post(body))).toMatchObject({ accepted: 0, duplicates: 2 });
    await restarted.close();
    expect(await streamReadings()).toHaveLength(2);
  });
});

describe('when the stream is full', () => {
  it('answers 503 naming the bound and the lagging consumers, stores nothing, and takes the retry once they caught up', async () => {
    // 64 KB: a stream the group below never reads fills it in a few dozen
    // requests. (These readings are hours old: with the catch-up lane they
    // would go there instead, once the group is behind; its bound is the next test's.)
    const ingest = await startTestIngest(db.url, {
      INGEST_AUTH: 'off',
      STREAM_MAX_MB: '0.0625',
      CATCHUP_AFTER_MINUTES: '0',
    });
    await db.redis.flush();
    await db.client.xgroup('CREATE', 'readings', 'aggregator', '0', 'MKSTREAM');
    const batch = (minute: number) =>
      JSON.stringify(
        Array.from({ length: 20 }, (_, i) => ({
          node_id: `N${i}`,
          timestamp: t(minute),
          flow_rate: i + 0.5,
        })),
      );
    try {
      let minute = 600;
      let response = await ingest.post(batch(minute));
      while (response.status === 200 && minute > 0) response = await ingest.post(batch(--minute));
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('5');
      const refusal = await json(response);
      expect(refusal.stored).toBe('none');
      expect(refusal.error).toMatch(
        /^the stream readings holds [\d.]+ MB that the consumers \(aggregator, archiver\) have not processed, over its bound of 0\.1 MB \(STREAM_MAX_MB\): nothing from this request was stored; retry it/,
      );
      const held = await streamReadings();
      expect(held.some((r) => r.timestamp === t(minute))).toBe(false);
      // The aggregator reads and acknowledges everything: the retry goes in.
      const read = (await db.client.xreadgroup(
        'GROUP',
        'aggregator',
        'c',
        'COUNT',
        100_000,
        'STREAMS',
        'readings',
        '>',
      )) as [string, [string, string[]][]][];
      await db.client.xack('readings', 'aggregator', ...(read[0]?.[1] ?? []).map(([id]) => id));
      const retried = await ingest.post(batch(minute));
      expect(retried.status).toBe(200);
      expect(await json(retried)).toMatchObject({ accepted: 20, duplicates: 0 });
    } finally {
      await ingest.close();
    }
  });
});

describe('when Redis goes away', () => {
  it('answers 503 within a second, appends nothing partial, and recovers by itself', async () => {
    const server = await RedisServer.start({ appendfsync: 'always' });
    const ingest = await startTestIngest(server.url, { INGEST_AUTH: 'off' });
    const direct = () => new Redis(server.url, { maxRetriesPerRequest: 1 });
    const batch = (minute: number) =>
      JSON.stringify(
        Array.from({ length: 50 }, (_, i) => ({ node_id: `N${i}`, timestamp: t(minute), flow_rate: i })),
      );
    try {
      expect((await ingest.post(batch(3))).status).toBe(200);
      await server.kill();

      const started = performance.now();
      const refused = await ingest.post(batch(2));
      expect(performance.now() - started).toBeLessThan(1000);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      const refusal = await json(refused);
      expect(refusal.stored).toBe('none');
      expect(refusal.error).toMatch(/nothing from this request was stored/);
      expect((await fetch(`${ingest.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${ingest.url}/healthz`)).status).toBe(200);

      await server.start();
      const deadline = Date.now() + 5_000;
      while ((await fetch(`${ingest.url}/readyz`)).status !== 200) {
        if (Date.now() > deadline) throw new Error('ingest did not reconnect within 5 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      const retried = await ingest.post(batch(2));
      expect(retried.status).toBe(200);
      expect(await json(retried)).toMatchObject({ accepted: 50, duplicates: 0 });

      const check = direct();
      const readings = await streamReadings(check);
      check.disconnect();
      expect(readings.map((r) => r.timestamp)).toEqual([...Array(50).fill(t(3)), ...Array(50).fill(t(2))]);
    } finally {
      await ingest.close();
      await server.dispose();
    }
  });

  it('says when a write timed out and may have landed; the retry counts it as duplicates', async () => {
    const server = await RedisServer.start();
    const ingest = await startTestIngest(server.url, { INGEST_AUTH: 'off', INGEST_REDIS_TIMEOUT_MS: '300' });
    try {
      const body = JSON.stringify([{ node_id: 'SLOW', timestamp: t(1), flow_rate: 1 }]);
      server.pause(); // Redis hangs rather than refusing
      const started = performance.now();
      const response = await ingest.post(body);
      expect(performance.now() - started).toBeLessThan(1000);
      expect(response.status).toBe(503);
      const reply = await json(response);
      expect(reply.stored).toBe('unknown');
      expect(reply.error).toMatch(/may be stored; retry it/);
      // The write was in Redis' socket buffer and runs once it resumes: the retry sees it.
      server.resume();
      const deadline = Date.now() + 5_000;
      while ((await fetch(`${ingest.url}/readyz`)).status !== 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await json(await ingest.post(body))).toMatchObject({ accepted: 0, duplicates: 1 });
    } finally {
      server.resume();
      await ingest.close();
      await server.dispose();
    }
  });
});
