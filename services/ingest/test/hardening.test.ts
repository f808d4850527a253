/**
 * What a hostile or careless client can no longer do to ingest, over real
 * sockets against a real Redis: hold its memory without a token, hold a
 * connection forever, write or take over another gateway's nodes, add
 * nodes without bound, send without limit, or make it wait on a hung Redis;
 * and how fast a revocation reaches every replica.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { decodeEntry, type Reading } from '@streamgauge/core';
import { GatewayRegistry, NodeOwners } from '@streamgauge/redis';
import { RedisServer, useRedis } from '@streamgauge/testkit';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { LINGER_MS } from '../src/lingeringClose.ts';
import { issueToken, startTestIngest, type TestIngest, UNLIMITED } from './harness.ts';

const db = useRedis({ flushEach: true });

const now = Date.now();
const reading = (node: string, minutesAgo = 1, extra: Record<string, unknown> = {}) => ({
  node_id: node,
  timestamp: now - minutesAgo * 60_000,
  flow_rate: 1,
  ...extra,
});
type Reply = {
  accepted?: number;
  duplicates?: number;
  rejected?: { index: number; error: string }[];
  error?: string;
  stored?: string;
};
const json = async (response: Response): Promise<Reply> => (await response.json()) as Reply;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function streamReadings(redis: Redis = db.client): Promise<Reading[]> {
  const entries = await redis.xrange('readings', '-', '+');
  return entries.flatMap(([id, fields]) => decodeEntry(id, fields).readings);
}

// ------------------------------------------------------------ raw HTTP/1.1

interface RawResponse {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

function open(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function requestHead(path: string, headers: Record<string, string | number>): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `POST ${path} HTTP/1.1\r\nHost: ingest\r\n${lines.join('\r\n')}\r\n\r\n`;
}

/** The head of a POST of `body` (JSON) to /v1/readings with that Authorization. */
function readingsHead(body: string, authorization: string, extra: Record<string, string> = {}): string {
  return requestHead('/v1/readings', {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    authorization,
    ...extra,
  });
}

/** The next response on `socket` (whole, by Content-Length). */
function response(socket: Socket): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = data.subarray(0, end).toString('latin1');
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (data.length < end + 4 + length) return;
      socket.off('data', onData);
      resolve({
        status: Number(head.split(' ')[1]),
        head,
        body: data.subarray(end + 4, end + 4 + length).toString('utf8'),
      });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`closed before a response (${data.length} bytes)`)));
  });
}

/** Resolves with the ms until the server closed `socket`, or rejects after `withinMs`. */
function closedWithin(socket: Socket, withinMs: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve(0);
    const timer = setTimeout(
      () => reject(new Error(`the connection was still open after ${withinMs} ms`)),
      withinMs,
    );
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - started);
    });
    socket.resume();
  });
}

// ---------------------------------------------------------------- the tests

