import {
  DEFAULT_ANOMALY_SETTINGS,
  encodePanes,
  ManualClock,
  NodeDetector,
  NodeWindows,
  type PaneRing,
  shardKeys,
} from '@streamgauge/core';
import { RedisServer, useRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { AggregateStore, CommitConnection, LeaseLostError, ShardLeases } from '../src/index.ts';

const db = useRedis({ flushEach: true });
const shard = shardKeys(0, 1);
const now = Date.UTC(2026, 10, 25, 12);

function node(id: string): NodeWindows {
  const windows = new NodeWindows(id, 360_000);
  windows.add({ node_id: id, timestamp: now - 60_000, flow_rate: 2, pressure: 3 }, now);
  return windows;
}

const commitOf = (windows: NodeWindows[], ackIds: string[]) => ({
  changed: windows,
  added: windows.map((w) => w.nodeId),
  removed: [],
  group: 'aggregator',
  ackIds,
  deadLetters: [{ id: '1-0', error: 'bad entry', deliveries: 3 }],
  failures: [],
  counters: { entries: 2, readings: 1 },
});

/** A commit connection beside `client`, once it is up. */
async function commitConnectionBeside(client: Redis): Promise<CommitConnection> {
  const connection = CommitConnection.beside(client, 'test-commits') as CommitConnection;
  for (let i = 0; i < 100 && !connection.ready; i++) await new Promise((r) => setTimeout(r, 10));
  return connection;
}

/** A store whose replica holds the shard's lease. */
async function storeOn(
  client: Redis,
  leases = new ShardLeases(client, { token: 'replica-a', leaseMs: 60_000 }),
): Promise<AggregateStore> {
  const token = await leases.acquire(shard);
  if (token === undefined) throw new Error('the lease is taken');
  return new AggregateStore(client, shard, { ttlSeconds: 3600, token });
}

/**
 * Runs `test` with a client of a Redis of its own that `away` stops while
 * its callback runs and starts again (AOF: the lease, like everything
 * Redis acknowledged, survives). The client fails commands at once while
 * Redis is away, and is ready again when `away` returns.
 */
async function withRedisThatGoesAway(
  test: (client: Redis, away: (meanwhile: () => Promise<void>) => Promise<void>) => Promise<void>,
): Promise<void> {
  const server = await RedisServer.start({ appendfsync: 'always' });
  const client = new Redis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
  client.on('error', () => {});
  const away = async (meanwhile: () => Promise<void>) => {
    await server.kill();
    await meanwhile();
    await server.start();
    for (let i = 0; i < 100 && client.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 50));
  };
  try {
    await new Promise((resolve) => client.once('ready', resolve));
    await test(client, away);
  } finally {
    client.disconnect();
    await server.dispose();
  }
}

