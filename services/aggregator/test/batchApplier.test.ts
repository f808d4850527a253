import { metricsHash, type Reading, readModelKeys } from '@streamgauge/core';
import { AggregateStore, type DeliveredBatch, type DeliveredEntry } from '@streamgauge/redis';
import { useRedis } from '@streamgauge/testkit';
import { describe, expect, it, vi } from 'vitest';
import type { Overtaking } from '../src/batchApplier.ts';
import { NODE_CHUNK, type ShardState } from '../src/liveState.ts';
import { STEP_NODES } from '../src/metricsRounds.ts';
import { COMMIT_READINGS } from '../src/shardOwnership.ts';
import { liveParts, SHARD } from './support/liveParts.ts';

const db = useRedis({ flushEach: true });

/** Each node's persisted 24-hour reading count, loaded as a new holder would load it. */
const persistedCounts = async (now: number) => {
  const store = new AggregateStore(db.client, SHARD, { ttlSeconds: 3600, token: 'T' });
  const counts: Record<string, string | undefined> = {};
  for (const [id, { windows }] of await store.load(60_000)) {
    counts[id] = metricsHash(windows.evaluate('24h', now), now).reading_count;
  }
  return counts;
};

/** Redis takes no write for `ms` (as when a long script holds it), from a connection of its own. */
const pauseWrites = async (ms: number) => {
  const admin = db.client.duplicate();
  await admin.client('PAUSE', ms, 'WRITE');
  admin.disconnect();
};