describe('authentication before the body', () => {
  let ingest: TestIngest;
  afterEach(() => ingest?.close());

  it('answers a missing, unknown or revoked token from the headers and closes the connection, the body unread', async () => {
    ingest = await startTestIngest(db.url);
    const revoked = await issueToken(db.url, 'gone', { district: 'SEL' });
    await new GatewayRegistry(db.client, { now: Date.now }).revoke('gone');
    const cases: [string | undefined, number, RegExp][] = [
      [undefined, 401, /missing "Authorization: Bearer <token>" header/],
      ['Bearer sg_nobody', 401, /unknown token/],
      [`Bearer ${revoked}`, 403, /gateway "gone" was revoked/],
    ];
    for (const [authorization, status, error] of cases) {
      const socket = await open(ingest.url);
      const headers: Record<string, string | number> = {
        'content-type': 'application/json',
        'content-length': 5_000_000,
      };
      if (authorization !== undefined) headers.authorization = authorization;
      socket.write(requestHead('/v1/readings', headers));
      const started = performance.now();
      // Not a byte of the 5 MB body is sent: the answer cannot wait for it.
      const answer = await response(socket);
      expect(performance.now() - started, String(authorization)).toBeLessThan(1_000);
      expect(answer.status).toBe(status);
      expect(answer.head).toMatch(/connection: close/i);
      expect((JSON.parse(answer.body) as Reply).error).toMatch(error);
      expect(await closedWithin(socket, 1_000)).toBeLessThan(1_000);
    }
    expect(await streamReadings()).toEqual([]);
  });

  it('tells a client that asks first (Expect: 100-continue) to send its body only once admitted', async () => {
    ingest = await startTestIngest(db.url);
    const token = await issueToken(db.url, 'sel', { district: 'SEL' });
    const body = JSON.stringify(reading('ASK'));
    const ask = async (authorization: string) => {
      const socket = await open(ingest.url);
      let seen = '';
      socket.on('data', (chunk: Buffer) => {
        seen += chunk.toString('latin1');
      });
      socket.write(readingsHead(body, authorization, { expect: '100-continue' }));
      await sleep(300);
      return { socket, seen: () => seen };
    };
    const refused = await ask('Bearer sg_nobody');
    expect(refused.seen()).toMatch(/^HTTP\/1\.1 401 /);
    expect(refused.seen()).not.toContain('100 Continue');
    await closedWithin(refused.socket, 1_000);

    const admitted = await ask(`Bearer ${token}`);
    expect(admitted.seen()).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    admitted.socket.write(body);
    await sleep(300);
    expect(admitted.seen()).toMatch(/HTTP\/1\.1 200 OK/);
    expect(admitted.seen()).toContain('{"accepted":1,"duplicates":0,"rejected":[]}');
    admitted.socket.destroy();
  });

  it('answers a body sent to no route 404 from the headers, and closes the connection', async () => {
    ingest = await startTestIngest(db.url);
    for (const [method, path] of [
      ['POST', '/nope'],
      ['PUT', '/v1/readings'],
      ['DELETE', '/healthz'],
    ] as const) {
      const socket = await open(ingest.url);
      socket.write(
        requestHead(path, { 'content-type': 'application/json', 'content-length': 5_000_000 }).replace(
          /^POST/,
          method,
        ),
      );
      const answer = await response(socket);
      expect(answer.status, `${method} ${path}`).toBe(404);
      expect(JSON.parse(answer.body)).toEqual({ error: `no route ${method} ${path}` });
      expect(await closedWithin(socket, 1_000)).toBeLessThan(1_000);
    }
  });

  it('lets a client still sending its body read the 401 before the connection closes', async () => {
    // The client is busy while the answer and the close arrive, then writes
    // again before it reads: a close with the body unread (a reset) makes
    // that write fail and the 401, already received, is lost with the socket.
    const child = await IngestChild.start(db.url);
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const socket = await open(child.url);
        const answer = response(socket);
        const chunk = Buffer.alloc(256 * 1024, 0x20);
        socket.write(
          requestHead('/v1/readings', { 'content-type': 'application/json', 'content-length': 4_900_000 }),
        );
        socket.write(chunk);
        const busyUntil = performance.now() + 400;
        while (performance.now() < busyUntil);
        socket.write(chunk);
        const { status, body } = await answer;
        expect(status).toBe(401);
        expect(JSON.parse(body)).toEqual({ error: expect.stringContaining('token') });
        expect(await closedWithin(socket, 5_000)).toBeLessThan(5_000);
      }
    } finally {
      await child.stop();
    }
  });

  it('cuts off a refused client that goes on sending, LINGER_MS after its 401', async () => {
    ingest = await startTestIngest(db.url);
    const { hostname, port } = new URL(ingest.url);
    // A client that keeps its side open after ours closes (half-open), and sends on.
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: hostname, port: Number(port), allowHalfOpen: true }, () => resolve(s));
      s.once('error', reject);
    });
    socket.on('error', () => {});
    const answer = response(socket);
    socket.write(
      requestHead('/v1/readings', { 'content-type': 'application/json', 'content-length': 4_900_000 }),
    );
    expect((await answer).status).toBe(401);
    const answered = performance.now();
    const closed = closedWithin(socket, LINGER_MS + 2_000);
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    while (!socket.destroyed && performance.now() - answered < LINGER_MS + 2_000) {
      socket.write(chunk);
      await sleep(50);
    }
    expect(await closed).toBeGreaterThanOrEqual(LINGER_MS - 100);
  });

  it('holds no memory for 30 connections sending unauthenticated 4.9 MB bodies slowly', async () => {
    const child = await IngestChild.start(db.url);
    try {
      const before = child.rssBytes();
      const sockets = await Promise.all(Array.from({ length: 30 }, () => open(child.url)));
      const answers: Promise<RawResponse>[] = [];
      const closed: Promise<number>[] = [];
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let peak = before;
      const senders = sockets.map(async (socket) => {
        socket.on('error', () => {});
        answers.push(response(socket));
        closed.push(closedWithin(socket, 5_000));
        socket.write(
          requestHead('/v1/readings', { 'content-type': 'application/json', 'content-length': 4_900_000 }),
        );
        // About 1.3 MB/s, until the server has closed the connection.
        for (let sent = 0; sent < 4_900_000 && !socket.destroyed; sent += chunk.length) {
          socket.write(chunk);
          await sleep(50);
        }
      });
      const sampler = setInterval(() => {
        peak = Math.max(peak, child.rssBytes());
      }, 100);
      let statuses: number[];
      let closedAfter: number[];
      try {
        statuses = (await Promise.all(answers)).map((a) => a.status);
        closedAfter = await Promise.all(closed);
        await Promise.all(senders);
        await sleep(500);
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, child.rssBytes());
      console.log(
        `30 unauthenticated 4.9 MB bodies: ingest RSS ${(before / 2 ** 20).toFixed(1)} MiB → peak ${(peak / 2 ** 20).toFixed(1)} MiB; closed after ≤ ${Math.round(Math.max(...closedAfter))} ms`,
      );
      expect(statuses).toEqual(Array(30).fill(401));
      expect(Math.max(...closedAfter)).toBeLessThan(5_000);
      // Buffered, the bodies would be 147 MB; the connections themselves cost a few KB each.
      expect(peak - before, `RSS ${before} → peak ${peak} bytes`).toBeLessThan(16 * 1024 * 1024);
    } finally {
      await child.stop();
    }
  });
});

