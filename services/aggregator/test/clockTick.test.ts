import { readModelKeys } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { ClockTick, SWEEP_CHUNK } from '../src/clockTick.ts';
import { liveParts, SHARD } from './support/liveParts.ts';

const db = useRedis({ flushEach: true });

describe('ClockTick', () => {
  it('sweeps the nodes a step at a time, a batch going between two steps', async () => {
    const { now, clock, live, sums, rounds, ownership, applier, acquire, entry } = await liveParts(db.client);
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
    expect(await tick.tick()).toBeUndefined();
    const swept = await windowEnd('N0');
    expect(swept).toBe(new Date(now + 60_000).toISOString());
    // Not yet reached by the sweep.
    expect(await windowEnd(`N${nodes - 1}`)).not.toBe(swept);

    // Between two steps a batch goes through: its node's `latest` at once.
    const late = `N${nodes - 1}`;
    await (
      await applier.apply(
        { shard: SHARD, entries: [entry('2-0', [{ node_id: late, timestamp: now + 59_000, flow_rate: 7 }])] },
        state,
      )
    ).committed;
    expect(await db.client.hget(readModelKeys.nodeLatest(late), 'flow_rate')).toBe('7');

    expect(await tick.tick()).toBeUndefined();
    expect(await tick.tick()).toEqual(expect.arrayContaining(['1h']));
    for (const id of [ids[0], ids[SWEEP_CHUNK], late] as string[]) expect(await windowEnd(id)).toBe(swept);
    // The node the batch reached counts both readings; the sweep did not undo it.
    const metrics = await db.client.hgetall(readModelKeys.nodeMetrics(late, '1h'));
    expect(metrics.reading_count).toBe('2');
  });
});