describe('AggregateStore', () => {
  it('moves the applied mark to the highest committed entry, but never past one still pending', async () => {
    const client = db.client;
    const store = await storeOn(client);
    await client.xgroup('CREATE', shard.stream, 'aggregator', '0', 'MKSTREAM');
    const ids: string[] = [];
    for (let i = 0; i < 4; i++)
      ids.push((await client.xadd(shard.stream, `${100 + i}-0`, 'n', '0')) as string);
    const [e1, e2, e3, e4] = ids as [string, string, string, string];
    // e1 is delivered to a consumer that never applies it (a lost read's reply); e2 and e3 are applied.
    await client.xreadgroup('GROUP', 'aggregator', 'ghost', 'COUNT', 1, 'STREAMS', shard.stream, '>');
    await client.xreadgroup('GROUP', 'aggregator', 'live', 'COUNT', 2, 'STREAMS', shard.stream, '>');
    const batch = (ackIds: string[]) => ({ ...commitOf([], ackIds), deadLetters: [] });
    expect(await store.prepare(batch([e2, e3]))()).toBe('99-18446744073709551615');
    expect(await store.appliedThrough()).toBe('99-18446744073709551615');
    // Once e1 is applied, the mark passes everything committed.
    expect(await store.prepare(batch([e1]))()).toBe(e3);
    // A replayed entry at or below the mark leaves it where it is; a retried commit reports it too.
    const replay = store.prepare(batch([e2]));
    expect(await replay()).toBe(e3);
    expect(await replay()).toBe(e3);
    await client.xreadgroup('GROUP', 'aggregator', 'live', 'COUNT', 1, 'STREAMS', shard.stream, '>');
    expect(await store.prepare(batch([e4]))()).toBe(e4);
    expect(await client.ttl(shard.aggregateApplied)).toBeGreaterThan(3000);
  });

  it('applies a commit once, however often it is retried', async () => {
    const store = await storeOn(db.client);
    const commit = store.prepare(commitOf([node('N1')], ['1-0', '2-0']));
    await commit();
    await commit(); // as after a reply lost in transit
    expect(await db.client.hgetall(shard.aggregateStats)).toEqual({ entries: '2', readings: '1' });
    const [[, dead]] = (await db.client.xrange(shard.deadLetters, '-', '+')) as [string, string[]][] as [
      [string, string[]],
    ];
    expect(dead).toEqual([
      'stream',
      'readings',
      'id',
      '1-0',
      'group',
      'aggregator',
      'error',
      'bad entry',
      'deliveries',
      '3',
    ]);
    const loaded = await store.load(360_000);
    expect(loaded.get('N1')?.windows.evaluate('1h', now).pane[0]).toBe(1);
  });

  it('applies a commit that failed while Redis was away once it is back', async () => {
    await withRedisThatGoesAway(async (client, away) => {
      const store = await storeOn(client);
      const commit = store.prepare(commitOf([node('N2')], ['5-0']));
      await away(async () => {
        await expect(commit()).rejects.toThrow();
      });
      await commit();
      await commit();
      expect(await client.hget(shard.aggregateStats, 'entries')).toBe('2');
      expect((await store.load(360_000)).has('N2')).toBe(true);
    });
  });

  it('refuses the commit of a replica whose lease another holds, and changes nothing', async () => {
    const stale = await storeOn(db.client);
    const commit = stale.prepare(commitOf([node('N3')], ['7-0']));
    // The lease expired and another replica took the shard.
    await db.client.del(shard.lease);
    await storeOn(db.client, new ShardLeases(db.client, { token: 'replica-b', leaseMs: 60_000 }));
    await expect(commit()).rejects.toBeInstanceOf(LeaseLostError);
    await stale.markWritten('7-0');
    const touched = [
      shard.aggregateStats,
      shard.aggregateNode('N3'),
      shard.deadLetters,
      shard.aggregateWritten,
    ];
    expect(await db.client.exists(...touched)).toBe(0);
  });

  it('fences off an earlier acquisition of the same replica too', async () => {
    const leases = new ShardLeases(db.client, { token: 'replica-a', leaseMs: 60_000 });
    const stale = await storeOn(db.client, leases);
    const commit = stale.prepare(commitOf([node('N4')], ['9-0']));
    // The lease expired and the same replica took the shard again.
    await db.client.del(shard.lease);
    const again = await storeOn(db.client, leases);
    await expect(commit()).rejects.toBeInstanceOf(LeaseLostError);
    await again.markWritten('10-0');
    await stale.markWritten('9-0');
    expect(await db.client.get(shard.aggregateWritten)).toBe('10-0');
  });

  it('gives a lease to one acquisition at a time; only its holder renews or releases it', async () => {
    const a = new ShardLeases(db.client, { token: 'a', leaseMs: 60_000 });
    const b = new ShardLeases(db.client, { token: 'b', leaseMs: 60_000 });
    const first = (await a.acquire(shard)) as string;
    expect(first).toMatch(/^a#/);
    expect(await b.acquire(shard)).toBeUndefined();
    expect(await b.release(shard, 'b#1')).toBe(false);
    expect(await a.renew(shard, first)).toBe(true);
    expect(await a.release(shard, first)).toBe(true);
    expect(await b.acquire(shard)).toBeDefined();
    expect(await a.renew(shard, first)).toBe(false);
    expect(await a.members()).toEqual(['a']);
    expect((await b.members()).sort()).toEqual(['a', 'b']);
    await a.leave();
    expect(await b.members()).toEqual(['b']);
  });

  it('keeps the last error of a failed entry until it is acknowledged', async () => {
    const store = await storeOn(db.client);
    await store.prepare({
      ...commitOf([], []),
      deadLetters: [],
      failures: [{ id: '9-0', error: 'bad JSON' }],
    })();
    expect(await store.lastErrors(['9-0', '8-0'])).toEqual(new Map([['9-0', 'bad JSON']]));
    await store.prepare({ ...commitOf([], ['9-0']), deadLetters: [] })();
    expect(await store.lastErrors(['9-0'])).toEqual(new Map());
  });
});

/** `count` nodes with `readings` readings each, a minute apart (their rings' recent and older panes). */
function busyNodes(prefix: string, count: number, readings: number, at = now): NodeWindows[] {
  return Array.from({ length: count }, (_, i) => {
    const windows = new NodeWindows(`${prefix}${i}`, 360_000);
    for (let k = readings - 1; k >= 0; k--)
      windows.add(
        {
          node_id: `${prefix}${i}`,
          timestamp: at - k * 61_000,
          flow_rate: i + k / 7,
          pressure: (k * 3) % 11,
        },
        at,
      );
    return windows;
  });
}

/** What a node's windows say, every range, and its latest values. */
const seen = (windows: NodeWindows, at: number) => ({
  latest: windows.latest,
  ranges: ['1h', '24h', '7d'].map((range) => windows.evaluate(range as '1h', at)),
});

describe('commits of many nodes (packed state of megabytes, framed as it is)', () => {
  it.each([
    ['a script call', false],
    ['a transaction', true],
  ])('load back as they were (sent as %s)', async (_, asTransaction) => {
    const connection = asTransaction ? await commitConnectionBeside(db.client) : undefined;
    try {
      const store = new AggregateStore(db.client, shard, {
        ttlSeconds: 3600,
        token: (await new ShardLeases(db.client, { token: 'r', leaseMs: 60_000 }).acquire(shard)) as string,
        clock: new ManualClock(now),
        ...(connection && { connection }),
      });
      const nodes = busyNodes('n', 400, 30);
      await db.client.config('RESETSTAT');
      await store.prepare({ ...commitOf(nodes, []), deadLetters: [] })();
      // It went the way asked.
      expect(await db.client.info('commandstats')).toMatch(
        asTransaction ? /cmdstat_exec:/ : /cmdstat_evalsha:/,
      );
      expect(await db.client.hget(shard.aggregateStats, 'readings')).toBe('1');
      const loaded = await store.load(360_000);
      expect(loaded.size).toBe(400);
      for (const n of nodes)
        expect(seen(loaded.get(n.nodeId)?.windows as NodeWindows, now)).toEqual(seen(n, now));
    } finally {
      await connection?.close();
    }
  });

  it('are packed into the memory of commits done; one that failed keeps its bytes until it is applied', async () => {
    await withRedisThatGoesAway(async (client, away) => {
      const clock = new ManualClock(now);
      const token = await new ShardLeases(client, { token: 'r', leaseMs: 600_000 }).acquire(shard);
      const store = new AggregateStore(client, shard, { ttlSeconds: 3600, token: token as string, clock });
      const first = busyNodes('a', 300, 40);
      const second = busyNodes('b', 200, 20);
      await store.prepare({ ...commitOf(first, ['1-0']), deadLetters: [] })();
      // In the first one's memory; Redis goes away before it is sent.
      const failing = store.prepare({ ...commitOf(second, ['2-0']), deadLetters: [] });
      await away(async () => {
        await expect(failing()).rejects.toThrow();
      });
      // A commit prepared meanwhile packs elsewhere: the failed one still holds its bytes.
      const later = now + 120_000;
      clock.set(later);
      for (const n of first.slice(0, 100))
        n.add({ node_id: n.nodeId, timestamp: later - 1_000, flow_rate: -1, pressure: 99 }, later);
      const third = store.prepare({ ...commitOf(first.slice(0, 100), ['3-0']), deadLetters: [] });
      await failing();
      await third();
      expect(await client.hget(shard.aggregateStats, 'entries')).toBe('6');
      const loaded = await store.load(360_000);
      expect(loaded.size).toBe(500);
      for (const n of [...first, ...second])
        expect(seen(loaded.get(n.nodeId)?.windows as NodeWindows, later)).toEqual(seen(n, later));
    });
  });
});

describe('a detector’s lifecycle, persisted apart while an anomaly is open', () => {
  it.each([
    ['a script call', false],
    ['a transaction', true],
  ])(
    'loads with the learning of its last whole state; the next whole state deletes it (sent as %s)',
    async (_, asTransaction) => {
      const connection = asTransaction ? await commitConnectionBeside(db.client) : undefined;
      try {
        const store = new AggregateStore(db.client, shard, {
          ttlSeconds: 3600,
          token: (await new ShardLeases(db.client, { token: 'r', leaseMs: 60_000 }).acquire(shard)) as string,
          ...(connection && { connection }),
        });
        const key = shard.aggregateNode('n1');
        const windows = node('n1');
        const detector = new NodeDetector('n1', { ...DEFAULT_ANOMALY_SETTINGS, checkpointReadings: 10 });
        /** The reading time of the last whole state committed. */
        let learntUpTo: number | undefined;
        const parts: string[] = [];
        const commitAt = async (i: number, pressure: number) => {
          const t = now - 3_600_000 + i * 60_000;
          detector.observe({ node_id: 'n1', timestamp: t, flow_rate: 5 + (i % 3), pressure });
          const checkpoint = detector.checkpoint();
          if (checkpoint === undefined) return;
          parts.push(checkpoint.part);
          if (checkpoint.part === 'state') learntUpTo = t;
          await store.prepare({
            ...commitOf([windows], []),
            deadLetters: [],
            detectors: new Map([['n1', checkpoint]]),
          })();
        };
        const loaded = async () => (await store.load(360_000)).get('n1')?.detector;
        // Learning, then below the 1.5 bar minimum: pending, open.
        let i = 0;
        for (; i < 12; i++) await commitAt(i, 4 + (i % 2) / 10);
        for (; !parts.includes('lifecycle') || detector.open.length === 0; i++)
          await commitAt(i, 1 + (i % 3) / 100);
        expect(await db.client.hexists(key, 'anom:life')).toBe(1);
        const apart = await loaded();
        expect(apart?.open).toEqual(detector.open);
        expect(apart?.lifecycleApart).toBe(true);
        expect(apart?.last, 'the learning of the last whole state').toBe(learntUpTo);
        expect(learntUpTo).toBeLessThan(now - 3_600_000 + (i - 1) * 60_000);
        // Still open at the next whole state: it holds the lifecycle, the part apart is gone.
        while (parts.at(-1) !== 'state') await commitAt(i++, 1 + (i % 3) / 100);
        expect(await db.client.hexists(key, 'anom:life')).toBe(0);
        const whole = await loaded();
        expect(whole?.open).toEqual(detector.open);
        expect(whole?.open).toHaveLength(1);
        expect(whole?.lifecycleApart).toBeUndefined();
        expect(whole?.last).toBe(learntUpTo);
      } finally {
        await connection?.close();
      }
    },
  );
});

describe('state persisted in format 1 (23-double panes, field p<ring>.<slot>)', () => {
  /** A format-1 pane: count, flowing, newest, then n, mean, m2, min, max of flow, pressure, temperature, volume. */
  function oldPane(pane: number, readings: { t: number; flow: number; pressure: number }[]): Buffer {
    const flows = readings.map((r) => r.flow);
    const pressures = readings.map((r) => r.pressure);
    const stats = (xs: number[]) => {
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      return [xs.length, mean, xs.reduce((a, x) => a + (x - mean) ** 2, 0), Math.min(...xs), Math.max(...xs)];
    };
    const empty = [0, 0, 0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    const values = [
      readings.length,
      flows.filter((f) => f > 0).length,
      Math.max(...readings.map((r) => r.t)),
      ...stats(flows),
      ...stats(pressures),
      ...empty,
      ...empty,
    ];
    const buffer = Buffer.alloc(8 + 23 * 8);
    buffer.writeDoubleLE(pane, 0);
    values.forEach((v, i) => {
      buffer.writeDoubleLE(v, 8 + i * 8);
    });
    return buffer;
  }

  it('is read into the new rings, and the next commit writes the new fields and deletes the old ones', async () => {
    const client = db.client;
    const MINUTE = 60_000;
    const HOUR = 3_600_000;
    // Two readings 20 minutes ago (one 1-minute, 15-minute and hourly pane), one 3 hours ago.
    const recent = [
      { t: now - 20 * MINUTE, flow: 2, pressure: 3 },
      { t: now - 20 * MINUTE + 10_000, flow: 4, pressure: 3.5 },
    ];
    const older = [{ t: now - 3 * HOUR, flow: 6, pressure: 2 }];
    const key = shard.aggregateNode('OLD');
    const paneOf = (t: number, ms: number) => Math.floor(t / ms);
    await client.hset(key, {
      'p0.5': oldPane(paneOf(recent[0]?.t as number, MINUTE), recent),
      'p1.9': oldPane(paneOf(recent[0]?.t as number, 5 * MINUTE), recent),
      'p2.7': oldPane(paneOf(recent[0]?.t as number, 15 * MINUTE), recent),
      'p2.8': oldPane(paneOf(older[0]?.t as number, 15 * MINUTE), older),
      'p3.1': oldPane(paneOf(recent[0]?.t as number, HOUR), recent),
      'p3.2': oldPane(paneOf(older[0]?.t as number, HOUR), older),
      latest: JSON.stringify({ timestamp: recent[1]?.t, flow_rate: 4, pressure: 3.5 }),
      meta: JSON.stringify({}),
    });
    await client.sadd(shard.aggregateNodes, 'OLD');
    const store = await storeOn(client);
    const loaded = (await store.load(360_000)).get('OLD');
    if (loaded === undefined) throw new Error('node not loaded');
    const { windows } = loaded;
    const count = (range: '1h' | '6h' | '24h' | '30d') => windows.evaluate(range, now).pane[0];
    expect([count('1h'), count('6h'), count('24h'), count('30d')]).toEqual([2, 3, 3, 3]);
    expect(windows.evaluate('30d', now).pane[4]).toBeCloseTo(4, 12); // flow mean of 2, 4, 6
    expect(windows.hourlySeries(now).map((p) => p.flow)).toEqual([6, 3]);

    await store.prepare({ ...commitOf([windows], []), deadLetters: [] })();
    const fields = await client.hkeys(key);
    expect(fields.filter((f) => f.startsWith('p') || f === 'latest' || f === 'meta')).toEqual([]);
    expect(fields).toContain('h');
    expect(fields.filter((f) => /^r\d$/.test(f)).length).toBeGreaterThan(0);
    const again = (await store.load(360_000)).get('OLD')?.windows;
    for (const range of ['1h', '6h', '24h', '3d', '7d', '30d'] as const) {
      expect([...(again?.evaluate(range, now).pane ?? [])]).toEqual([...windows.evaluate(range, now).pane]);
    }
  });
});

describe('state persisted in format 2 (newest panes c<ring>, latest and meta as JSON)', () => {
  it('is read whole, and the next commit moves it into the head and deletes the old fields', async () => {
    const client = db.client;
    const HOUR = 3_600_000;
    const windows = new NodeWindows('F2', 360_000);
    for (let i = 0; i < 200; i++) {
      const t = now - 40 * HOUR + i * 12 * 60_000;
      windows.add({ node_id: 'F2', timestamp: t, flow_rate: (i % 7) + 0.5, pressure: 3 + (i % 3) / 10 }, now);
    }
    windows.add(
      { node_id: 'F2', timestamp: now - 1000, flow_rate: 9, node_name: 'Pump 9', district_id: 'D1' },
      now,
    );
    // Format 2's fields, as its encodeChanges wrote them.
    const hash: Record<string, Buffer | string> = {
      latest: JSON.stringify(windows.latest),
      meta: JSON.stringify(windows.metadata),
    };
    windows.rings.forEach((ring, r) => {
      const held = ring.panes();
      const newest = held.pop() as number;
      hash[`r${r}`] = Buffer.from(encodePanes(ring, held));
      hash[`c${r}`] = Buffer.from(encodePanes(ring, [newest]));
    });
    const key = shard.aggregateNode('F2');
    await client.hset(key, hash);
    await client.sadd(shard.aggregateNodes, 'F2');
    const store = await storeOn(client);
    const expectSame = (loaded: NodeWindows | undefined) => {
      expect(loaded?.latest).toEqual(windows.latest);
      expect(loaded?.metadata).toEqual(windows.metadata);
      for (const range of ['1h', '6h', '24h', '3d', '7d', '30d'] as const) {
        expect([...(loaded?.evaluate(range, now).pane ?? [])]).toEqual([
          ...windows.evaluate(range, now).pane,
        ]);
      }
      expect(loaded?.hourlySeries(now)).toEqual(windows.hourlySeries(now));
    };
    const loaded = (await store.load(360_000)).get('F2')?.windows;
    expectSame(loaded);

    // A reading in new newest panes: the head replaces the old fields, and
    // the panes it pushed out of the head go to the rings' recent fields.
    const next = { node_id: 'F2', timestamp: now, flow_rate: 4, pressure: 3.3 };
    loaded?.add(next, now);
    windows.add(next, now);
    await store.prepare({ ...commitOf(loaded ? [loaded] : [], []), deadLetters: [] })();
    const rolled = windows.rings.flatMap((ring, r) =>
      ring.paneOf(now) === ring.paneOf(now - 1000) ? [] : [`t${r}`],
    );
    expect(rolled.length).toBeGreaterThan(0);
    expect((await client.hkeys(key)).sort()).toEqual(['h', 'r0', 'r1', 'r2', 'r3', 'r4', 'r5', ...rolled]);
    expectSame((await store.load(360_000)).get('F2')?.windows);
  });
});

describe('a ring’s recent panes', () => {
  const MINUTE = 60_000;
  const start = now - 3 * 3_600_000;
  const readingAt = (i: number) => ({
    node_id: 'N',
    timestamp: start + i * 20_000,
    flow_rate: (i % 11) + 0.25,
    pressure: 3 + (i % 5) / 10,
  });
  const expectSameWindows = (loaded: NodeWindows | undefined, truth: NodeWindows, at: number) => {
    for (const range of ['1h', '6h', '24h', '3d', '7d', '30d'] as const) {
      expect([...(loaded?.evaluate(range, at).pane ?? [])]).toEqual([...truth.evaluate(range, at).pane]);
    }
    expect(loaded?.hourlySeries(at)).toEqual(truth.hourlySeries(at));
  };

  it.each([
    ['a script call', false],
    ['a transaction', true],
  ])(
    'are rewritten apart while a node reads in order, the older ones now and then, and load back exact across restarts (commits sent as %s)',
    async (_, asTransaction) => {
      const client = db.client;
      const clock = new ManualClock(start);
      const leases = new ShardLeases(client, { token: 'replica-a', leaseMs: 60_000 });
      const token = (await leases.acquire(shard)) as string;
      const connection = asTransaction ? await commitConnectionBeside(client) : undefined;
      onTestFinished(() => connection?.close());
      const store = new AggregateStore(client, shard, {
        ttlSeconds: 3600,
        token,
        clock,
        ...(connection && { connection }),
      });
      const key = shard.aggregateNode('N');
      const truth = new NodeWindows('N', 360_000);
      let live = new NodeWindows('N', 360_000);
      // Three hours, a reading every 20 s, committed every minute (a pane of
      // ring 0 closing each time); every half hour the node is loaded back, as
      // a restarted replica would, and goes on from what it loaded.
      const written: string[][] = [];
      for (let i = 0; i < 540; i++) {
        const reading = readingAt(i);
        clock.set(reading.timestamp);
        truth.add(reading, reading.timestamp);
        live.add(reading, reading.timestamp);
        if (i % 3 !== 2) continue;
        const before = await client.hgetall(key);
        await store.prepare({ ...commitOf([live], []), deadLetters: [] })();
        const after = await client.hgetall(key);
        written.push(Object.keys({ ...before, ...after }).filter((f) => after[f] !== before[f]));
        if (i % 90 === 89) {
          const loaded = (await store.load(360_000)).get('N')?.windows;
          expectSameWindows(loaded, truth, reading.timestamp);
          if (loaded) live = loaded;
        }
      }
      // Ring 0's older panes (an hour of minutes) went out about once in 12 minutes, not every minute.
      const r0 = written.filter((fields) => fields.includes('r0')).length;
      const t0 = written.filter((fields) => fields.includes('t0')).length;
      expect(written.length).toBe(180);
      expect(r0).toBeLessThanOrEqual(Math.ceil(180 / 12) + 1);
      expect(r0 + t0).toBeGreaterThanOrEqual(179);

      // A late reading in an older pane rewrites them, and drops the recent field.
      const at = start + 539 * 20_000;
      const late = { node_id: 'N', timestamp: at - 40 * MINUTE, flow_rate: 99, pressure: 1 };
      truth.add(late, at);
      live.add(late, at);
      await store.prepare({ ...commitOf([live], []), deadLetters: [] })();
      const fields = await client.hkeys(key);
      expect(fields).toContain('r0');
      expect(fields).not.toContain('t0');
      expectSameWindows((await store.load(360_000)).get('N')?.windows, truth, at);
    },
  );

  it('are ignored when not newer than the older panes (left behind by an aggregator that knew none)', async () => {
    const client = db.client;
    const store = await storeOn(client);
    const key = shard.aggregateNode('N');
    const truth = new NodeWindows('N', 360_000);
    for (let i = 0; i < 60; i++) truth.add(readingAt(i), readingAt(i).timestamp);
    await store.prepare({ ...commitOf([truth], []), deadLetters: [] })();
    // A recent field from before: panes the older field now holds too, with other contents.
    const ring = truth.rings[0] as PaneRing;
    const stale = new NodeWindows('N', 360_000);
    stale.add({ ...readingAt(3), flow_rate: 1000 }, readingAt(3).timestamp);
    await client.hset(
      key,
      't0',
      Buffer.from(encodePanes(stale.rings[0] as PaneRing, [ring.paneOf(readingAt(3).timestamp)])),
    );
    const at = readingAt(59).timestamp;
    expectSameWindows((await store.load(360_000)).get('N')?.windows, truth, at);
  });

  // A node's hash gains or loses a field (the TTL is set) at least once an
  // hour of its readings: its 1-minute ring's recent panes are rewritten
  // with the older ones once the first of them leaves the ring's hour.
  it.each([
    ['every 10 s', 10_000],
    ['every 7 min', 7 * 60_000],
    ['every 2 h', 2 * 3600_000],
  ])(
    "renews a node's state TTL while it receives readings (%s), though not at every commit",
    async (_, every) => {
      const client = db.client;
      const clock = new ManualClock(now);
      const store = new AggregateStore(client, shard, { ttlSeconds: 3600, token: '', clock });
      const windows = new NodeWindows('N', 360_000);
      const key = shard.aggregateNode('N');
      const renewals: number[] = [];
      let commits = 0;
      for (let at = now; at < now + 6 * 3600_000; at += every) {
        clock.set(at + 1_000);
        windows.add({ node_id: 'N', timestamp: at, flow_rate: 2 }, clock.now());
        await store.prepare({ ...commitOf([windows], []), deadLetters: [] })();
        commits++;
        // Lowered after each commit: a TTL above it again is one the next commit set.
        if ((await client.ttl(key)) > 1_000) renewals.push(at);
        await client.expire(key, 1_000);
      }
      expect(renewals[0]).toBe(now);
      const gaps = renewals.slice(1).map((at, i) => at - (renewals[i] as number));
      const longest = Math.max(...gaps, now + 6 * 3600_000 - (renewals.at(-1) as number));
      expect(longest).toBeLessThanOrEqual(3600_000 + every);
      if (every >= 3600_000) expect(renewals).toHaveLength(commits);
      else expect(renewals.length).toBeLessThan(commits / 2);
    },
  );
});