describe('connection deadlines', () => {
  let ingest: TestIngest;
  afterEach(() => ingest?.close());

  it('answers 408 to a body that does not arrive within INGEST_REQUEST_TIMEOUT_SECONDS, storing nothing', async () => {
    ingest = await startTestIngest(db.url, { INGEST_REQUEST_TIMEOUT_SECONDS: '1' });
    const token = await issueToken(db.url, 'sel', { district: 'SEL' });
    const socket = await open(ingest.url);
    const body = JSON.stringify(reading('SLOW'));
    socket.write(readingsHead(body, `Bearer ${token}`));
    socket.write(body.slice(0, 10));
    const started = performance.now();
    const answer = await response(socket);
    const waited = performance.now() - started;
    expect(answer.status).toBe(408);
    expect((JSON.parse(answer.body) as Reply).error).toBe(
      'the request was not received within 1 s (INGEST_REQUEST_TIMEOUT_SECONDS); nothing of it was stored',
    );
    // The deadline, checked every second.
    expect(waited).toBeGreaterThan(800);
    expect(waited).toBeLessThan(2_500);
    await closedWithin(socket, 1_000);
    expect(await streamReadings()).toEqual([]);
  });

  it('closes connections whose headers stall, idle keep-alive connections, and connections over the cap', async () => {
    ingest = await startTestIngest(db.url, {
      INGEST_HEADERS_TIMEOUT_SECONDS: '1',
      INGEST_KEEP_ALIVE_SECONDS: '1',
    });
    const stalled = await open(ingest.url);
    stalled.write('POST /v1/readings HTTP/1.1\r\nHost: ingest\r\n');
    expect(await closedWithin(stalled, 3_000)).toBeLessThan(3_000);

    const token = await issueToken(db.url, 'sel', { district: 'SEL' });
    const idle = await open(ingest.url);
    const body = JSON.stringify(reading('KEEP'));
    idle.write(readingsHead(body, `Bearer ${token}`) + body);
    expect((await response(idle)).status).toBe(200);
    expect(await closedWithin(idle, 3_000)).toBeLessThan(3_000);
    await ingest.close();

    // On a connection that has answered before, a stalled request still gets its 408.
    ingest = await startTestIngest(db.url, { INGEST_REQUEST_TIMEOUT_SECONDS: '1' });
    const reused = await open(ingest.url);
    const head = readingsHead(body, `Bearer ${token}`);
    reused.write(head + body);
    expect((await response(reused)).status).toBe(200);
    reused.write(head + body.slice(0, 5));
    expect((await response(reused)).status).toBe(408);
    await closedWithin(reused, 1_000);
    await ingest.close();

    ingest = await startTestIngest(db.url, { INGEST_MAX_CONNECTIONS: '3' });
    const held = await Promise.all(Array.from({ length: 3 }, () => open(ingest.url)));
    const extra = await open(ingest.url);
    expect(await closedWithin(extra, 1_000)).toBeLessThan(1_000);
    for (const socket of held) socket.destroy();
  });
});

