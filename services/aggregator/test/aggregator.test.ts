import {
  allShardKeys,
  checkpointPhase,
  DEFAULT_ANOMALY_SETTINGS,
  horizonStart,
  loadConfig,
  ManualClock,
  type Reading,
  readModelKeys,
} from '@streamgauge/core';
import { ReadingLog } from '@streamgauge/redis';
import {
  checkReadModel,
  type Dataset,
  generateDataset,
  useRedis,
  waitForAggregator,
} from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { filter, firstValueFrom, Subject } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningAggregator, startAggregator } from '../src/index.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const TTL = 24 * 3600;
const db = useRedis({ flushEach: true });
const SHARD = allShardKeys(1)[0] as ReturnType<typeof allShardKeys>[number];

function setup(now: number, env: Record<string, string> = {}) {
  const clock = new ManualClock(now);
  const ticks = new Subject<number>();
  const config = loadConfig({
    REDIS_URL: db.url,
    AGGREGATOR_BLOCK_MS: '50',
    AGGREGATOR_READ_COUNT: '20',
    AGGREGATOR_LEASE_MS: '1000',
    ...env,
  });
  const log = new ReadingLog(db.client, { ...config.stream, clock });
  const start = () => startAggregator(config, pino({ level: 'silent' }), { clock, ticks$: ticks });
  return { clock, ticks, config, log, start };
}

async function append(log: ReadingLog, readings: readonly Reading[], size = 200): Promise<void> {
  for (let i = 0; i < readings.length; i += size) await log.append(readings.slice(i, i + size), 'test');
}

const drain = () => waitForAggregator(db.client);

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Every key equals the oracle, and every stream entry was applied exactly
 * once (the counters advance in the same transaction as the XACK).
 */
async function expectExact(data: Dataset, now: number): Promise<void> {
  const problems = await checkReadModel(db.client, data.unique, {
    ttlSeconds: TTL,
    horizonStart: horizonStart(now),
  });
  expect(problems.slice(0, 20)).toEqual([]);
  const stats = await db.client.hgetall('agg:{readings}:stats');
  expect(Number(stats.entries)).toBe(await db.client.xlen('readings'));
  expect(Number(stats.too_late)).toBe(data.tooLate);
  expect(Number(stats.applied)).toBe(data.unique.length - data.tooLate);
}

