import {
  CATCHUP,
  catchupLaneOf,
  decodeEntry,
  GROUPS,
  ManualClock,
  type Reading,
  shardKeys,
} from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_HEALTH_LIMITS,
  pipelineReport,
  ReadingLog,
  ShardReader,
  StreamConsumer,
  StreamFullError,
} from '../src/index.ts';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 10, 25, 12);
const db = useRedis({ flushEach: true });
const shard = shardKeys(0, 1);
const options = {
  shards: 1,
  retentionMs: 48 * HOUR,
  dedupeHorizonMs: 48 * HOUR,
  clock: new ManualClock(NOW),
};

const reading = (node: string, minutesAgo: number, flow = minutesAgo): Reading => ({
  node_id: node,
  timestamp: NOW - minutesAgo * 60_000,
  flow_rate: flow,
});

async function readingsOf(key: string): Promise<Reading[][]> {
  const entries = await db.client.xrange(key, '-', '+');
  return entries.map(([id, fields]) => decodeEntry(id, fields).readings);
}

/**
 * The catch-up lane of a node. A, G, H, J, P, V and Z share lane 4; B is in
 * lane 2, C and D in lane 6 (catchupLaneOf; checked below).
 */
const laneOf = (node: string) => shard.catchupLanes[catchupLaneOf(node)] as string;
const lanes = shard.catchupLanes;

/** Every lane's entries' readings, lane by lane. */
async function inLanes(): Promise<Reading[][]> {
  return (await Promise.all(lanes.map(readingsOf))).flat();
}

/** The aggregator's group, `behind` entries of fresh readings not yet read by it. */
async function aggregatorBehind(log: ReadingLog, behind: number): Promise<void> {
  await db.client.xgroup('CREATE', shard.stream, GROUPS.aggregator, '0', 'MKSTREAM');
  for (let i = 0; i < behind; i++) await log.append([reading(`F${i}`, 0)], 'gw');
}

/** The aggregator's group reads and acknowledges everything in the stream. */
async function aggregatorReadsAll(): Promise<string[]> {
  const read = (await db.client.xreadgroup(
    'GROUP',
    GROUPS.aggregator,
    'c',
    'COUNT',
    100_000,
    'STREAMS',
    shard.stream,
    '>',
  )) as [string, [string, string[]][]][] | null;
  const ids = (read?.[0]?.[1] ?? []).map(([id]) => id);
  if (ids.length > 0) await db.client.xack(shard.stream, GROUPS.aggregator, ...ids);
  return ids;
}

const consumers: StreamConsumer[] = [];
afterEach(() => {
  for (const consumer of consumers.splice(0)) consumer.close();
});

/** A consumer of the aggregator's group that takes the lane in, `readings` at a time, reading `count` entries. */
function aggregatorConsumer(readings: number, count = 100, blockMs = 50): StreamConsumer {
  const consumer = new StreamConsumer(db.client, () => new Redis(db.url), {
    group: GROUPS.aggregator,
    consumer: 'c',
    count,
    blockMs,
    catchup: { readings },
  });
  consumers.push(consumer);
  return consumer;
}