describe('node ownership', () => {
  let ingest: TestIngest;
  afterEach(() => ingest?.close());

  it("keeps a district token off a node-scoped gateway's node, and the node's district unchanged", async () => {
    ingest = await startTestIngest(db.url);
    const owner = await issueToken(db.url, 'pump7', { nodes: ['other-1'] });
    const hostile = await issueToken(db.url, 'hostile', { district: 'HOSTILE' });
    expect(
      (await ingest.post(JSON.stringify(reading('other-1', 2, { district_id: 'SEL' })), { token: owner }))
        .status,
    ).toBe(200);

    for (const body of [reading('other-1'), reading('other-1', 1, { district_id: 'HOSTILE' })]) {
      const refused = await ingest.post(JSON.stringify([body]), { token: hostile });
      expect(refused.status).toBe(422);
      expect((await json(refused)).rejected).toEqual([
        { index: 0, error: 'node_id: "other-1" belongs to gateway "pump7", which names it in its scope' },
      ]);
    }
    // The owner's node keeps the district its first reading named; a reading claiming another is refused.
    const moved = await json(
      await ingest.post(JSON.stringify(reading('other-1', 0, { district_id: 'HOSTILE' })), { token: owner }),
    );
    expect(moved.rejected).toEqual([
      { index: 0, error: 'district_id: "HOSTILE" is not node "other-1"\'s district "SEL"' },
    ]);
    expect(await db.client.hget('{gateways}:node-district', 'other-1')).toBe('SEL');
    expect((await streamReadings()).map((r) => [r.node_id, r.district_id])).toEqual([['other-1', 'SEL']]);
  });

  it("settles a node once per request, by its first reading: a node-scoped gateway's readings of it all take the district it binds", async () => {
    ingest = await startTestIngest(db.url);
    const token = await issueToken(db.url, 'pump8', { nodes: ['p-1'] });
    // Known, without a district (and remembered so by ingest).
    expect((await ingest.post(JSON.stringify(reading('p-1', 3)), { token })).status).toBe(200);
    const both = await json(
      await ingest.post(JSON.stringify([reading('p-1', 2, { district_id: 'SEL' }), reading('p-1', 1)]), {
        token,
      }),
    );
    expect(both).toEqual({ accepted: 2, duplicates: 0, rejected: [] });
    expect(await db.client.hget('{gateways}:node-district', 'p-1')).toBe('SEL');
    expect((await streamReadings()).map((r) => r.district_id)).toEqual([undefined, 'SEL', 'SEL']);
  });

  it('lets a district gateway add at most INGEST_NEW_NODES_PER_HOUR new nodes; an operator assigns the rest', async () => {
    ingest = await startTestIngest(db.url, { INGEST_NEW_NODES_PER_HOUR: '3' });
    const token = await issueToken(db.url, 'sel', { district: 'SEL' });
    const batch = ['N1', 'N2', 'N3', 'N4', 'N5'].map((id) => reading(id));
    const first = await json(await ingest.post(JSON.stringify(batch), { token }));
    expect(first.accepted).toBe(3);
    expect(first.rejected).toEqual(
      [3, 4].map((index) => ({
        index,
        error: `node_id: "N${index + 1}" is new, and gateway "sel" has already added 3 new nodes this hour (INGEST_NEW_NODES_PER_HOUR); an operator can add it: streamgauge nodes assign N${index + 1} --district SEL`,
      })),
    );
    // Known nodes still pass; the capped ones stay out until assigned.
    const again = await json(
      await ingest.post(JSON.stringify(batch.map((r) => ({ ...r, timestamp: r.timestamp + 1 }))), { token }),
    );
    expect({ accepted: again.accepted, rejected: again.rejected?.length }).toEqual({
      accepted: 3,
      rejected: 2,
    });

    await new NodeOwners(db.client).assign(['N4', 'N5'], 'SEL');
    const assigned = await json(await ingest.post(JSON.stringify(batch.slice(3)), { token }));
    expect(assigned).toEqual({ accepted: 2, duplicates: 0, rejected: [] });
    expect(await db.client.hgetall('{gateways}:node-district')).toEqual({
      N1: 'SEL',
      N2: 'SEL',
      N3: 'SEL',
      N4: 'SEL',
      N5: 'SEL',
    });
  });

  it('with INGEST_NEW_NODES_PER_HOUR=0, nodes join only by an operator, and a release lets another district take one', async () => {
    ingest = await startTestIngest(db.url, { INGEST_NEW_NODES_PER_HOUR: '0' });
    const sel = await issueToken(db.url, 'sel', { district: 'SEL' });
    const quartu = await issueToken(db.url, 'quartu', { district: 'QUARTU' });
    const refused = await json(await ingest.post(JSON.stringify(reading('FRESH')), { token: sel }));
    expect(refused.rejected?.[0]?.error).toBe(
      'node_id: "FRESH" is not a node of district "SEL" yet, and new nodes join only by an operator (INGEST_NEW_NODES_PER_HOUR=0); an operator can add it: streamgauge nodes assign FRESH --district SEL',
    );
    const owners = new NodeOwners(db.client);
    await owners.assign(['FRESH'], 'SEL');
    expect((await ingest.post(JSON.stringify(reading('FRESH')), { token: sel })).status).toBe(200);
    expect((await ingest.post(JSON.stringify(reading('FRESH', 2)), { token: quartu })).status).toBe(422);
    await owners.assign(['FRESH'], 'QUARTU');
    expect((await ingest.post(JSON.stringify(reading('FRESH', 3)), { token: quartu })).status).toBe(200);
    expect((await ingest.post(JSON.stringify(reading('FRESH', 4)), { token: sel })).status).toBe(422);
  });
});

