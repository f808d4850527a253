import { readModelKeys } from '@streamgauge/core';
import type { ShardCommit } from '@streamgauge/redis';
import { useRedis } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { ClockTick, SWEEP_CHUNK } from '../src/clockTick.ts';
import { liveParts, SHARD } from './support/liveParts.ts';

const db = useRedis({ flushEach: true });

describe('ClockTick', () => {
  it('sweeps the nodes a step at a time, a batch going between two steps', async () => {
    const { now, clock, live, sums, rounds, ownership, applier, acquire, entry, commitEntry } =
      await liveParts(db.client);
    const state = acquire();
    const nodes = 2 * SWEEP_CHUNK + 200;
    const ids = Array.from({ length: nodes }, (_, i) => `N${i}`);
    const first = entry(
      '1-0',
      ids.map((node_id, i) => ({ node_id, timestamp: now - 30_000, flow_rate: i })),
    );
    await (await applier.apply({ shard: SHARD, entries: [first] }, state)).committed;
    const windowEnd = (id: string) => db.client.hget(readModelKeys.nodeMetrics(id, '1h'), 'window_end');

    // The next minute: the 1-hour window has slid for every node.
    clock.advance(60_000);
    const tick = new ClockTick(live, ownership, rounds, sums);
    const step = async () => {
      const { ranges, written } = tick.tick();
      await written;
      return ranges;
    };
    expect(await step()).toBeUndefined();
    const swept = await windowEnd('N0');
    expect(swept).toBe(new Date(now + 60_000).toISOString());
    // Not yet reached by the sweep.
    expect(await windowEnd(`N${nodes - 1}`)).not.toBe(swept);

    // Between two steps a batch goes through: its node's `latest` at once.
    const late = `N${nodes - 1}`;
    await commitEntry(state, '2-0', [{ node_id: late, timestamp: now + 59_000, flow_rate: 7 }]);
    expect(await db.client.hget(readModelKeys.nodeLatest(late), 'flow_rate')).toBe('7');

    expect(await step()).toBeUndefined();
    expect(await step()).toEqual(expect.arrayContaining(['1h']));
    for (const id of [ids[0], ids[SWEEP_CHUNK], late] as string[]) expect(await windowEnd(id)).toBe(swept);
    // The node the batch reached counts both readings; the sweep did not undo it.
    const metrics = await db.client.hgetall(readModelKeys.nodeMetrics(late, '1h'));
    expect(metrics.reading_count).toBe('2');
  });

  it("commits a step's anomaly events with the slices pending before it, in one commit, not each apart", async () => {
    const { now, clock, live, sums, rounds, ownership, acquire, readings, applyEntry, commitEntry } =
      await liveParts(db.client);
    const state = acquire();
    const fleet = Array.from({ length: 10 }, (_, i) => `F${i}`);
    await commitEntry(
      state,
      '1-0',
      fleet.flatMap((id) => readings(id, 5)),
    );
    // Every commit the shard prepares from here on.
    const commits: ShardCommit[] = [];
    const prepare = state.store.prepare.bind(state.store);
    state.store.prepare = (commit) => {
      commits.push(commit);
      return prepare(commit);
    };
    // Two hours on, one node reads (its slice's commit lingers), then the
    // clock's sweep finds the fleet silent: offline on each of its nodes.
    clock.advance(2 * 3_600_000);
    const late = await applyEntry(state, '2-0', [
      { node_id: 'LATE', timestamp: now + 2 * 3_600_000 - 1_000, flow_rate: 3 },
    ]);
    const tick = new ClockTick(live, ownership, rounds, sums);
    let step = tick.tick();
    while (step.ranges === undefined) {
      await step.written;
      step = tick.tick();
    }
    await step.written;
    expect(await late.committed).toMatchObject({ entries: 1, applied: 1 });
    expect(commits).toHaveLength(1);
    const [commit] = commits as [ShardCommit];
    expect(commit.ackIds).toEqual(['2-0']);
    expect(commit.events?.map((e) => `${e.event} ${e.anomaly.type} ${e.anomaly.node_id}`).sort()).toEqual(
      fleet.map((id) => `open offline ${id}`),
    );
    // Their detectors' state went with the events: each has its anomaly open.
    expect([...(commit.detectors?.keys() ?? [])].sort()).toEqual(expect.arrayContaining(fleet));
    for (const id of fleet)
      expect(commit.detectors?.get(id)?.state.open.map((a) => a.type)).toEqual(['offline']);
  });

  it("returns from a step before Redis has its writes: the batches behind it wait for the step's work, not for Redis", async () => {
    const { now, clock, live, sums, rounds, ownership, acquire, commitEntry } = await liveParts(db.client);
    const state = acquire();
    const ids = Array.from({ length: SWEEP_CHUNK + 10 }, (_, i) => `N${i}`);
    await commitEntry(
      state,
      '1-0',
      ids.map((node_id) => ({ node_id, timestamp: now - 30_000, flow_rate: 1 })),
    );
    await rounds.flush();
    clock.advance(60_000);
    // Read on a connection of its own: on the writers' it would queue behind their paused writes.
    const reader = db.client.duplicate();
    const windowEnd = () => reader.hget(readModelKeys.nodeMetrics('N0', '1h'), 'window_end');
    const before = await windowEnd();
    const tick = new ClockTick(live, ownership, rounds, sums);
    // Redis takes no write for a while (as when it is busy with a long script).
    await db.client.client('PAUSE', 2_000, 'WRITE');
    const started = performance.now();
    const { ranges, written } = tick.tick();
    expect(ranges).toBeUndefined();
    let done = false;
    void written.then(() => {
      done = true;
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(done).toBe(false);
      expect(await windowEnd()).toBe(before);
      await written;
      // Written once Redis takes writes again, about when the pause ends.
      expect(performance.now() - started).toBeGreaterThan(1_000);
      expect(await windowEnd()).toBe(new Date(now + 60_000).toISOString());
      const last = tick.tick();
      await last.written;
      expect(last.ranges).toEqual(expect.arrayContaining(['1h']));
    } finally {
      reader.disconnect();
    }
  });
});