describe('aggregator', () => {
  let running: RunningAggregator | undefined;
  afterAll(async () => running?.stop());

  it('keeps every key equal to the independent computation', async () => {
    const now = Date.now();
    const { log, start } = setup(now);
    const data = generateDataset({ nodes: 12, days: 30, intervalMs: 30 * 60_000, now, seed: 7 });
    await append(log, data.sent);
    running = await start();
    await drain();
    await expectExact(data, now);
    await running.stop();
    running = undefined;
  });

  it('empties a silent node’s windows with the clock, and system metrics follow', async () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 30);
    const { clock, ticks, log, start } = setup(now);
    const readings: Reading[] = [];
    for (let m = 1; m <= 30; m++) {
      readings.push({ node_id: 'SILENT', timestamp: now - m * 60_000, flow_rate: 10, pressure: 3 });
      readings.push({ node_id: 'CHATTY', timestamp: now - m * 60_000, flow_rate: 20, pressure: 4 });
    }
    await append(log, readings);
    running = await start();
    await drain();
    const metrics = (range: string) => db.client.hgetall(`node:SILENT:metrics:${range}`);
    expect((await metrics('1h')).reading_count).toBe('30');
    expect(await db.client.hgetall('system:metrics:1h')).toMatchObject({
      total_nodes: '2',
      active_nodes: '2',
      total_flow: '30',
      avg_pressure: '3.5',
    });

    const slide = async (to: number, more: Reading[] = []) => {
      clock.set(to);
      if (more.length > 0) {
        await append(log, more);
        await drain();
      }
      if (running === undefined) throw new Error('aggregator is not running');
      const done = firstValueFrom(running.processed$.pipe(filter((p) => p.kind === 'tick')));
      ticks.next(to);
      await done;
    };

    // An hour later only CHATTY has reported: SILENT's 1h window is empty.
    await slide(now + HOUR + 60_000, [
      { node_id: 'CHATTY', timestamp: now + HOUR, flow_rate: 20, pressure: 4 },
    ]);
    expect(await metrics('1h')).toMatchObject({ reading_count: '0', avg_flow: '0', uptime_percentage: '0' });
    expect((await metrics('1h')).window_start).toBe(
      new Date(now + HOUR + 60_000 - (now % 60_000) - HOUR).toISOString(),
    );
    expect((await metrics('24h')).reading_count).toBe('30');
    expect(await db.client.hgetall('system:metrics:1h')).toMatchObject({
      total_nodes: '2',
      active_nodes: '1',
      total_flow: '20',
      avg_pressure: '4',
    });

    // A day later its 24h window is empty too; its 3d window still holds the readings.
    await slide(now + DAY + 15 * 60_000);
    expect((await metrics('24h')).reading_count).toBe('0');
    expect((await metrics('3d')).reading_count).toBe('30');
    expect(await db.client.hgetall('system:metrics:24h')).toMatchObject({
      active_nodes: '1',
      total_flow: '20',
    });
    await running.stop();
    running = undefined;
  });

  it('resumes exactly after a graceful stop in the middle of the stream', async () => {
    const now = Date.now();
    // Small reads: the next batch is read while one commits, and the stop must still find entries unread.
    const { log, start } = setup(now, { AGGREGATOR_READ_COUNT: '5' });
    const data = generateDataset({ nodes: 8, days: 10, intervalMs: 20 * 60_000, now, seed: 11 });
    const half = Math.floor(data.sent.length / 2);
    await append(log, data.sent.slice(0, half), 50);

    const first = await start();
    await firstValueFrom(first.processed$.pipe(filter((p) => p.kind === 'batches' && p.outcome.entries > 0)));
    await first.stop();
    const before = await db.client.xinfo('GROUPS', 'readings');
    expect(JSON.stringify(before)).toMatch(/"lag",[1-9]/); // stopped with entries still unread

    await append(log, data.sent.slice(half), 50);
    running = await start();
    await drain();
    await expectExact(data, now);
    await running.stop();
    running = undefined;
  });

  it('announces changed nodes, overwrites keys of the wrong type, lists each node once', async () => {
    const now = Date.now();
    const { log, start } = setup(now);
    // What an older writer may have left behind.
    await db.client.set('node:N1:latest', 'stale string');
    await db.client.rpush('nodes:all', 'N1', 'N1', 'GONE');
    const subscriber = new Redis(db.url);
    const messages: string[] = [];
    await subscriber.subscribe('streamgauge:changes');
    subscriber.on('message', (_channel, message) => messages.push(message));

    running = await start();
    await append(log, [
      { node_id: 'N1', timestamp: now - 60_000, flow_rate: 1.5, pressure: 2 },
      { node_id: 'N2', timestamp: now - 60_000, pressure: 2.5 },
    ]);
    await drain();
    expect(await db.client.hgetall('node:N1:latest')).toMatchObject({ flow_rate: '1.5', pressure: '2' });
    expect((await db.client.lrange('nodes:all', 0, -1)).sort()).toEqual(['N1', 'N2']);
    await new Promise((r) => setTimeout(r, 50));
    const notice = messages.map((m) => JSON.parse(m)).find((m) => m.cause === 'readings');
    expect(notice).toMatchObject({ cause: 'readings', keys: 'latest' });
    expect(notice.nodes.sort()).toEqual(['N1', 'N2']);
    // Later readings: metadata is announced only where it changed.
    messages.length = 0;
    await append(log, [
      { node_id: 'N1', timestamp: now - 50_000, flow_rate: 1.6, pressure: 2 },
      { node_id: 'N2', timestamp: now - 50_000, pressure: 2.6, district_id: 'EAST' },
    ]);
    await drain();
    await new Promise((r) => setTimeout(r, 50));
    const latest = messages.map((m) => JSON.parse(m)).filter((m) => m.cause === 'readings');
    expect(latest.filter((m) => m.keys === 'latest-only').flatMap((m) => m.nodes)).toEqual(['N1']);
    expect(latest.filter((m) => m.keys === 'latest').flatMap((m) => m.nodes)).toEqual(['N2']);
    expect(await db.client.hget('node:N2:metadata', 'district_id')).toBe('EAST');
    subscriber.disconnect();
    await running.stop();
    running = undefined;
  });

  it('dead-letters an entry after it failed N deliveries, while the rest flows', async () => {
    const now = Date.now();
    const { log, start } = setup(now, { AGGREGATOR_MAX_DELIVERIES: '3', AGGREGATOR_CLAIM_IDLE_MS: '200' });
    await db.client.xgroup('CREATE', 'readings', 'aggregator', '0', 'MKSTREAM');
    const poison = (await db.client.xadd('readings', '*', 'n', '1', 'readings', '{not json')) as string;
    await append(log, [{ node_id: 'OK', timestamp: now - 2000, flow_rate: 3 }]);
    running = await start();
    // Readings keep flowing while the poison entry waits to be delivered again.
    await waitFor(async () => (await db.client.hget(readModelKeys.nodeLatest('OK'), 'flow_rate')) === '3');
    expect(await db.client.xlen('{readings}:dead')).toBe(0);
    expect(await db.client.hget('{readings}:errors', poison)).toMatch(/JSON/);
    await append(log, [{ node_id: 'OK', timestamp: now - 1000, flow_rate: 4 }]);
    await waitFor(async () => (await db.client.hget(readModelKeys.nodeLatest('OK'), 'flow_rate')) === '4');

    await drain();
    const dead = await db.client.xrange('{readings}:dead', '-', '+');
    expect(dead).toHaveLength(1);
    const fields = dead[0]?.[1] ?? [];
    expect(fields.slice(0, 6)).toEqual(['stream', 'readings', 'id', poison, 'group', 'aggregator']);
    expect(fields[7]).toMatch(/JSON/);
    expect(fields.slice(8)).toEqual(['deliveries', '3']);
    const stats = await db.client.hgetall('agg:{readings}:stats');
    expect(stats).toMatchObject({ failed: '2', dead: '1', applied: '2' });
    expect(await db.client.exists('{readings}:errors')).toBe(0);
    await running.stop();
    running = undefined;
  });

  it('applies the entries a crashed consumer had read but not acknowledged, once', async () => {
    const now = Date.now();
    const { log, start, config } = setup(now);
    const data = generateDataset({ nodes: 6, days: 5, intervalMs: 30 * 60_000, now, seed: 5 });
    await append(log, data.sent, 50);
    // A previous run of this consumer read entries and died before acknowledging them.
    await db.client.xgroup('CREATE', 'readings', 'aggregator', '0', 'MKSTREAM');
    const delivered = await db.client.xreadgroup(
      'GROUP',
      'aggregator',
      config.aggregator.consumer,
      'COUNT',
      7,
      'STREAMS',
      'readings',
      '>',
    );
    expect((delivered as [string, unknown[]][])[0]?.[1]).toHaveLength(7);
    expect((await db.client.xpending('readings', 'aggregator'))[0]).toBe(7);

    running = await start();
    await drain();
    await expectExact(data, now);
    await running.stop();
    running = undefined;
  });

  it("persists a quiet node's detector state at checkpoints, not with every batch", async () => {
    const now = Date.now();
    const { log, start } = setup(now);
    running = await start();
    // Due after checkpointReadings (64) less its phase: a node with ten readings or more before it.
    const every = DEFAULT_ANOMALY_SETTINGS.checkpointReadings;
    const id = ['QUIET', 'QUIET1', 'QUIET2', 'QUIET3'].find(
      (id) => every - checkpointPhase(id, every) > 10,
    ) as string;
    const due = every - checkpointPhase(id, every);
    const readings: Reading[] = Array.from({ length: due }, (_, i) => ({
      node_id: id,
      timestamp: now - 100_000 + i * 1000,
      flow_rate: 5,
      pressure: 4,
    }));
    await append(log, readings.slice(0, 10), 2);
    await drain();
    const key = SHARD.aggregateNode(id);
    // Its panes are committed with every batch; its detectors' state waits for a checkpoint.
    expect(await db.client.hexists(key, 'h')).toBe(1);
    expect(await db.client.hexists(key, 'anom')).toBe(0);
    await append(log, readings.slice(10, due - 1), 2);
    await drain();
    expect(await db.client.hexists(key, 'anom')).toBe(0);
    await append(log, readings.slice(due - 1), 1);
    await drain();
    // The reading it was due at: state and scores.
    expect(await db.client.hexists(key, 'anom')).toBe(1);
    expect(await db.client.hexists(key, 'score:flow_rate')).toBe(1);
    await running.stop();
    running = undefined;
  });

  it.each([
    ['waits a minute', {}, false],
    ['goes every 64 readings with ANOMALY_CHECKPOINT_SECONDS=0', { ANOMALY_CHECKPOINT_SECONDS: '0' }, true],
  ])('checkpoints a node reading fast (catching up) at most once a minute: %s', async (_, env, again) => {
    const now = Date.now();
    const { log, start } = setup(now, env);
    running = await start();
    const every = DEFAULT_ANOMALY_SETTINGS.checkpointReadings;
    const readings: Reading[] = Array.from({ length: 3 * every }, (_, i) => ({
      node_id: 'FAST',
      timestamp: now - 3_600_000 + i * 10_000,
      flow_rate: 5 + (i % 7),
      pressure: 4 + (i % 5) / 10,
    }));
    const key = SHARD.aggregateNode('FAST');
    // Its first checkpoint is due within its first 64 readings.
    await append(log, readings.slice(0, every), 16);
    await drain();
    const first = await db.client.hgetBuffer(key, 'score:flow_rate');
    expect(first).not.toBeNull();
    // Two periods more within seconds: the learning waits for the minute (the
    // windows, in the head, go with every commit).
    const head = await db.client.hgetBuffer(key, 'h');
    await append(log, readings.slice(every), 16);
    await drain();
    expect((await db.client.hgetBuffer(key, 'h'))?.equals(head as Buffer)).toBe(false);
    expect((await db.client.hgetBuffer(key, 'score:flow_rate'))?.equals(first as Buffer)).toBe(!again);
    await running.stop();
    running = undefined;
  });

  it('writes a node once per batch, however many readings it received', async () => {
    const now = Date.now();
    const { start } = setup(now);
    running = await start();
    await db.client.config('RESETSTAT');
    const readings: Reading[] = Array.from({ length: 100 }, (_, i) => ({
      node_id: 'BUSY',
      timestamp: now - 100_000 + i * 1000,
      flow_rate: i,
    }));
    // One stream entry as ingest writes it, appended directly: what ingest's
    // dedupe writes (one hash per slot of event time, and its bookkeeping)
    // is not the aggregator's to count.
    await db.client.xadd(
      SHARD.stream,
      '*',
      'n',
      readings.length,
      'src',
      'test',
      'readings',
      JSON.stringify(readings),
    );
    await drain();
    // INFO commandstats counts the commands scripts run too. One batch of 100
    // readings: latest and metadata once (fast path), its panes once (state
    // commit), six metrics hashes once (metrics round), the shard's partial
    // system sums once and six system metrics hashes, the series once.
    const stats = await db.client.info('commandstats');
    const calls = (command: string) =>
      Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect(calls('hset')).toBe(2 + 1 + 6 + 1 + 6);
    // The series, the watermark, the commit id, the applied mark, six system metrics versions.
    expect(calls('set')).toBeLessThanOrEqual(4 + 6);
    expect((await db.client.hgetall('node:BUSY:metrics:1h')).reading_count).toBe('100');
    await running.stop();
    running = undefined;
  });
});