describe('rate limits', () => {
  const ingests: TestIngest[] = [];
  afterEach(async () => {
    await Promise.all(ingests.splice(0).map((i) => i.close()));
  });
  const start = async (env: Record<string, string>) => {
    const ingest = await startTestIngest(db.url, env);
    ingests.push(ingest);
    return ingest;
  };

  it("answers 429 with Retry-After over a gateway's requests/s, shared by every replica, and recovers", async () => {
    const env = { INGEST_RATE_REQUESTS: '5' };
    const [a, b] = [await start(env), await start(env)];
    const token = await issueToken(db.url, 'sel', { district: 'SEL' });
    const post = (ingest: TestIngest, i: number) => ingest.post(JSON.stringify(reading(`R${i}`)), { token });
    const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => post(i % 2 === 0 ? a : b, i)));
    const statuses = burst.map((r) => r.status).sort();
    // A burst of 5, then about 5 a second: a few ms of refill can let one more through.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(5);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(6);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
    const limited = burst.find((r) => r.status === 429) as Response;
    expect(limited.headers.get('retry-after')).toBe('1');
    expect((await json(limited)).error).toBe('gateway "sel" is over its 5 requests/s; retry after 1 s');
    await sleep(1_100);
    expect((await post(b, 99)).status).toBe(200);
  });

  it("answers 429 over a gateway's readings/s, appending nothing of that request, and takes it after Retry-After", async () => {
    const ingest = await start({ INGEST_RATE_READINGS: '100', INGEST_MAX_READINGS: '100' });
    const token = await issueToken(db.url, 'sel', { district: 'SEL' });
    const batch = (minutesAgo: number) =>
      JSON.stringify(Array.from({ length: 100 }, (_, i) => reading(`M${i % 10}`, minutesAgo + i / 1000)));
    expect((await ingest.post(batch(1), { token })).status).toBe(200);
    const limited = await ingest.post(batch(2), { token });
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBe(1);
    expect((await json(limited)).error).toBe(
      'gateway "sel" is over its 100 readings/s (100 in this request); nothing was stored; retry after 1 s',
    );
    expect((await streamReadings()).length).toBe(100);
    await sleep(retryAfter * 1000 + 50);
    expect(await json(await ingest.post(batch(2), { token }))).toMatchObject({ accepted: 100 });
  });

  it('holds a gateway to its own rates where they are set (gateways add --requests-per-second)', async () => {
    const ingest = await start({ INGEST_RATE_REQUESTS: '1000' });
    const slow = await issueToken(db.url, 'slow', { district: 'SEL' }, { requestsPerSecond: 2 });
    const free = await issueToken(db.url, 'free', { district: 'SEL' }, UNLIMITED);
    const send = (token: string, i: number) =>
      ingest.post(JSON.stringify(reading(`S${i % 3}`, i)), { token });
    const slowStatuses = await Promise.all(Array.from({ length: 6 }, (_, i) => send(slow, i))).then((r) =>
      r.map((x) => x.status),
    );
    expect(slowStatuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(3);
    const freeStatuses = await Promise.all(Array.from({ length: 30 }, (_, i) => send(free, 100 + i))).then(
      (r) => r.map((x) => x.status),
    );
    expect(freeStatuses.every((s) => s === 200)).toBe(true);
  });

  it('throttles failed authentication per client address, across replicas, without a token lookup', async () => {
    const env = { INGEST_AUTH_FAILURES_PER_MINUTE: '6' };
    const [a, b] = [await start(env), await start(env)];
    const token = await issueToken(db.url, 'sel', { district: 'SEL' });
    // A gateway that authenticated before the attack keeps sending.
    expect((await a.post(JSON.stringify(reading('OK1')), { token })).status).toBe(200);
    const body = JSON.stringify(reading('X'));
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++)
      statuses.push((await (i % 2 === 0 ? a : b).post(body, { token: `sg_guess${i}` })).status);
    expect(statuses.slice(0, 6)).toEqual(Array(6).fill(401));
    expect(statuses.slice(6)).toEqual(Array(4).fill(429));
    const throttled = await a.post(body, { token: 'sg_another' });
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await json(throttled)).error).toMatch(
      /^too many failed authentications from (::ffff:)?127\.0\.0\.1 \(at most 6 a minute, INGEST_AUTH_FAILURES_PER_MINUTE\); retry after \d+ s$/,
    );
    // Even a correct token is not looked up from that address meanwhile (it would tell a guess that hit)...
    expect((await b.post(JSON.stringify(reading('OK2')), { token })).status).toBe(429);
    // ...but one this replica already knows passes.
    expect((await a.post(JSON.stringify(reading('OK3')), { token })).status).toBe(200);
  });
});