describe('the catch-up lane: ingest', () => {
  it('sends late readings to the stream like any other while the aggregator keeps up', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries - 1);
    await log.append([reading('A', 90), reading('A', 0)], 'gw');
    expect(await db.client.exists(...lanes)).toBe(0);
    expect((await readingsOf(shard.stream)).at(-1)).toEqual([reading('A', 90), reading('A', 0)]);
  });

  it("sends a node with late readings to the lane while the aggregator is behind, every other node's to the stream", async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    const sent = [reading('A', 90), reading('B', 4), reading('A', 60), reading('A', 0)];
    expect(await log.append(sent, 'gw')).toEqual({ accepted: 4, duplicates: 0 });
    // Five minutes is the default lateness (CATCHUP.lateMs): B's reading, four
    // minutes old, is new; A's new one follows its old ones.
    expect(await inLanes()).toEqual([[reading('A', 90), reading('A', 60), reading('A', 0)]]);
    expect(await readingsOf(laneOf('A'))).toEqual(await inLanes());
    expect((await readingsOf(shard.stream)).at(-1)).toEqual([reading('B', 4)]);
    const [id, fields] = (await db.client.xrange(laneOf('A'), '-', '+'))[0] as [string, string[]];
    expect(fields).toEqual(['n', '3', 'src', 'gw', 'readings', expect.any(String)]);
    expect(await db.client.hgetall(shard.catchupNodes)).toEqual({ A: id });
  });

  it("sends a node's readings, late or not, to the lane while it has readings there: each node's stay in order", async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    await log.append([reading('A', 90)], 'gw');
    await aggregatorReadsAll();
    await log.append([reading('A', 80), reading('A', 1), reading('C', 1), reading('D', 70)], 'gw');
    // D's late reading goes to a lane too, its own: a lane holds something.
    expect(await readingsOf(laneOf('A'))).toEqual([[reading('A', 90)], [reading('A', 80), reading('A', 1)]]);
    expect(await readingsOf(laneOf('D'))).toEqual([[reading('D', 70)]]);
    expect((await readingsOf(shard.stream)).at(-1)).toEqual([reading('C', 1)]);
  });

  it("splits a request's lane readings by lane, each node's in its own, and marks each node with its lane's entry", async () => {
    expect([...'AGHJPVZ'].map(catchupLaneOf)).toEqual([4, 4, 4, 4, 4, 4, 4]);
    expect(['B', 'C', 'D'].map(catchupLaneOf)).toEqual([2, 6, 6]);
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    const sent = [reading('A', 90), reading('B', 90), reading('C', 90), reading('G', 90), reading('D', 80)];
    expect(await log.append(sent, 'gw')).toEqual({ accepted: 5, duplicates: 0 });
    expect(await readingsOf(laneOf('A'))).toEqual([[reading('A', 90), reading('G', 90)]]);
    expect(await readingsOf(laneOf('B'))).toEqual([[reading('B', 90)]]);
    expect(await readingsOf(laneOf('C'))).toEqual([[reading('C', 90), reading('D', 80)]]);
    expect((await inLanes()).flat()).toHaveLength(5);
    const entryOf = async (node: string) => (await db.client.xrange(laneOf(node), '-', '+'))[0]?.[0];
    expect(await db.client.hgetall(shard.catchupNodes)).toEqual({
      A: await entryOf('A'),
      G: await entryOf('A'),
      B: await entryOf('B'),
      C: await entryOf('C'),
      D: await entryOf('C'),
    });
  });

  it('knows a reading in the lane as a duplicate, whichever way the resend goes', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    await log.append([reading('A', 90)], 'gw');
    expect(await log.append([reading('A', 90, 7), reading('A', 70)], 'gw')).toEqual({
      accepted: 1,
      duplicates: 1,
    });
    await aggregatorReadsAll();
    await db.client.del(...lanes, shard.catchupNodes); // as if the aggregator had taken the lanes in
    expect(await log.append([reading('A', 90, 7), reading('A', 70, 7)], 'gw')).toEqual({
      accepted: 0,
      duplicates: 2,
    });
    expect(await inLanes()).toEqual([]);
  });

  it('never uses the lane with CATCHUP_AFTER_MINUTES=0', async () => {
    const log = new ReadingLog(db.client, { ...options, catchupAfterMs: 0 });
    await aggregatorBehind(log, CATCHUP.gateEntries);
    await log.append([reading('A', 600)], 'gw');
    expect(await db.client.exists(...lanes)).toBe(0);
    expect((await readingsOf(shard.stream)).at(-1)).toEqual([reading('A', 600)]);
  });

  it('bounds the stream and its lane together: refuses the whole request once they are over, saying so', async () => {
    const log = new ReadingLog(db.client, { ...options, maxBytes: 16_384 });
    await aggregatorBehind(log, CATCHUP.gateEntries);
    let minutes = 600;
    const hour = (m: number) => Array.from({ length: 20 }, (_, i) => reading(`N${i}`, m));
    let refusal: unknown;
    while (refusal === undefined && minutes > 10) {
      refusal = await log.append([...hour(--minutes), reading('Z', minutes % 5)], 'gw').then(
        () => undefined,
        (error: unknown) => error,
      );
    }
    expect(refusal).toBeInstanceOf(StreamFullError);
    const full = refusal as StreamFullError;
    const [stream, ...used] = await Promise.all(
      [shard.stream, ...lanes].map((key) => db.client.memory('USAGE', key)),
    );
    const lane = used.reduce((sum: number, bytes) => sum + Number(bytes ?? 0), 0);
    expect(full).toMatchObject({
      stream: shard.stream,
      heldBytes: Number(stream) + Number(lane),
      laneBytes: lane,
    });
    expect(full.heldBytes).toBeGreaterThan(16_384);
    expect(Number(stream)).toBeLessThan(16_384);
    expect(full.message).toMatch(
      /^the stream readings and its catch-up lane hold [\d.]+ MB \([\d.]+ MB of late readings in the lane\) that the consumers \(aggregator, archiver\) have not processed, over its bound of 0\.0 MB \(STREAM_MAX_MB\): nothing from this request was stored; retry it once they catch up/,
    );
    // Nothing of the refused request is anywhere, not even its new reading.
    const held = [...(await inLanes()), ...(await readingsOf(shard.stream))].flat();
    expect(held.filter((r) => r.timestamp === NOW - minutes * 60_000)).toEqual([]);
  });
});