describe('BatchApplier', () => {
  it('leaves nothing of a slice dropped half-way (the lease lost while it yields) to the next one', async () => {
    const { live, applier, acquire, readings, entry } = await liveParts(db.client);
    // One node's 1,200 readings: the slice yields with some of them applied, and the shard is dropped right then.
    const first = acquire();
    let dropped = false;
    const dropWhenApplying = () => {
      if (live.nodes.get('BIG')?.windows.latest !== undefined) {
        live.shards.delete(SHARD.stream);
        dropped = true;
      } else setImmediate(dropWhenApplying);
    };
    setImmediate(dropWhenApplying);
    const lost = await (
      await applier.apply({ shard: SHARD, entries: [entry('1-0', readings('BIG', 1_200))] }, first)
    ).committed;
    expect(dropped).toBe(true);
    expect(lost.entries).toBe(0);
    expect(live.nodes.has('BIG')).toBe(false);

    // Acquired again: a small slice of another node is applied as it is, and only its readings reach its detectors.
    const second = acquire();
    const outcome = await (
      await applier.apply({ shard: SHARD, entries: [entry('2-0', readings('SMALL', 3))] }, second)
    ).committed;
    expect(outcome).toMatchObject({ entries: 1, readings: 3, applied: 3 });
    const small = live.nodes.get('SMALL');
    expect(small?.detector.state().window.flow_rate).toEqual([1, 2, 3]);
    expect(live.nodes.has('BIG')).toBe(false);
  });

  it('writes every node owed after a quiet read a step at a time, only a chunk after an empty page of a scan', async () => {
    const { now, applier, rounds, acquire, entry } = await liveParts(db.client);
    const state = acquire();
    const ids = Array.from({ length: NODE_CHUNK + 1_000 }, (_, i) => `Q${i}`);
    const readings = ids.map((node_id) => ({ node_id, timestamp: now - 1_000, flow_rate: 1 }));
    await (await applier.apply({ shard: SHARD, entries: [entry('1-0', readings)] }, state)).committed;
    const written = async () => {
      // The writers share this connection: a reply here comes after every write sent before.
      await db.client.ping();
      return db.client.exists(...ids.map((id) => readModelKeys.nodeMetrics(id, '1h')));
    };
    const empty = { shard: SHARD, entries: [] };
    // A scan's empty page (every AGGREGATOR_CLAIM_IDLE_MS / 2, under any load) writes a chunk at most.
    await (await applier.apply(empty, state)).committed;
    expect(await written()).toBeLessThanOrEqual(200);
    // A quiet stream: everything owed, written a step of STEP_NODES nodes at a time (batches may go in between).
    const quiet = await applier.apply(empty, state, true);
    expect(quiet.owed).toBe(true);
    expect(await written()).toBeLessThanOrEqual(200);
    let steps = 0;
    for (; await rounds.step(); steps++) await rounds.idle();
    expect(steps).toBeGreaterThanOrEqual(Math.floor((ids.length - 200) / STEP_NODES));
    await vi.waitFor(async () => expect(await written()).toBe(ids.length), { timeout: 5_000 });
  });

  it('takes a metrics step without waiting for Redis: while a chunk is in flight, a step writes nothing', async () => {
    const { now, applier, rounds, acquire, entry } = await liveParts(db.client);
    const state = acquire();
    const ids = Array.from({ length: 3 * STEP_NODES }, (_, i) => `S${i}`);
    const readings = ids.map((node_id) => ({ node_id, timestamp: now - 1_000, flow_rate: 1 }));
    await (await applier.apply({ shard: SHARD, entries: [entry('1-0', readings)] }, state)).committed;
    await rounds.idle();
    // Read on a connection of its own: on the writers' it would queue behind their paused writes.
    const reader = db.client.duplicate();
    const written = () => reader.exists(...ids.map((id) => readModelKeys.nodeMetrics(id, '1h')));
    const before = await written();
    // Redis takes no write for a while (as when it is busy with a long script).
    await db.client.client('PAUSE', 2_000, 'WRITE');
    const started = performance.now();
    try {
      expect(await rounds.step()).toBe(true);
      // The chunk is in flight: the next step writes nothing, and returns at once.
      expect(await rounds.step()).toBe(true);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(await written()).toBe(before);
      await rounds.idle();
      expect(performance.now() - started).toBeGreaterThan(1_000);
      expect(await written()).toBe(Math.min(ids.length, before + STEP_NODES));
      while (await rounds.step()) await rounds.idle();
      await rounds.idle();
      expect(await written()).toBe(ids.length);
    } finally {
      reader.disconnect();
    }
  });

  describe('live batches ahead of a lane chunk', () => {
    /** A chunk moved from the catch-up lane: 20 nodes' 100 readings each, as one entry. */
    const laneChunk = (parts: Awaited<ReturnType<typeof liveParts>>, id: string): DeliveredEntry => {
      const readings: Reading[] = [];
      for (let n = 0; n < 20; n++) readings.push(...parts.readings(`BACK${n}`, 100));
      return { ...parts.entry(id, readings), fromLane: true };
    };

    /** Applies the batch (by default the lane's chunk alone) taking live batches from `overtaking`. */
    const applyChunk = (
      parts: Awaited<ReturnType<typeof liveParts>>,
      state: ShardState,
      overtaking: Overtaking,
      onYield?: () => void,
      entries: DeliveredEntry[] = [laneChunk(parts, '5-0')],
    ) => parts.applier.apply({ shard: SHARD, entries }, state, false, onYield, overtaking);

    /** Hands out the given batches, one at each call, and records what the apply had done then. */
    const handing = (batches: DeliveredBatch[], seen: (call: number) => void) => {
      let calls = 0;
      const overtaking = {
        closed: false,
        take: () => {
          seen(calls++);
          return overtaking.closed ? undefined : batches.shift();
        },
        close: () => {
          overtaking.closed = true;
        },
      };
      return overtaking;
    };

    it("applies a live batch read meanwhile before the chunk's rest: its latest first, every reading once, the position not past the chunk", async () => {
      const parts = await liveParts(db.client);
      const { live, acquire, readings, entry, now } = parts;
      const state = acquire();
      let chunkLeft: number | undefined;
      const overtaking = handing([{ shard: SHARD, entries: [entry('9-0', readings('LIVE', 2))] }], (call) => {
        // The call after the live batch was handed out: it is applied, the chunk is not.
        if (call === 1) {
          chunkLeft = 0;
          for (let n = 0; n < 20; n++) {
            const latest = live.nodes.get(`BACK${n}`)?.windows.latest?.timestamp;
            if (latest !== now - 1000) chunkLeft++;
          }
          expect(live.nodes.get('LIVE')?.windows.latest?.timestamp).toBe(now - 1000);
        }
      });
      const applied = await applyChunk(parts, state, overtaking);
      expect(chunkLeft).toBeGreaterThan(0);
      expect(overtaking.closed).toBe(true);
      const outcome = await applied.committed;
      expect(outcome).toMatchObject({ entries: 2, readings: 2002, applied: 2002, nodes: 21 });
      // Written out: LIVE's latest, and every reading in the committed state once.
      await db.client.ping();
      expect(await db.client.hget(readModelKeys.nodeLatest('LIVE'), 'flow_rate')).toBe('2');
      const counts = await persistedCounts(now);
      expect(counts.LIVE).toBe('2');
      for (let n = 0; n < 20; n++) expect(counts[`BACK${n}`]).toBe('100');
      // The committed position is the chunk's, not the newer live entry's: the chunk's entries are older.
      expect(live.committed.get(state)).toBe('5-0');
    });

    it("applies a live batch's entries that name a node of the chunk after it, in order, and later entries naming their nodes too; the others ahead", async () => {
      const parts = await liveParts(db.client);
      const { live, acquire, readings, entry, now } = parts;
      const state = acquire();
      // BACK3's newer reading shares an entry with SHARED's first: both wait
      // for the chunk, and so does SHARED's second, in a later batch. OTHER's
      // and OTHER2's entries name no node of the chunk: they go ahead.
      const newer = { node_id: 'BACK3', timestamp: now, flow_rate: 500 };
      const shared = (flow_rate: number, ago: number) => ({
        node_id: 'SHARED',
        timestamp: now - ago,
        flow_rate,
      });
      const overtaking = handing(
        [
          {
            shard: SHARD,
            entries: [entry('9-0', [newer, shared(7, 2000)]), entry('9-1', readings('OTHER', 1))],
          },
          { shard: SHARD, entries: [entry('9-2', [shared(8, 1000)]), entry('9-3', readings('OTHER2', 1))] },
        ],
        () => {},
      );
      const order: string[] = [];
      const back3 = () => live.nodes.get('BACK3')?.windows.latest?.timestamp;
      const applied = await applyChunk(parts, state, overtaking, () =>
        order.push(`${back3() === now}:${live.nodes.has('SHARED')}:${live.nodes.has('OTHER2')}`),
      );
      const outcome = await applied.committed;
      expect(outcome).toMatchObject({ entries: 5, readings: 2005, applied: 2005, nodes: 23 });
      // While the chunk was applied: OTHER2 (the second batch) was, BACK3's newer reading and SHARED were not.
      expect(order).toContain('false:false:true');
      expect(order.some((o) => o.startsWith('true') || o.includes(':true:'))).toBe(false);
      // Each node's detector saw its readings in order: BACK3's 100, then the newer one; SHARED's two.
      const window = live.nodes.get('BACK3')?.detector.state().window.flow_rate ?? [];
      expect(window.slice(-2)).toEqual([100, 500]);
      expect(live.nodes.get('SHARED')?.detector.state().window.flow_rate).toEqual([7, 8]);
      const counts = await persistedCounts(now);
      expect(counts).toMatchObject({ BACK3: '101', SHARED: '2', OTHER: '1', OTHER2: '1' });
      expect(live.committed.get(state)).toBe('5-0');
    });
    it('applies a live batch ahead while the chunk waits for room behind two commits on their way', async () => {
      // A commit holds 1,000 readings at most here: the chunk's 2,000 wait for the oldest commit to go.
      const parts = await liveParts(db.client, { commitReadings: 1_000 });
      const { live, applier, ownership, acquire, readings, entry } = parts;
      const state = acquire();
      await pauseWrites(800);
      await applier.apply({ shard: SHARD, entries: [entry('1-0', readings('A', 3))] }, state);
      await applier.apply({ shard: SHARD, entries: [entry('2-0', readings('B', 2))] }, state);
      ownership.sendPending();
      await applier.apply({ shard: SHARD, entries: [entry('3-0', readings('C', 5))] }, state);
      expect(ownership.wouldWait(state, 2_000)).toBe(true);
      // What the apply had done each time it looked for a live batch after LIVE's was handed out.
      const seen: string[] = [];
      const backApplied = () =>
        Array.from({ length: 20 }, (_, n) => live.nodes.has(`BACK${n}`)).filter(Boolean).length;
      const overtaking = handing([{ shard: SHARD, entries: [entry('9-0', readings('LIVE', 1))] }], (call) => {
        if (call > 0) seen.push(`${live.nodes.has('LIVE')}:${backApplied()}`);
      });
      const applied = await applyChunk(parts, state, overtaking);
      expect(await applied.committed).toMatchObject({ entries: 2, readings: 2001, applied: 2001 });
      // LIVE was applied while the chunk waited: before any of the chunk's nodes.
      expect(seen[0]).toBe('true:0');
      expect((await persistedCounts(parts.now)).LIVE).toBe('1');
    });

    it('applies a deferred entry once no slice in hand names its nodes, before the rest of the chunk', async () => {
      const parts = await liveParts(db.client);
      const { live, acquire, readings, entry, now } = parts;
      const state = acquire();
      // The batch: a stream entry of HEAD's (a slice of its own, applied
      // first), then the lane's chunk. HEAD's newer reading is taken while
      // HEAD's slice is in hand: it waits for that slice, not for the chunk.
      const overtaking = handing(
        [{ shard: SHARD, entries: [entry('9-0', [{ node_id: 'HEAD', timestamp: now, flow_rate: 900 }])] }],
        () => {},
      );
      const seen: string[] = [];
      const chunkApplied = () =>
        Array.from({ length: 20 }, (_, n) => live.nodes.get(`BACK${n}`)?.windows.latest?.timestamp).filter(
          (t) => t === now - 1000,
        ).length;
      const applied = await applyChunk(
        parts,
        state,
        overtaking,
        () => seen.push(`${live.nodes.get('HEAD')?.windows.latest?.timestamp === now}:${chunkApplied()}`),
        [entry('4-0', readings('HEAD', 600)), laneChunk(parts, '5-0')],
      );
      expect(await applied.committed).toMatchObject({ entries: 3, readings: 2601, applied: 2601 });
      // Shown while the chunk was being applied (not every one of its nodes yet).
      expect(seen.some((s) => s.startsWith('true:') && s !== 'true:20')).toBe(true);
      expect(seen[0]).toMatch(/^false:/);
      const window = live.nodes.get('HEAD')?.detector.state().window.flow_rate ?? [];
      expect(window.slice(-2)).toEqual([600, 900]);
      expect((await persistedCounts(now)).HEAD).toBe('601');
    });
  });

  describe('commits', () => {
    /** XACK calls since the last RESETSTAT: one per commit that acknowledges entries. */
    const xacks = async () =>
      Number(/cmdstat_xack:calls=(\d+)/.exec(await db.client.info('commandstats'))?.[1] ?? 0);

    it('commits the slices applied while a commit runs together: each entry acknowledged once, the state exact', async () => {
      const { applier, acquire, readings, entry, now } = await liveParts(db.client);
      const state = acquire();
      await db.client.config('RESETSTAT');
      await pauseWrites(800);
      const started = performance.now();
      // The first slice's commit goes at once and waits for Redis; the next three are applied meanwhile.
      const batches = [
        [entry('1-0', readings('A', 3))],
        [entry('2-0', readings('A', 5)), entry('2-1', readings('B', 2))],
        [entry('3-0', readings('B', 4))],
        [entry('4-0', readings('C', 1))],
      ];
      const applied = [];
      for (const entries of batches) applied.push(await applier.apply({ shard: SHARD, entries }, state));
      expect(performance.now() - started).toBeLessThan(600);
      const outcomes = await Promise.all(applied.map((a) => a.committed));
      expect(outcomes.map((o) => [o.entries, o.readings, o.applied])).toEqual([
        [1, 3, 3],
        [2, 7, 7],
        [1, 4, 4],
        [1, 1, 1],
      ]);
      // Two commits: the first slice's, then the three others' in one.
      expect(await xacks()).toBe(2);
      // Every slice's readings are in the state the commits wrote, once.
      expect(await persistedCounts(now)).toEqual({ A: '8', B: '6', C: '1' });
    });

    it('never prepares a commit while a slice is half applied: what is asked for meanwhile goes with that slice', async () => {
      const { live, applier, ownership, acquire, readings, entry, now } = await liveParts(db.client);
      const state = acquire();
      await db.client.config('RESETSTAT');
      await pauseWrites(800);
      await applier.apply({ shard: SHARD, entries: [entry('1-0', readings('X', 3))] }, state);
      // Pending behind the first commit, which Redis holds.
      await applier.apply({ shard: SHARD, entries: [entry('2-0', readings('BIG', 10))] }, state);
      // A slice of 1,200 readings yields half-way; a commit is asked for right then
      // (as the metrics' readiness does): BIG's state is ahead of the entries pending.
      let asked: Promise<void> | undefined;
      const askWhenHalfApplied = () => {
        const latest = live.nodes.get('BIG')?.windows.latest?.timestamp ?? 0;
        if (latest > now - 1_200_000 + 10_000 && asked === undefined) asked = ownership.allCommitted();
        else if (asked === undefined) setImmediate(askWhenHalfApplied);
      };
      const many = readings('BIG', 1_200);
      setImmediate(askWhenHalfApplied);
      const third = await applier.apply({ shard: SHARD, entries: [entry('3-0', many)] }, state);
      expect(asked).toBeDefined();
      await asked;
      await third.committed;
      // The pending slice went with the half-applied one once it was whole: two commits, not three.
      expect(await xacks()).toBe(2);
      expect(await persistedCounts(now)).toEqual({ X: '3', BIG: '1210' });
    });

    /** Two slices applied while Redis holds writes: the first one's commit waits, the second is pending behind it. */
    const applyTwoHeld = async () => {
      const parts = await liveParts(db.client);
      const state = parts.acquire();
      await pauseWrites(300);
      for (const [id, node, count] of [['1-0', 'A', 2] as const, ['2-0', 'B', 3] as const]) {
        await parts.applier.apply(
          { shard: SHARD, entries: [parts.entry(id, parts.readings(node, count))] },
          state,
        );
      }
      return { ...parts, state };
    };

    it('sends what is pending when every commit is waited for (a stop), not after its linger', async () => {
      const { ownership, now } = await applyTwoHeld();
      await ownership.allCommitted();
      expect(await persistedCounts(now)).toEqual({ A: '2', B: '3' });
    });

    it('commits nothing more of a shard once a commit failed: a later slice is refused, not committed without its predecessor', async () => {
      const { applier, ownership, acquire, readings, entry, now } = await liveParts(db.client);
      const state = acquire();
      await db.client.config('RESETSTAT');
      // The commit script's first read of its commit id meets a hash: an error reply (not Redis being away).
      await db.client.hset(SHARD.aggregateCommit, 'x', '1');
      const first = await applier.apply({ shard: SHARD, entries: [entry('1-0', readings('A', 3))] }, state);
      await expect(first.committed).rejects.toThrow(/WRONGTYPE/);
      // Redis is right again, but A's readings are in the state and their entry is not acknowledged:
      // a commit now would write them as if they were.
      await db.client.del(SHARD.aggregateCommit);
      const second = applier
        .apply({ shard: SHARD, entries: [entry('2-0', readings('B', 2))] }, state)
        .then((applied) => applied.committed);
      await expect(second).rejects.toThrow(/WRONGTYPE/);
      await expect(ownership.committed(state)).rejects.toThrow(/WRONGTYPE/);
      expect(await xacks()).toBe(0);
      expect(await persistedCounts(now)).toEqual({});
    });

    it('says when a lane chunk would fill the commit behind two on their way, counting the batch being applied', async () => {
      const { applier, ownership, acquire, readings, entry } = await liveParts(db.client);
      const state = acquire();
      await pauseWrites(600);
      // One commit on its way (Redis holds it): a chunk that fills the next never waits.
      await applier.apply({ shard: SHARD, entries: [entry('1-0', readings('A', 3))] }, state);
      expect(ownership.wouldWait(state, COMMIT_READINGS)).toBe(false);
      // Two on their way, then 5 readings pending behind them.
      await applier.apply({ shard: SHARD, entries: [entry('2-0', readings('B', 2))] }, state);
      ownership.sendPending();
      await applier.apply({ shard: SHARD, entries: [entry('3-0', readings('B', 5))] }, state);
      expect(ownership.wouldWait(state, COMMIT_READINGS - 5)).toBe(true);
      expect(ownership.wouldWait(state, COMMIT_READINGS - 6)).toBe(false);
      // A batch being applied counts until its slice is staged.
      const unstaged: number[] = [];
      const applied = await applier.apply(
        { shard: SHARD, entries: [entry('4-0', readings('C', 1_200))] },
        state,
        false,
        () => unstaged.push(applier.unstaged(state)),
      );
      expect(unstaged.length).toBeGreaterThan(0);
      expect(new Set(unstaged)).toEqual(new Set([1_200]));
      expect(applier.unstaged(state)).toBe(0);
      expect(ownership.wouldWait(state, COMMIT_READINGS - 1_205)).toBe(true);
      // Nothing on its way: a chunk never waits, whatever is pending.
      await applied.committed;
      await ownership.allCommitted();
      expect(ownership.wouldWait(state, COMMIT_READINGS)).toBe(false);
    });

    it('once committed() resolves, the committed position includes every slice it covered (a reconcile reads it next)', async () => {
      const { live, ownership, state } = await applyTwoHeld();
      expect(await ownership.committed(state)).toBe(true);
      expect(live.committed.get(state)).toBe('2-0');
    });
  });
});