describe('bounded waits', () => {
  it('answers within INGEST_REDIS_TIMEOUT_MS whichever call Redis hangs on: 503, stored none before the write, unknown after', async () => {
    const server = await RedisServer.start();
    const ingest = await startTestIngest(server.url, {
      INGEST_REDIS_TIMEOUT_MS: '600',
      INGEST_AUTH_CACHE_SECONDS: '60',
    });
    try {
      const limited = await issueToken(server.url, 'limited', { district: 'SEL' });
      const free = await issueToken(server.url, 'free', { district: 'SEL' }, UNLIMITED);
      const fresh = await issueToken(server.url, 'fresh', { district: 'SEL' });
      for (const token of [limited, free]) {
        expect((await ingest.post(JSON.stringify(reading('H1')), { token })).status).toBe(200);
      }
      server.pause();
      const answer = async (token: string, minutesAgo: number) => {
        const started = performance.now();
        const reply = await ingest.post(JSON.stringify(reading('H1', minutesAgo)), { token });
        return { ms: performance.now() - started, status: reply.status, stored: (await json(reply)).stored };
      };
      // Each hangs at a different call; each is answered within the 600 ms budget and a margin.
      // A token not looked up yet: the lookup hangs, before anything is written.
      const lookup = await answer(fresh, 2);
      // A known token held to the default rates: its rate limit hangs, before the write.
      const rate = await answer(limited, 3);
      // A known token with no rates, on a node it is known to own: the append itself hangs.
      const append = await answer(free, 4);
      // The same, on a node it has not sent before: binding the node hangs, before the write.
      const started = performance.now();
      const claim = await ingest.post(JSON.stringify(reading('H9', 5)), { token: free });
      const claimMs = performance.now() - started;
      expect({ status: claim.status, stored: (await json(claim)).stored }).toEqual({
        status: 503,
        stored: 'none',
      });
      expect(claimMs).toBeLessThan(900);
      console.log(
        `Redis paused, 600 ms budget: lookup ${Math.round(lookup.ms)} ms, rate limit ${Math.round(rate.ms)} ms, append ${Math.round(append.ms)} ms`,
      );
      for (const step of [lookup, rate, append]) {
        expect(step.status).toBe(503);
        expect(step.ms).toBeGreaterThan(500);
        expect(step.ms).toBeLessThan(900);
      }
      expect([lookup.stored, rate.stored, append.stored]).toEqual(['none', 'none', 'unknown']);
    } finally {
      server.resume();
      await ingest.close();
      await server.dispose();
    }
  });
});

