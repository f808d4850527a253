import {
  allShardKeys,
  CATCHUP,
  catchupLaneOf,
  GROUPS,
  horizonStart,
  type Reading,
  readModelKeys,
} from '@streamgauge/core';
import { catchupBacklog } from '@streamgauge/redis';
import { checkReadModel, useRedis, waitForAggregator } from '@streamgauge/testkit';
import { pino } from 'pino';
import { Subject } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningAggregator, startAggregator } from '../src/index.ts';
import { liveSetup } from './support/liveFeed.ts';

const db = useRedis({ flushEach: true });
const SHARD = allShardKeys(1)[0] as ReturnType<typeof allShardKeys>[number];
/** Entries waiting in the shard's catch-up lanes. */
const laneEntries = async () => (await catchupBacklog(db.client, SHARD)).entries;

/**
 * A shard whose aggregator group is behind (entries of fresh readings it has
 * not read), then a fleet back from an hour offline sending that hour,
 * oldest first (a reading every 30 s): into the catch-up lane.
 */
async function behindWithFleetHour(env: Record<string, string>, fleetSize: number) {
  const now = Date.now();
  const { clock, config, log } = liveSetup(db.client, db.url, now, env);
  const sent: Reading[] = [];
  const append = async (readings: Reading[]) => {
    await log.append(readings, 'gw');
    sent.push(...readings);
  };
  await db.client.xgroup('CREATE', SHARD.stream, GROUPS.aggregator, '0', 'MKSTREAM');
  for (let i = 0; i < CATCHUP.gateEntries; i++) {
    await append([{ node_id: `F${i}`, timestamp: now - 1_000, flow_rate: i }]);
  }
  const fleet = Array.from({ length: fleetSize }, (_, n) => `G${n}`);
  for (let step = 0; step < 120; step += 2) {
    const round: Reading[] = [];
    for (const s of [step, step + 1]) {
      const at = now - 70 * 60_000 + s * 30_000;
      for (const [n, id] of fleet.entries())
        round.push({ node_id: id, timestamp: at, flow_rate: n + s / 10 });
    }
    await append(round);
  }
  // Each request's readings go to their nodes' lanes, an entry per lane.
  const lanesUsed = new Set(fleet.map(catchupLaneOf)).size;
  return { now, clock, config, sent, append, lanesUsed };
}

/** The lane is empty, every key equals the independent computation, every entry was applied once. */
async function expectAllAppliedOnce(sent: readonly Reading[], now: number): Promise<void> {
  expect(await db.client.exists(...SHARD.catchupLanes, SHARD.catchupNodes)).toBe(0);
  const problems = await checkReadModel(db.client, sent, {
    ttlSeconds: 24 * 3600,
    horizonStart: horizonStart(now),
  });
  expect(problems.slice(0, 20)).toEqual([]);
  const stats = await db.client.hgetall(SHARD.aggregateStats);
  expect(Number(stats.applied)).toBe(sent.length);
  expect(Number(stats.entries)).toBe(await db.client.xlen(SHARD.stream));
}

describe('the catch-up lane', () => {
  let running: RunningAggregator | undefined;
  afterAll(async () => running?.stop());

  it("shows a node's new reading while an hour of other nodes' readings still waits in the lane, then applies them all exactly", async () => {
    // 50 nodes' hour; one entry of the backlog (100 readings) at a time.
    const { now, clock, config, sent, append, lanesUsed } = await behindWithFleetHour(
      { AGGREGATOR_READ_COUNT: '20', AGGREGATOR_CATCHUP_READINGS: '100' },
      50,
    );
    expect(lanesUsed).toBe(CATCHUP.lanes);
    expect(await laneEntries()).toBe(60 * lanesUsed);

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
        laneEntries(),
      ]);
      if (l === '7.25') seen = { lane, g0 };
      else await new Promise((r) => setTimeout(r, 5));
    }
    // L's reading was visible while most of the hour was still in the lane, and G0's was not yet.
    expect(seen?.lane).toBeGreaterThan(30 * CATCHUP.lanes);
    expect(seen?.g0).not.toBe('42.5');

    await waitForAggregator(db.client);
    expect(await db.client.hget(readModelKeys.nodeLatest('G0'), 'flow_rate')).toBe('42.5');
    await expectAllAppliedOnce(sent, now);
    await running.stop();
    running = undefined;
  });

  it("shows a live reading that came after a chunk was moved before that chunk's apply is over, then applies everything exactly", async () => {
    // 2,000 nodes' hour (240,000 readings), in chunks of 100,000: each takes
    // a good part of a second to apply. A reading of a node of its own sent
    // once the first chunk has left the lane is read beside it and applied
    // ahead of its rest: shown while no node of the chunk is.
    const { now, clock, config, sent, append } = await behindWithFleetHour(
      { AGGREGATOR_CATCHUP_READINGS: '100000' },
      2_000,
    );
    const laneBefore = await laneEntries();
    running = await startAggregator(config, pino({ level: 'silent' }), { clock, ticks$: new Subject() });
    const deadline = Date.now() + 20_000;
    while ((await laneEntries()) === laneBefore && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1));
    }
    await append([{ node_id: 'L', timestamp: now - 500, flow_rate: 7.25 }]);
    let fleetShown: number | undefined;
    while (fleetShown === undefined && Date.now() < deadline) {
      if ((await db.client.hget(readModelKeys.nodeLatest('L'), 'flow_rate')) === '7.25') {
        fleetShown = await db.client.exists(
          ...Array.from({ length: 2_000 }, (_, n) => readModelKeys.nodeLatest(`G${n}`)),
        );
      } else await new Promise((r) => setTimeout(r, 2));
    }
    expect(fleetShown).toBe(0);
    await waitForAggregator(db.client);
    await running.stop();
    running = undefined;
    await expectAllAppliedOnce(sent, now);
  });

  it('applies a backlog read a chunk ahead exactly once, live readings coming throughout, with scans of pending entries every 50 ms', async () => {
    // 500 nodes' hour. The next chunk is read while one (20,000 readings)
    // is applied, from the second chunk on as late as its reply comes in
    // time, so the live entries that came meanwhile go before it; scans of
    // pending entries every 50 ms claim what has waited 100 ms.
    const { now, clock, config, sent, append } = await behindWithFleetHour(
      { AGGREGATOR_CLAIM_IDLE_MS: '100', AGGREGATOR_CATCHUP_READINGS: '20000' },
      500,
    );
    expect(await laneEntries()).toBeGreaterThan(50);

    running = await startAggregator(config, pino({ level: 'silent' }), { clock, ticks$: new Subject() });
    // Live readings until the lane is empty: nodes of their own (to the
    // stream) and fleet nodes (behind their hour, in the lane while it holds
    // some of it, then to the stream).
    let k = 0;
    while ((await laneEntries()) > 0) {
      k++;
      await append([
        { node_id: `L${k % 7}`, timestamp: now - 60_000 + k, flow_rate: k },
        { node_id: `G${(k * 37) % 500}`, timestamp: now - 60_000 + k, flow_rate: k / 4 },
      ]);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(k).toBeGreaterThan(10);
    await waitForAggregator(db.client);
    await running.stop();
    running = undefined;
    await expectAllAppliedOnce(sent, now);
  });
});
