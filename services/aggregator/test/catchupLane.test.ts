import {
  allShardKeys,
  CATCHUP,
  GROUPS,
  horizonStart,
  loadConfig,
  ManualClock,
  type Reading,
  readModelKeys,
} from '@streamgauge/core';
import { ReadingLog } from '@streamgauge/redis';
import { checkReadModel, useRedis, waitForAggregator } from '@streamgauge/testkit';
import { pino } from 'pino';
import { Subject } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningAggregator, startAggregator } from '../src/index.ts';

const db = useRedis({ flushEach: true });
const SHARD = allShardKeys(1)[0] as ReturnType<typeof allShardKeys>[number];

describe('the catch-up lane', () => {
  let running: RunningAggregator | undefined;
  afterAll(async () => running?.stop());

  it("shows a node's new reading while an hour of other nodes' readings still waits in the lane, then applies them all exactly", async () => {
    const now = Date.now();
    const clock = new ManualClock(now);
    const config = loadConfig({
      REDIS_URL: db.url,
      AGGREGATOR_BLOCK_MS: '50',
      AGGREGATOR_READ_COUNT: '20',
      AGGREGATOR_LEASE_MS: '1000',
      // One entry of the backlog (100 readings) at a time.
      AGGREGATOR_CATCHUP_READINGS: '100',
    });
    const log = new ReadingLog(db.client, { ...config.stream, clock });
    const sent: Reading[] = [];
    const append = async (readings: Reading[]) => {
      await log.append(readings, 'gw');
      sent.push(...readings);
    };

    // The aggregator's group exists and is behind: entries of fresh readings it has not read.
    await db.client.xgroup('CREATE', SHARD.stream, GROUPS.aggregator, '0', 'MKSTREAM');
    for (let i = 0; i < CATCHUP.gateEntries; i++) {
      await append([{ node_id: `F${i}`, timestamp: now - 1_000, flow_rate: i }]);
    }
    // A fleet back from an hour offline sends that hour, oldest first: 50 nodes, one reading every 30 s.
    const fleet = Array.from({ length: 50 }, (_, n) => `G${n}`);
    for (let step = 0; step < 120; step += 2) {
      const round: Reading[] = [];
      for (const s of [step, step + 1]) {
        const at = now - 70 * 60_000 + s * 30_000;
        for (const [n, id] of fleet.entries())
          round.push({ node_id: id, timestamp: at, flow_rate: n + s / 10 });
      }
      await append(round);
    }
    expect(await db.client.xlen(SHARD.catchup)).toBe(60);

    running = await startAggregator(config, pino({ level: 'silent' }), { clock, ticks$: new Subject() });
    // Then readings of now: L's goes to the stream, ahead of the hour; G0's
    // follows G0's hour into the lane (a node's readings keep their order).
    await append([
      { node_id: 'G0', timestamp: now - 500, flow_rate: 42.5 },
      { node_id: 'L', timestamp: now - 500, flow_rate: 7.25 },
    ]);
    let seen: { lane: number; g0: string | null } | undefined;
    const deadline = Date.now() + 20_000;
    while (seen === undefined && Date.now() < deadline) {
      const [l, g0, lane] = await Promise.all([
        db.client.hget(readModelKeys.nodeLatest('L'), 'flow_rate'),
        db.client.hget(readModelKeys.nodeLatest('G0'), 'flow_rate'),
        db.client.xlen(SHARD.catchup),
      ]);
      if (l === '7.25') seen = { lane, g0 };
      else await new Promise((r) => setTimeout(r, 5));
    }
    // L's reading was visible while most of the hour was still in the lane, and G0's was not yet.
    expect(seen?.lane).toBeGreaterThan(30);
    expect(seen?.g0).not.toBe('42.5');

    await waitForAggregator(db.client);
    expect(await db.client.exists(SHARD.catchup, SHARD.catchupNodes)).toBe(0);
    expect(await db.client.hget(readModelKeys.nodeLatest('G0'), 'flow_rate')).toBe('42.5');
    const problems = await checkReadModel(db.client, sent, {
      ttlSeconds: 24 * 3600,
      horizonStart: horizonStart(now),
    });
    expect(problems.slice(0, 20)).toEqual([]);
    const stats = await db.client.hgetall(SHARD.aggregateStats);
    expect(Number(stats.applied)).toBe(sent.length);
    expect(Number(stats.entries)).toBe(await db.client.xlen(SHARD.stream));
  });

  it('applies a backlog read a chunk ahead exactly once, with scans of pending entries every 50 ms', async () => {
    const now = Date.now();
    const clock = new ManualClock(now);
    const config = loadConfig({
      REDIS_URL: db.url,
      AGGREGATOR_BLOCK_MS: '50',
      AGGREGATOR_LEASE_MS: '1000',
      // The next chunk is read while one (20,000 readings) is applied, and
      // scans of pending entries every 50 ms claim what has waited 100 ms.
      AGGREGATOR_CLAIM_IDLE_MS: '100',
      AGGREGATOR_CATCHUP_READINGS: '20000',
    });
    const log = new ReadingLog(db.client, { ...config.stream, clock });
    const sent: Reading[] = [];
    await db.client.xgroup('CREATE', SHARD.stream, GROUPS.aggregator, '0', 'MKSTREAM');
    for (let i = 0; i < CATCHUP.gateEntries; i++) {
      const reading = { node_id: `F${i}`, timestamp: now - 1_000, flow_rate: i };
      await log.append([reading], 'gw');
      sent.push(reading);
    }
    // 500 nodes' hour, a reading every 30 s, oldest first: into the lane.
    const fleet = Array.from({ length: 500 }, (_, n) => `G${n}`);
    for (let step = 0; step < 120; step += 2) {
      const round: Reading[] = [];
      for (const s of [step, step + 1]) {
        const at = now - 70 * 60_000 + s * 30_000;
        for (const [n, id] of fleet.entries())
          round.push({ node_id: id, timestamp: at, flow_rate: n + s / 10 });
      }
      await log.append(round, 'gw');
      sent.push(...round);
    }
    expect(await db.client.xlen(SHARD.catchup)).toBeGreaterThan(50);

    running = await startAggregator(config, pino({ level: 'silent' }), { clock, ticks$: new Subject() });
    await waitForAggregator(db.client);
    await running.stop();
    running = undefined;
    expect(await db.client.exists(SHARD.catchup, SHARD.catchupNodes)).toBe(0);
    const problems = await checkReadModel(db.client, sent, {
      ttlSeconds: 24 * 3600,
      horizonStart: horizonStart(now),
    });
    expect(problems.slice(0, 20)).toEqual([]);
    // Every entry applied once.
    const stats = await db.client.hgetall(SHARD.aggregateStats);
    expect(Number(stats.applied)).toBe(sent.length);
    expect(Number(stats.entries)).toBe(await db.client.xlen(SHARD.stream));
  });
});