describe('revocation', () => {
  it('takes effect on every replica within a second, however long tokens are remembered', async () => {
    const env = { INGEST_AUTH_CACHE_SECONDS: '3600' };
    const replicas = [await startTestIngest(db.url, env), await startTestIngest(db.url, env)];
    try {
      const token = await issueToken(db.url, 'doomed', { district: 'SEL' });
      for (const [i, replica] of replicas.entries()) {
        expect((await replica.post(JSON.stringify(reading(`V${i}`)), { token })).status).toBe(200);
      }
      await new GatewayRegistry(db.client, { now: Date.now }).revoke('doomed');
      const revokedAt = performance.now();
      const tookMs = await Promise.all(
        replicas.map(async (replica, i) => {
          for (;;) {
            const status = (await replica.post(JSON.stringify(reading(`V${i}`, 2)), { token })).status;
            if (status === 403) return performance.now() - revokedAt;
            if (performance.now() - revokedAt > 2_000)
              throw new Error(`replica ${i} still answered ${status}`);
            await sleep(20);
          }
        }),
      );
      console.log(
        `revocation seen by the replicas after ${tookMs.map((ms) => Math.round(ms)).join(' and ')} ms`,
      );
      expect(Math.max(...tookMs)).toBeLessThan(1_000);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
    }
  });
});

// ------------------------------------------------------- ingest in a process

class IngestChild {
  readonly url: string;
  readonly #child: ChildProcess;

  private constructor(child: ChildProcess, url: string) {
    this.#child = child;
    this.url = url;
  }

  static async start(redisUrl: string): Promise<IngestChild> {
    const script = fileURLToPath(new URL('./childIngest.ts', import.meta.url));
    const child = spawn(process.execPath, [script], {
      env: {
        ...process.env,
        REDIS_URL: redisUrl,
        INGEST_HOST: '127.0.0.1',
        INGEST_PORT: '0',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line !== undefined) resolve((JSON.parse(line) as { url: string }).url);
      });
      child.once('exit', (code) => reject(new Error(`ingest exited (${code}) before it listened`)));
    });
    return new IngestChild(child, url);
  }

  /** Resident memory, from /proc. */
  rssBytes(): number {
    const status = readFileSync(`/proc/${this.#child.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill('SIGTERM');
    await Promise.race([exited, sleep(5_000)]);
    this.#child.kill('SIGKILL');
  }
}