describe('the catch-up lane: the aggregator takes it in', () => {
  it('moves whole entries in order, a chunk of readings at a time, only once the group has caught up', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    // Nodes of one lane (4).
    const entries = [0, 1, 2, 3, 4].map((e) => [
      reading('A', 90 - e),
      reading('G', 90 - e),
      reading('H', 90 - e),
    ]);
    for (const entry of entries) await log.append(entry, 'gw');
    const consumer = aggregatorConsumer(7, CATCHUP.gateEntries);
    expect(await consumer.admit(shard)).toBe(0); // the group is a read or more behind
    const streamLength = await db.client.xlen(shard.stream);
    await aggregatorReadsAll();

    // 3 + 3 readings fit in 7; a third entry would not.
    expect(await consumer.admit(shard)).toBe(6);
    expect((await readingsOf(shard.stream)).slice(streamLength)).toEqual(entries.slice(0, 2));
    expect(await readingsOf(laneOf('A'))).toEqual(entries.slice(2));
    // Two entries unread are fewer than a read takes: the next chunk goes in behind them.
    expect(await consumer.admit(shard)).toBe(6);
    expect(await consumer.admit(shard)).toBe(3);
    expect((await readingsOf(shard.stream)).slice(streamLength)).toEqual(entries);
    expect(await db.client.exists(...lanes, shard.catchupNodes)).toBe(0);
    expect(await consumer.admit(shard)).toBe(0);
    // As ingest wrote them, marked as the lane's.
    for (const [, fields] of (await db.client.xrange(shard.stream, '-', '+')).slice(streamLength)) {
      expect(fields.filter((_, i) => i % 2 === 0)).toEqual(['n', 'src', 'readings', 'lane']);
    }
  });

  it('lets a node go once its last entry in the lane is moved: its readings go to the stream again', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    // A and G share a lane.
    await log.append([reading('A', 90), reading('G', 90)], 'gw');
    await log.append([reading('A', 80)], 'gw');
    await aggregatorReadsAll();
    const consumer = aggregatorConsumer(2);
    expect(await consumer.admit(shard)).toBe(2);
    // G's last entry moved, A's not: G's new reading goes to the stream, A's follows its old ones.
    await log.append([reading('A', 0), reading('G', 0)], 'gw');
    expect((await readingsOf(shard.stream)).at(-1)).toEqual([reading('G', 0)]);
    expect(await readingsOf(laneOf('A'))).toEqual([[reading('A', 80)], [reading('A', 0)]]);
    await aggregatorReadsAll();
    expect(await consumer.admit(shard)).toBe(2);
    expect(await db.client.exists(...lanes, shard.catchupNodes)).toBe(0);
    await log.append([reading('A', 1)], 'gw');
    expect((await readingsOf(shard.stream)).at(-1)).toEqual([reading('A', 1)]);
  });

  it('moves one lane a time, the one whose first entry is the oldest; a node leaves when its own lane has moved it', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    await log.append([reading('A', 90)], 'gw');
    // Entry ids are Redis' clock: two lanes' entries of one millisecond tie.
    await new Promise((r) => setTimeout(r, 2));
    await log.append([reading('B', 90), reading('B', 85)], 'gw');
    await log.append([reading('A', 80)], 'gw');
    await aggregatorReadsAll();
    const consumer = aggregatorConsumer(100);
    const streamLength = await db.client.xlen(shard.stream);
    // A's lane first (its first entry is the oldest), and only it, though the chunk could take B's too.
    expect(await consumer.admit(shard)).toBe(2);
    expect((await readingsOf(shard.stream)).slice(streamLength)).toEqual([
      [reading('A', 90)],
      [reading('A', 80)],
    ]);
    expect(await db.client.exists(laneOf('A'))).toBe(0);
    // A's lane has moved it: its next reading goes to the stream; B's follows its backlog in its lane.
    await log.append([reading('A', 0), reading('B', 0)], 'gw');
    expect((await readingsOf(shard.stream)).at(-1)).toEqual([reading('A', 0)]);
    expect(await readingsOf(laneOf('B'))).toEqual([[reading('B', 90), reading('B', 85)], [reading('B', 0)]]);
    await aggregatorReadsAll();
    expect(await consumer.admit(shard)).toBe(3);
    expect(await db.client.exists(...lanes, shard.catchupNodes)).toBe(0);
  });

  it('moves an entry an earlier version wrote, listing its nodes, without the list', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    await aggregatorReadsAll();
    const readings = JSON.stringify([reading('A', 90)]);
    // The first lane, the one lane of that version.
    await db.client.xadd(lanes[0] as string, '*', 'n', '1', 'src', 'gw', 'readings', readings, 'nodes', 'A');
    expect(await aggregatorConsumer(100).admit(shard)).toBe(1);
    const [, fields] = (await db.client.xrevrange(shard.stream, '+', '-', 'COUNT', 1))[0] as [
      string,
      string[],
    ];
    expect(fields).toEqual(['n', '1', 'src', 'gw', 'readings', readings, 'lane', 'catchup']);
  });

  it('forgets nodes still listed once the lane is empty (moved by an aggregator before the list)', async () => {
    await db.client.hset(shard.catchupNodes, 'X', '1-0');
    expect(await aggregatorConsumer(100).admit(shard)).toBe(0);
    expect(await db.client.exists(shard.catchupNodes)).toBe(0);
  });

  it('leaves the lane where it is on a read that holds it back, and waits for new entries only briefly', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    await log.append([reading('A', 90)], 'gw');
    await aggregatorReadsAll();
    await log.append([reading('L', 0)], 'gw');
    // A read of this consumer waits up to 2 s for new entries; a held one, 20 ms.
    const consumer = aggregatorConsumer(100, 100, 2_000);
    const reader = new ShardReader(consumer, shard, { claimIdleMs: 60_000, onRetry: () => {} });
    await reader.next(); // the scan of pending entries that starts a reader: none
    const live = await reader.next({ lane: 'held' });
    expect(live.batch.entries.flatMap((e) => ('readings' in e ? e.readings : []))).toEqual([reading('L', 0)]);
    expect(await readingsOf(laneOf('A'))).toEqual([[reading('A', 90)]]);
    const started = performance.now();
    const none = await reader.next({ lane: 'held' });
    expect(performance.now() - started).toBeLessThan(1_000);
    // Nothing came, but the lane waits: the stream is not quiet.
    expect(none).toMatchObject({ batch: { entries: [] }, quiet: false });
    const chunk = await reader.next();
    expect(chunk.batch.entries.flatMap((e) => ('readings' in e ? e.readings : []))).toEqual([
      reading('A', 90),
    ]);
    expect(await db.client.exists(...lanes)).toBe(0);
  });

  it('moves an entry larger than the chunk on its own', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    // Ten nodes of one lane (4).
    const big = ['A', 'G', 'H', 'J', 'P', 'V', 'Z', 'L14', 'L22', 'L26'].map((node) => reading(node, 90));
    await log.append(big, 'gw');
    await log.append([reading('A', 80)], 'gw');
    await aggregatorReadsAll();
    const consumer = aggregatorConsumer(4);
    expect(await consumer.admit(shard)).toBe(10);
    expect(await consumer.admit(shard)).toBe(1);
  });

  it('moves nothing while the group has a read’s worth or more left to read, whatever Redis knows of its lag', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    await log.append([reading('A', 90)], 'gw');
    await aggregatorReadsAll();
    for (let i = 0; i < 3; i++) await log.append([reading(`L${i}`, 0)], 'gw');
    // A read of 3 would leave the lane's entry behind; a read of 100 takes them all.
    const small = new StreamConsumer(db.client, () => new Redis(db.url), {
      group: GROUPS.aggregator,
      consumer: 'c',
      count: 3,
      blockMs: 50,
      catchup: { readings: 100 },
    });
    consumers.push(small);
    expect(await small.admit(shard)).toBe(0);
    // A deletion after the group's position: Redis no longer knows the lag, the script counts.
    const [last] = await db.client.xrevrange(shard.stream, '+', '-', 'COUNT', 1);
    await db.client.xdel(shard.stream, last?.[0] as string);
    expect((await db.client.xinfo('GROUPS', shard.stream)) as unknown[][]).toEqual([
      expect.arrayContaining(['lag', null]),
    ]);
    await log.append([reading('L9', 0)], 'gw');
    expect(await small.admit(shard)).toBe(0);
    expect(await aggregatorConsumer(100).admit(shard)).toBe(1);
  });

  it('a reader of the aggregator’s group finds the lane’s entries behind the new ones', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    await log.append([reading('A', 90)], 'gw');
    await aggregatorReadsAll();
    await log.append([reading('B', 0)], 'gw');
    const reader = new ShardReader(aggregatorConsumer(100), shard, {
      claimIdleMs: 60_000,
      onRetry: () => {},
    });
    await reader.next(); // the scan of pending entries: none
    const { batch } = await reader.next();
    expect(batch.entries.map((e) => ('readings' in e ? e.readings : []))).toEqual([
      [reading('B', 0)],
      [reading('A', 90)],
    ]);
    // The aggregator applies the stream's own entries apart from the lane's, first.
    expect(batch.entries.map((e) => 'readings' in e && e.fromLane === true)).toEqual([false, true]);
    expect(await db.client.exists(...lanes)).toBe(0);
  });

  it('a reader of another group leaves the lane alone', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    await log.append([reading('A', 90)], 'gw');
    await aggregatorReadsAll();
    const archiver = new StreamConsumer(db.client, () => new Redis(db.url), {
      group: GROUPS.archiver,
      consumer: 'c',
      count: 100,
      blockMs: 50,
    });
    consumers.push(archiver);
    expect(await archiver.admit(shard)).toBe(0);
    expect(await db.client.xlen(laneOf('A'))).toBe(1);
  });
});

