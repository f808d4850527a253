import { Writable } from 'node:stream';
import {
  allShardKeys,
  ENTRY_FIELDS,
  horizonStart,
  loadConfig,
  ManualClock,
  type Reading,
} from '@streamgauge/core';
import { ReadingLog } from '@streamgauge/redis';
import {
  checkReadModel,
  type Dataset,
  generateDataset,
  useRedis,
  waitForAggregator,
} from '@streamgauge/testkit';
import { pino } from 'pino';
import { filter, firstValueFrom, Subject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { BatchOutcome } from '../src/aggregator.ts';
import { type RunningAggregator, startAggregator } from '../src/index.ts';

const TTL = 24 * 3600;
const SHARD = allShardKeys(1)[0] as ReturnType<typeof allShardKeys>[number];
const db = useRedis({ flushEach: true });

/** An aggregator whose log lines are kept (message and fields), and every batch outcome it reports. */
function setup(now: number, env: Record<string, string>) {
  const clock = new ManualClock(now);
  const config = loadConfig({
    REDIS_URL: db.url,
    AGGREGATOR_BLOCK_MS: '50',
    AGGREGATOR_LEASE_MS: '1000',
    ...env,
  });
  const log = new ReadingLog(db.client, { ...config.stream, clock });
  const lines: { msg: string; [field: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const batches: BatchOutcome[] = [];
  const ticks = new Subject<number>();
  const start = async () => {
    const running = await startAggregator(config, pino({ level: 'info' }, sink), { clock, ticks$: ticks });
    running.processed$.subscribe((p) => {
      if (p.kind === 'batches' && p.outcome.entries > 0) batches.push(p.outcome);
    });
    return running;
  };
  return { log, lines, batches, start, clock, ticks };
}

/** Appends readings as entries of `size` readings each (one entry per append, one shard). */
async function append(log: ReadingLog, readings: readonly Reading[], size: number): Promise<void> {
  for (let i = 0; i < readings.length; i += size) await log.append(readings.slice(i, i + size), 'test');
}

/** Every key equals the oracle, and every stream entry was applied exactly once. */
async function expectExact(data: Dataset, now: number, extra: Reading[] = []): Promise<void> {
  const problems = await checkReadModel(db.client, [...data.unique, ...extra], {
    ttlSeconds: TTL,
    horizonStart: horizonStart(now),
  });
  expect(problems.slice(0, 20)).toEqual([]);
  const stats = await db.client.hgetall(SHARD.aggregateStats);
  // The counters advance in the same script as the XACK: once per entry means each applied once.
  expect(Number(stats.entries)).toBe(await db.client.xlen(SHARD.stream));
  expect(Number(stats.applied)).toBe(data.unique.length + extra.length - data.tooLate);
}

describe('aggregator liveness', () => {
  let running: RunningAggregator | undefined;
  afterEach(async () => {
    await running?.stop().catch(() => {});
    running = undefined;
  });

  it('drops the shard when the lease is taken in the middle of a batch, re-acquires it, and applies every reading once', async () => {
    const now = Date.now();
    // One read takes every entry (READ_COUNT ≥ entries); each slice is one entry.
    const { log, lines, batches, start } = setup(now, {
      AGGREGATOR_READ_COUNT: '500',
      AGGREGATOR_SLICE_READINGS: '50',
    });
    const data = generateDataset({ nodes: 10, days: 3, intervalMs: 10 * 60_000, now, seed: 23 });
    await append(log, data.sent, 50);
    const total = await db.client.xlen(SHARD.stream);
    expect(total).toBeGreaterThan(40);
    expect(total).toBeLessThanOrEqual(500);

    // As soon as the first slice is committed, another replica holds the lease
    // (as one would that took it over while this one was stalled).
    const starting = start();
    let committedBefore = 0;
    for (const deadline = Date.now() + 10_000; ; ) {
      committedBefore = Number(await db.client.hget(SHARD.aggregateStats, 'entries'));
      if (committedBefore > 0) break;
      if (Date.now() > deadline) throw new Error('no slice was committed');
    }
    await db.client.set(SHARD.lease, 'replica-b/1', 'PX', 1500);
    const pendingAtLoss = Number((await db.client.xpending(SHARD.stream, 'aggregator'))[0]);
    running = await starting;

    // Taken mid-batch: part of the one read was committed, the rest still pending.
    expect(committedBefore).toBeLessThan(total);
    expect(pendingAtLoss).toBeGreaterThan(0);

    // Once the other replica's lease lapses, this one takes the shard again and finishes.
    await waitForAggregator(db.client, 1, 20_000);
    await expectExact(data, now);

    const messages = lines.map((l) => l.msg);
    // The loss was noticed (by the refused commit or the renewal), the shard dropped and acquired again.
    expect(
      messages.filter((m) => /lease lost to another replica|shard lease expired/.test(m)).length,
    ).toBeGreaterThanOrEqual(1);
    expect(messages.filter((m) => m === 'shard acquired')).toHaveLength(2);
    // No commit refused with LEASE_LOST was retried as if Redis were unavailable.
    expect(lines.filter((l) => /failed; retrying/.test(l.msg))).toEqual([]);
    // The first batch stopped at the loss; the rest was claimed and applied by the new acquisition.
    expect(batches[0]?.entries).toBeLessThan(total);
    expect(batches.reduce((sum, b) => sum + b.entries, 0)).toBe(total);
    const stats = await db.client.hgetall(SHARD.aggregateStats);
    expect(Number(stats.redelivered)).toBeGreaterThan(0);
  });

  it('applies one read far larger than the slice size in slices, each entry once', async () => {
    const now = Date.now();
    const { log, batches, start } = setup(now, {
      AGGREGATOR_READ_COUNT: '500',
      AGGREGATOR_SLICE_READINGS: '250',
    });
    const data = generateDataset({ nodes: 8, days: 2, intervalMs: 10 * 60_000, now, seed: 29 });
    await append(log, data.sent, 100);
    // One entry larger than a slice: a slice of its own.
    const big: Reading[] = Array.from({ length: 600 }, (_, i) => ({
      node_id: 'BIG',
      timestamp: now - (600 - i) * 60_000,
      flow_rate: i % 7,
      pressure: 3 + (i % 5) / 10,
    }));
    await log.append(big, 'test');

    // The slices the entries make, as the aggregator should cut them.
    const sizes = (await db.client.xrange(SHARD.stream, '-', '+')).map(([, fields]) =>
      Number(fields[fields.indexOf(ENTRY_FIELDS.count) + 1]),
    );
    expect(sizes.length).toBeLessThanOrEqual(500);
    expect(Math.max(...sizes)).toBe(600);
    let slices = 0;
    let inSlice = 0;
    for (const size of sizes) {
      if (inSlice > 0 && inSlice + size <= 250) inSlice += size;
      else {
        slices++;
        inSlice = size;
      }
    }
    expect(slices).toBeGreaterThan(10);

    await db.client.config('RESETSTAT');
    running = await start();
    await waitForAggregator(db.client, 1, 20_000);
    await expectExact(data, now, big);

    // One read delivered every entry ...
    expect(batches).toHaveLength(1);
    expect(batches[0]?.entries).toBe(sizes.length);
    // ... applied slice by slice, and the slices applied while a commit ran
    // were committed together: fewer commits than slices, each acknowledging
    // its entries with one XACK (INFO commandstats counts commands scripts run).
    const info = await db.client.info('commandstats');
    const commits = Number(/cmdstat_xack:calls=(\d+)/.exec(info)?.[1]);
    expect(commits).toBeGreaterThanOrEqual(1);
    expect(commits).toBeLessThan(slices);
  });

  it('rewrites every node on acquisition and on a clock tick in chunks, the keys ending right', async () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 30);
    const { log, start, clock, ticks, lines } = setup(now, { AGGREGATOR_LEASE_MS: '3000' });
    // More nodes than one chunk (2,000) of an acquisition or a tick.
    const readings: Reading[] = [];
    for (let n = 0; n < 2_500; n++) {
      const node_id = `N${String(n).padStart(4, '0')}`;
      readings.push({ node_id, timestamp: now - 50 * 60_000, flow_rate: n % 13, pressure: 2 + (n % 3) });
      readings.push({ node_id, timestamp: now - 5 * 60_000, flow_rate: n % 11, pressure: 2 + (n % 4) });
    }
    await append(log, readings, 1_000);
    // Checked while no aggregator runs: the oracle's seconds of CPU would stall it here, in this process.
    const expectKeys = async () => {
      const problems = await checkReadModel(db.client, readings, {
        ttlSeconds: TTL,
        horizonStart: horizonStart(now),
      });
      expect(problems.slice(0, 20)).toEqual([]);
    };
    running = await start();
    await waitForAggregator(db.client, 1, 20_000);
    await running.stop();
    await expectKeys();

    // Every node's keys are gone; the next acquisition writes them all again
    // from the state, and half an hour later (no reading since) a tick slides
    // every node's short windows past the older reading.
    const keys = await db.client.keys('node:*');
    expect(keys.length).toBeGreaterThan(2_500);
    for (let i = 0; i < keys.length; i += 1_000) await db.client.del(...keys.slice(i, i + 1_000));
    running = await start();
    await waitForAggregator(db.client, 1, 20_000);
    const later = now + 30 * 60_000;
    clock.set(later);
    const ticked = firstValueFrom(running.processed$.pipe(filter((p) => p.kind === 'tick')));
    ticks.next(later);
    await ticked;
    await running.stop();
    await expectKeys();
    expect((await db.client.hgetall('node:N2499:metrics:1h')).reading_count).toBe('1');
    expect((await db.client.hgetall('node:N0000:metrics:1h')).reading_count).toBe('1');
    // Applying 2,500 new nodes (over a second of CPU at once before slices
    // yielded), acquiring them and ticking them never held the event loop
    // long enough for the lease to lapse.
    expect(lines.filter((l) => /lease|lost/.test(l.msg)).map((l) => l.msg)).toEqual([]);
    expect(lines.filter((l) => l.msg === 'shard acquired')).toHaveLength(2);
  }, 60_000);
});
