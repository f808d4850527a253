import { decodeEntry, ManualClock, type Reading, shardKeys } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { DedupeSets, ReadingLog, RedisUnavailableError, StreamFullError } from '../src/index.ts';

const HOUR = 3_600_000;
const SLOT = 1_200_000;
const NOW = Date.UTC(2026, 10, 25, 12);
const db = useRedis({ flushEach: true });

const reading = (node: string, minutesAgo: number, flow = minutesAgo): Reading => ({
  node_id: node,
  timestamp: NOW - minutesAgo * 60_000,
  flow_rate: flow,
});

/** Group `slow` reads everything new (as consumer `c`): the entry ids. */
async function readAll(): Promise<string[]> {
  const read = (await db.client.xreadgroup(
    'GROUP',
    'slow',
    'c',
    'COUNT',
    100_000,
    'STREAMS',
    'readings',
    '>',
  )) as [string, [string, string[]][]][];
  return (read[0]?.[1] ?? []).map(([id]) => id);
}

async function streamReadings(stream: string): Promise<Reading[]> {
  const entries = await db.client.xrange(stream, '-', '+');
  return entries.flatMap(([id, fields]) => decodeEntry(id, fields).readings);
}

describe('ReadingLog', () => {
  const options = {
    shards: 1,
    retentionMs: 48 * HOUR,
    dedupeHorizonMs: 48 * HOUR,
    clock: new ManualClock(NOW),
  };

  it('appends one entry per call holding the new readings, in order', async () => {
    const log = new ReadingLog(db.client, options);
    const batch = [reading('A', 3), reading('B', 2), reading('A', 1)];
    expect(await log.append(batch, 'gw')).toEqual({ accepted: 3, duplicates: 0 });
    const entries = await db.client.xrange('readings', '-', '+');
    expect(entries).toHaveLength(1);
    expect(decodeEntry(...(entries[0] as [string, string[]]))).toMatchObject({
      source: 'gw',
      readings: batch,
    });
  });

  it('skips readings seen before and repeats inside a batch, keeping the rest', async () => {
    const log = new ReadingLog(db.client, options);
    await log.append([reading('A', 3), reading('A', 2)], 'gw');
    const again = await log.append(
      [reading('A', 2, 999), reading('A', 1), reading('A', 1, 5), reading('B', 2)],
      'gw',
    );
    expect(again).toEqual({ accepted: 2, duplicates: 2 });
    expect(await streamReadings('readings')).toEqual([
      reading('A', 3),
      reading('A', 2),
      reading('A', 1),
      reading('B', 2),
    ]);
  });

  it('keeps the right readings when a request interleaves nodes and hours', async () => {
    const log = new ReadingLog(db.client, options);
    await log.append([reading('A', 5), reading('B', 70), reading('C', 2)], 'gw');
    // Three nodes over two hours, interleaved; the script gets them grouped by hour and node.
    const batch = [
      reading('B', 70, 100),
      reading('A', 1, 101),
      reading('B', 5, 102),
      reading('A', 5, 103),
      reading('C', 70, 104),
      reading('A', 70, 105),
      reading('B', 70, 106),
      reading('C', 2, 107),
      reading('A', 1, 108),
    ];
    expect(await log.append(batch, 'gw')).toEqual({ accepted: 4, duplicates: 5 });
    const entries = await db.client.xrange('readings', '-', '+');
    expect(decodeEntry(...(entries[1] as [string, string[]])).readings).toEqual([
      batch[1],
      batch[2],
      batch[4],
      batch[5],
    ]);
    expect(await log.append(batch, 'gw')).toEqual({ accepted: 0, duplicates: 9 });
  });

  it('appends nothing and writes no entry when everything is a duplicate', async () => {
    const log = new ReadingLog(db.client, options);
    await log.append([reading('A', 1)], 'gw');
    expect(await log.append([reading('A', 1)], 'gw')).toEqual({ accepted: 0, duplicates: 1 });
    expect(await db.client.xlen('readings')).toBe(1);
  });

  it('rebuilds the entry without the duplicates, byte for byte, whatever characters the readings hold', async () => {
    const log = new ReadingLog(db.client, options);
    const named = (node: string, minutesAgo: number, name: string): Reading => ({
      ...reading(node, minutesAgo),
      node_name: name,
      district_id: 'Sèrra ✓ 水',
    });
    await log.append([named('Ü1', 2, 'first')], 'gw');
    const batch = [
      named('Ü1', 3, 'Pozzo «nord» 🚰'),
      named('Ü1', 2, 'a duplicate ✗'),
      named('B', 2, 'ß'),
      named('B', 2, 'a repeat ✗'),
      named('C', 1, ''),
    ];
    expect(await log.append(batch, 'gw')).toEqual({ accepted: 3, duplicates: 2 });
    const entries = await db.client.xrange('readings', '-', '+');
    expect(decodeEntry(...(entries[1] as [string, string[]])).readings).toEqual([
      batch[0],
      batch[2],
      batch[4],
    ]);
  });

  it("finds a node's earlier readings however many it sends at once and however many it holds", async () => {
    const log = new ReadingLog(db.client, options);
    const at = (ms: number): Reading => ({ node_id: 'L', timestamp: NOW - HOUR + ms, flow_rate: ms });
    // 5,000 offsets held in one hour (a long list: the script indexes it rather than scanning it per reading).
    const held = Array.from({ length: 5_000 }, (_, i) => at(i * 7));
    expect(await log.append(held, 'gw')).toEqual({ accepted: 5_000, duplicates: 0 });
    // 50 readings, every other one held before.
    const mixed = Array.from({ length: 50 }, (_, i) => at(i % 2 === 0 ? i * 7 : i * 7 + 1));
    expect(await log.append(mixed, 'gw')).toEqual({ accepted: 25, duplicates: 25 });
    // Few readings against the long list (scanned), one held, one repeated within the request.
    expect(await log.append([at(3), at(14), at(3)], 'gw')).toEqual({ accepted: 1, duplicates: 2 });
    // 35,840 (00 8C 00 00) is not held, but its bytes straddle two held offsets
    // (133 = 85 00 00 00, then 140 = 8C 00 00 00): no match off a 4-byte boundary.
    expect(await log.append([at(35_840)], 'gw')).toEqual({ accepted: 1, duplicates: 0 });
  });

  it("keeps a fast node's slot field short, sealing its older offsets away, and still finds every one of them", async () => {
    const clock = new ManualClock(NOW);
    const log = new ReadingLog(db.client, { ...options, clock });
    const start = Math.floor((NOW - HOUR) / SLOT) * SLOT;
    const key = `seen:{readings}:s${start / SLOT}`;
    const at = (ms: number, node = 'F'): Reading => ({ node_id: node, timestamp: start + ms, flow_rate: ms });
    const fieldBytes = () => db.client.hstrlen(key, 'F');
    const packed = (...offsets: number[]) =>
      Buffer.concat(offsets.map((o) => Buffer.from([o & 255, (o >> 8) & 255, o >> 16])));
    // One reading a second for 1,100 s of one slot, in requests of 1, 10 and 50 readings.
    const times = Array.from({ length: 1_100 }, (_, i) => i * 1000);
    let longest = 0;
    for (let i = 0; i < times.length; ) {
      const size = i < 100 ? 1 : i < 600 ? 10 : 50;
      const request = times.slice(i, i + size).map((t) => at(t));
      expect(await log.append(request, 'gw')).toEqual({ accepted: request.length, duplicates: 0 });
      longest = Math.max(longest, await fieldBytes());
      i += size;
    }
    // What a request copies stays bounded (a header, 256 offsets, one request's),
    // where a list of every offset would hold 3,300 bytes.
    expect(longest).toBeLessThanOrEqual(6 + 3 * 256 + 3 * 50);
    expect(await db.client.hlen(key)).toBeGreaterThan(3);
    // Every reading sent again is a duplicate, the sealed ones too, in any order and request size.
    const again = [...times].reverse().map((t) => at(t));
    for (let i = 0; i < again.length; i += 37) {
      const request = again.slice(i, i + 37);
      expect(await log.append(request, 'gw')).toEqual({ accepted: 0, duplicates: request.length });
    }
    for (const t of [0, 255_000, 256_000, 700_000, 1_099_000]) {
      expect(await log.append([at(t)], 'gw')).toEqual({ accepted: 0, duplicates: 1 });
    }
    // A late reading between sealed ones is new, once; another node's field is its own.
    expect(await log.append([at(500), at(300_500), at(500, 'G'), at(300_500)], 'gw')).toEqual({
      accepted: 3,
      duplicates: 1,
    });
    expect(await log.append([at(500), at(300_500), at(500, 'G')], 'gw')).toEqual({
      accepted: 0,
      duplicates: 3,
    });
    // A redrive looks in the sealed lists too, and what it marks is found.
    const dedupe = new DedupeSets(db.client, shardKeys(0, 1), { horizonMs: options.dedupeHorizonMs, clock });
    expect(await dedupe.accepted([at(1000), at(1500), at(1_099_000), at(1_150_000)])).toEqual([
      at(1000),
      at(1_099_000),
    ]);
    await dedupe.mark([at(1500), at(1_150_000)]);
    expect(await log.append([at(1500), at(1_150_000), at(1_150_001)], 'gw')).toEqual({
      accepted: 1,
      duplicates: 2,
    });
    // A replica of the version before appends to the field as it reads it: what it adds is found.
    await db.client.hset(
      key,
      'F',
      Buffer.concat([(await db.client.hgetBuffer(key, 'F')) as Buffer, packed(1_160_000, 2_000)]),
    );
    expect(await log.append([at(1_160_000), at(2_000), at(1_160_001)], 'gw')).toEqual({
      accepted: 1,
      duplicates: 2,
    });
    // A long list the version before wrote (no sealed lists) is read whole, then sealed.
    const old = Array.from({ length: 2_000 }, (_, i) => i * 500);
    await db.client.hset(key, 'H', packed(...old));
    expect(await log.append([at(1000, 'H'), at(1001, 'H')], 'gw')).toEqual({ accepted: 1, duplicates: 1 });
    expect(await db.client.hstrlen(key, 'H')).toBe(6);
    expect(
      await log.append(
        old.slice(0, 80).map((t) => at(t, 'H')),
        'gw',
      ),
    ).toEqual({ accepted: 0, duplicates: 80 });
    expect(await log.append([at(1001, 'H'), at(999_999, 'H')], 'gw')).toEqual({ accepted: 1, duplicates: 1 });
  });

  it('consults the sets of the dedupe layout before while they may live, and records that they exist', async () => {
    // A connection of its own: what a process learns of the layout before, it learns once.
    const client = new Redis(db.url);
    try {
      const clock = new ManualClock(NOW);
      const old = reading('A', 5);
      const hour = old.timestamp - (old.timestamp % HOUR);
      await client.sadd(`seen:{readings}:A:${hour / HOUR}`, String(old.timestamp % HOUR));
      const log = new ReadingLog(client, { ...options, clock });
      const fresh = reading('A', 4);
      expect(await log.append([old, fresh], 'gw')).toEqual({ accepted: 1, duplicates: 1 });
      // The horizon (48 h) from the first look, and an hour for old replicas still running;
      // the record itself lasts until every set it speaks of has expired.
      expect(await client.get('seen:{readings}:before')).toBe(String(NOW + 49 * HOUR));
      expect(await client.pttl('seen:{readings}:before')).toBeGreaterThan(97 * HOUR - 60_000);
      // What is accepted meanwhile goes into the sets too: an old replica still running finds it.
      expect(await client.sismember(`seen:{readings}:A:${hour / HOUR}`, String(fresh.timestamp % HOUR))).toBe(
        1,
      );
      expect(await log.append([old], 'gw')).toEqual({ accepted: 0, duplicates: 1 });
      // Two nodes interleaved in one hour: each is checked against its own set, and what is new goes into it.
      const setOf = (node: string) => `seen:{readings}:${node}:${hour / HOUR}`;
      const oldB = reading('B', 6);
      await client.sadd(setOf('B'), String(oldB.timestamp % HOUR));
      const [newA, newB] = [reading('A', 3), reading('B', 3)];
      expect(await log.append([oldB, newA, old, newB], 'gw')).toEqual({ accepted: 2, duplicates: 2 });
      expect(await client.smembers(setOf('A'))).toHaveLength(3);
      expect(await client.sismember(setOf('B'), String(newB.timestamp % HOUR))).toBe(1);
      expect(await client.scard(setOf('B'))).toBe(2);
      // One node's 9,000 readings of an hour in one request: more than Lua unpacks at once.
      const many = Array.from({ length: 9_000 }, (_, i) => ({ node_id: 'A', timestamp: hour + 10 + i }));
      expect(await log.append(many, 'gw')).toEqual({ accepted: 9_000, duplicates: 0 });
      expect(await log.append(many.slice(0, 10), 'gw')).toEqual({ accepted: 0, duplicates: 10 });
      // Once they have all expired, they are no longer read.
      clock.advance(49 * HOUR + 1);
      expect(await log.append([old], 'gw')).toEqual({ accepted: 1, duplicates: 0 });
    } finally {
      client.disconnect();
    }
  });

  it('consults the hour hashes of the layout before while they may live, and writes what it accepts into them too', async () => {
    // A connection of its own: what a process learns of the layouts before, it learns once.
    const client = new Redis(db.url);
    try {
      const clock = new ManualClock(NOW);
      const hourKey = (r: Reading) => `seen:{readings}:${(r.timestamp - (r.timestamp % HOUR)) / HOUR}`;
      const int32 = (...values: number[]) => {
        const packed = Buffer.alloc(4 * values.length);
        for (const [i, v] of values.entries()) packed.writeInt32LE(v, 4 * i);
        return packed;
      };
      // Accepted by the version before: in the hour hash only.
      const old = reading('A', 50);
      await client.hset(hourKey(old), 'A', int32(old.timestamp % HOUR));
      const log = new ReadingLog(client, { ...options, clock });
      const fresh = reading('A', 49);
      expect(await log.append([old, fresh], 'gw')).toEqual({ accepted: 1, duplicates: 1 });
      expect(await client.get('seen:{readings}:hours')).toBe(String(NOW + 49 * HOUR));
      // What is accepted meanwhile goes into the hour hash too: a replica of the version before finds it.
      expect(await client.hgetBuffer(hourKey(old), 'A')).toEqual(
        int32(old.timestamp % HOUR, fresh.timestamp % HOUR),
      );
      // One node in two slots of the same hour in one request: both reach the hour hash.
      const [early, late] = [reading('B', 55), reading('B', 15)];
      expect(await log.append([early, late, early], 'gw')).toEqual({ accepted: 2, duplicates: 1 });
      expect(await client.hgetBuffer(hourKey(early), 'B')).toEqual(
        int32(early.timestamp % HOUR, late.timestamp % HOUR),
      );
      // A redrive checks and marks there too.
      const dedupe = new DedupeSets(client, shardKeys(0, 1), { horizonMs: options.dedupeHorizonMs, clock });
      const redriven = reading('C', 30);
      await client.hset(hourKey(redriven), 'C', int32(redriven.timestamp % HOUR));
      expect(await dedupe.accepted([redriven, reading('C', 31), fresh])).toEqual([redriven, fresh]);
      await dedupe.mark([reading('C', 31)]);
      expect(await client.hgetBuffer(hourKey(redriven), 'C')).toEqual(
        int32(redriven.timestamp % HOUR, reading('C', 31).timestamp % HOUR),
      );
      expect(await log.append([reading('C', 31)], 'gw')).toEqual({ accepted: 0, duplicates: 1 });
      // A long hour list against many readings of its node (looked up through a table).
      const hourStart = NOW - 2 * HOUR;
      const at = (ms: number): Reading => ({ node_id: 'D', timestamp: hourStart + ms, flow_rate: ms });
      await client.hset(hourKey(at(0)), 'D', int32(...Array.from({ length: 3_000 }, (_, i) => i * 7)));
      const mixed = Array.from({ length: 20 }, (_, i) => at(i % 2 === 0 ? i * 7 : i * 7 + 1));
      expect(await log.append(mixed, 'gw')).toEqual({ accepted: 10, duplicates: 10 });
      // Once they have all expired, they are no longer read.
      clock.advance(49 * HOUR + 1);
      expect(await log.append([old], 'gw')).toEqual({ accepted: 1, duplicates: 0 });
    } finally {
      client.disconnect();
    }
  });

  it('records that a Redis without sets of the layout before needs no look at them', async () => {
    const client = new Redis(db.url);
    try {
      const log = new ReadingLog(client, options);
      await log.prepare();
      expect(await client.get('seen:{readings}:before')).toBe('0');
      expect(await client.get('seen:{readings}:hours')).toBe('0');
      // Looked at again after a horizon (48 h): a downgrade and an upgrade since would be seen.
      expect(await client.pttl('seen:{readings}:before')).toBeGreaterThan(48 * HOUR - 60_000);
      expect(await log.append([reading('A', 1)], 'gw')).toEqual({ accepted: 1, duplicates: 0 });
    } finally {
      client.disconnect();
    }
  });

  it('remembers identities for the dedupe horizon after the last acceptance', async () => {
    const log = new ReadingLog(db.client, { ...options, dedupeHorizonMs: 2 * HOUR });
    await log.append([reading('A', 90), reading('B', 91)], 'gw');
    const keys = (await db.client.keys('seen:*')).filter((key) => !/:(before|hours)$/.test(key));
    // One hash per 20-minute slot of event time (10:29 and 10:30 share one).
    const slot = (NOW - 90 * 60_000 - ((NOW - 90 * 60_000) % SLOT)) / SLOT;
    expect(keys).toEqual([`seen:{readings}:s${slot}`]);
    const ttl = await db.client.ttl(keys[0] as string);
    expect(ttl).toBeGreaterThan(2 * 3600 - 5);
    expect(ttl).toBeLessThanOrEqual(2 * 3600);
    // Per node, each reading's millisecond offset in the slot, 3 bytes.
    const packed = Buffer.alloc(3);
    packed.writeUIntLE((NOW - 90 * 60_000) % SLOT, 0, 3);
    expect(await db.client.hgetBuffer(keys[0] as string, 'A')).toEqual(packed);
    expect(await db.client.hstrlen(keys[0] as string, 'B')).toBe(3);
  });

  it('routes readings to shards by node, each shard its own stream', async () => {
    const log = new ReadingLog(db.client, { ...options, shards: 4 });
    const batch = Array.from({ length: 40 }, (_, i) => reading(`N${i}`, 1));
    expect(await log.append(batch, 'gw')).toEqual({ accepted: 40, duplicates: 0 });
    const all: Reading[] = [];
    for (const stream of log.streams) all.push(...(await streamReadings(stream)));
    expect(log.streams).toEqual(['readings:{0}', 'readings:{1}', 'readings:{2}', 'readings:{3}']);
    expect(all.sort((a, b) => a.node_id.localeCompare(b.node_id))).toEqual(
      batch.sort((a, b) => a.node_id.localeCompare(b.node_id)),
    );
    expect(await log.append(batch, 'gw')).toEqual({ accepted: 0, duplicates: 40 });
  });

  it('marks nothing as seen when the append fails, so a retry is not lost', async () => {
    const log = new ReadingLog(db.client, options);
    await db.client.set('readings', 'not a stream');
    await expect(log.append([reading('A', 1)], 'gw')).rejects.toThrow(/WRONGTYPE/);
    expect(await db.client.keys('seen:*')).toEqual([]);
    await db.client.del('readings');
    expect(await log.append([reading('A', 1)], 'gw')).toEqual({ accepted: 1, duplicates: 0 });
  });

  it('trims entries older than the retention by arrival time', async () => {
    const clock = new ManualClock(Date.now());
    const log = new ReadingLog(db.client, { ...options, retentionMs: 1_000, clock });
    // Fill more than one radix-tree node (100 entries) so approximate trimming can act.
    for (let i = 0; i < 300; i++) await log.append([reading('A', i + 1)], 'gw');
    clock.advance(60_000);
    await log.append([reading('A', 10_000)], 'gw');
    expect(await db.client.xlen('readings')).toBeLessThan(150);
  });

  it('never trims what a consumer group has not acknowledged, then trims once it has', async () => {
    const clock = new ManualClock(Date.now());
    const log = new ReadingLog(db.client, { ...options, retentionMs: 1_000, clock });
    await db.client.xgroup('CREATE', 'readings', 'slow', '0', 'MKSTREAM');
    for (let i = 0; i < 300; i++) await log.append([reading('A', i + 1)], 'gw');
    clock.advance(60_000);
    await log.append([reading('A', 10_000)], 'gw');
    // The group read nothing: every entry stays, past the retention.
    expect(await db.client.xlen('readings')).toBe(301);
    // It reads everything and acknowledges all but the last 50: those and what follows stay.
    const ids = await readAll();
    expect(ids).toHaveLength(301);
    await db.client.xack('readings', 'slow', ...ids.slice(0, 251));
    await log.append([reading('A', 10_001)], 'gw');
    const left = await db.client.xlen('readings');
    expect(left).toBeLessThan(200);
    expect(left).toBeGreaterThanOrEqual(51);
    const first = (await db.client.xrange('readings', '-', '+', 'COUNT', 1))[0]?.[0] as string;
    expect(compareIds(first, ids[251] as string)).toBeLessThanOrEqual(0);
  });

  it('bounds the stream in bytes: trims what every group is done with, however young, and refuses what would pass the bound with entries still needed', async () => {
    const maxBytes = 64 * 1024;
    // A day of retention: only the bound can trim here.
    const log = new ReadingLog(db.client, { ...options, retentionMs: 24 * HOUR, maxBytes });
    await db.client.xgroup('CREATE', 'readings', 'slow', '0', 'MKSTREAM');
    const batch = (n: number) =>
      Array.from({ length: 20 }, (_, i) => reading(`N${i}`, n + 1, n * 100 + i + 0.123456789));
    let appended = 0;
    let refused: unknown;
    for (let n = 0; n < 2_000 && refused === undefined; n++) {
      try {
        await log.append(batch(n), 'gw');
        appended++;
      } catch (error) {
        refused = error;
      }
    }
    // The group read nothing: the stream fills to its bound, then appends are refused.
    expect(refused).toBeInstanceOf(StreamFullError);
    const full = refused as StreamFullError;
    expect(full.stored).toBe('none');
    expect(full.boundBytes).toBe(maxBytes);
    expect(full.heldBytes).toBeGreaterThan(maxBytes);
    expect(full.message).toMatch(/the stream readings holds .* MB that the consumers .*\(STREAM_MAX_MB\)/);
    expect(await db.client.xlen('readings')).toBe(appended);
    // Nothing of the refused request was marked seen: once there is room, it is accepted.
    const refusedBatch = batch(appended);
    const ids = await readAll();
    expect(ids).toHaveLength(appended);
    await db.client.xack('readings', 'slow', ...ids);
    expect(await log.append(refusedBatch, 'gw')).toEqual({ accepted: 20, duplicates: 0 });
    // What the group was done with went, young as it was (all but the last
    // entry it read, the group's position); the new entry stayed.
    expect(await db.client.xlen('readings')).toBe(2);
    expect(Number(await db.client.memory('USAGE', 'readings'))).toBeLessThan(maxBytes);
  });

  it('reports an unreachable Redis as RedisUnavailableError', async () => {
    const dead = new Redis('redis://127.0.0.1:1', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    dead.on('error', () => {});
    const log = new ReadingLog(dead, options);
    await expect(log.append([reading('A', 1)], 'gw')).rejects.toBeInstanceOf(RedisUnavailableError);
    dead.disconnect();
  });
});

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am === bm ? as - bs : am - bm;
}