describe('the catch-up lane: status', () => {
  it('shows what waits in the lane, and calls it a problem when no aggregator is reading', async () => {
    const log = new ReadingLog(db.client, options);
    await aggregatorBehind(log, CATCHUP.gateEntries);
    await log.append([reading('A', 90)], 'gw');
    await log.append([reading('A', 80)], 'gw');
    await aggregatorReadsAll();
    await log.append([reading('B', 85)], 'gw');
    const [first] = await db.client.xrange(laneOf('A'), '-', '+', 'COUNT', 1);
    const since = new Date(Number(first?.[0].split('-')[0])).toISOString();
    const settings = { shards: 1, cacheRefreshMs: 6 * HOUR };
    // The consumer read just now: alive. Then, past the idle limit, it is not.
    const live = await pipelineReport(db.client, settings, DEFAULT_HEALTH_LIMITS, Date.now());
    // Entries of every lane; since the oldest's.
    expect(live.shards[0]).toMatchObject({ catchup: 3, catchupSince: since });
    expect(live.problems.filter((p) => p.includes(GROUPS.aggregator))).toEqual([]);
    const limits = { ...DEFAULT_HEALTH_LIMITS, consumerIdleMs: -1 };
    const stale = await pipelineReport(db.client, settings, limits, Date.now());
    expect(stale.problems).toContain(
      'readings: group aggregator has 3 entries waiting and no live consumer (none read for -0.001 s; is its service running?)',
    );
  });
});
