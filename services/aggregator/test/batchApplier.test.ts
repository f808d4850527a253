import { readModelKeys } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { describe, expect, it, vi } from 'vitest';
import { NODE_CHUNK } from '../src/liveState.ts';
import { liveParts, SHARD } from './support/liveParts.ts';

const db = useRedis({ flushEach: true });

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
    // A quiet stream: everything owed, a step of NODE_CHUNK nodes at a time (batches may go in between).
    const quiet = await applier.apply(empty, state, true);
    expect(quiet.owed).toBe(true);
    expect(await written()).toBeLessThanOrEqual(NODE_CHUNK + 200);
    while (await rounds.step());
    await vi.waitFor(async () => expect(await written()).toBe(ids.length), { timeout: 5_000 });
  });
});
