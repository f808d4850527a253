import { allShardKeys } from '@streamgauge/core';
import type { DeliveredBatch, DeliveredEntry } from '@streamgauge/redis';
import { describe, expect, it, vi } from 'vitest';
import { type NextBatch, SideReads } from '../src/sideReads.ts';

const SHARD = allShardKeys(1)[0] as ReturnType<typeof allShardKeys>[number];

const entry = (id: string, nodes: string[], fromLane = false): DeliveredEntry => ({
  id,
  deliveries: 1,
  source: 'test',
  readings: nodes.map((node_id) => ({ node_id, timestamp: 1, flow_rate: 1 })),
  ...(fromLane && { fromLane: true as const }),
});
const batch = (...entries: DeliveredEntry[]): DeliveredBatch => ({ shard: SHARD, entries });
const ids = (b: DeliveredBatch | undefined) => b?.entries.map((e) => e.id);

/** The shard's reads beside: each hands out the next of `batches` (an empty batch after a short wait once there are none). */
function reads(batches: DeliveredBatch[]) {
  const started: number[] = [];
  const read = async () => {
    started.push(performance.now());
    const next = batches.shift();
    if (next !== undefined) return next;
    await new Promise((r) => setTimeout(r, 5));
    return batch();
  };
  return { read, started };
}

describe('SideReads', () => {
  it('reads one batch at a time, the next once it was taken, and no sooner than everyMs after the last', async () => {
    const { read, started } = reads([batch(entry('1-0', ['L1'])), batch(entry('2-0', ['L2']))]);
    const side = new SideReads(read, { everyMs: 300 });
    await vi.waitFor(() => expect(ids(side.take())).toEqual(['1-0']), { interval: 5 });
    expect(started.length).toBe(1);
    await vi.waitFor(() => expect(ids(side.take())).toEqual(['2-0']), { timeout: 2_000, interval: 5 });
    // Timers may fire a millisecond or so early against performance.now().
    expect((started[1] as number) - (started[0] as number)).toBeGreaterThanOrEqual(280);
    expect(side.taken).toEqual(['1-0', '2-0']);
    side.close();
    await side.stop();
    const reads0 = started.length;
    await new Promise((r) => setTimeout(r, 80));
    expect(started.length).toBe(reads0);
  });

  it("takes what is older than the next read, then that read's live entries ahead of its chunk, then newer ones that name none of the rest", async () => {
    const gate = { open: false };
    const pending = [batch(entry('10-0', ['L1']))];
    const side = new SideReads(
      async () => {
        // The second read beside goes after the shard's next read.
        while (pending.length === 0 && !gate.open) await new Promise((r) => setTimeout(r, 2));
        return pending.shift() ?? batch(entry('30-0', ['L2']));
      },
      { everyMs: 0 },
    );
    await vi.waitFor(() => expect(side.take()).toBeDefined());
    const inFlight = side.nextRead();
    gate.open = true;
    await inFlight;
    // Possibly newer than the next read, which is not known yet: not taken.
    await vi.waitFor(async () => {
      await new Promise((r) => setTimeout(r, 5));
      expect(side.take()).toBeUndefined();
    });
    const next: NextBatch = {
      batch: batch(entry('20-0', ['L3']), entry('21-0', ['B1'], true), entry('22-0', ['B2'], true)),
    };
    side.resume(next);
    expect(ids(side.take())).toEqual(['20-0']);
    expect(ids(next.batch)).toEqual(['21-0', '22-0']);
    expect(ids(side.take())).toEqual(['30-0']);
    side.close();
    await side.stop();
  });

  it('leaves over a newer batch that names a node of the next one, and reads nothing after it', async () => {
    const { read, started } = reads([batch(entry('30-0', ['B1'])), batch(entry('31-0', ['L9']))]);
    const side = new SideReads(read, { everyMs: 0 });
    await side.nextRead();
    side.resume({ batch: batch(entry('21-0', ['B1'], true)) });
    await vi.waitFor(() => expect(started.length).toBe(1));
    await new Promise((r) => setTimeout(r, 10));
    expect(side.take()).toBeUndefined();
    await new Promise((r) => setTimeout(r, 20));
    expect(started.length).toBe(1);
    side.close();
    await side.stop();
    // Not older than the next batch: it goes behind it.
    expect(side.olderLeftOver()).toBeUndefined();
    expect(ids(side.leftOver())).toEqual(['30-0']);
  });

  it('puts a batch read before the next read, and not taken by the apply, ahead of the next batch', async () => {
    const side = new SideReads(async () => batch(entry('10-0', ['L1'])), { everyMs: 1_000 });
    const inFlight = side.nextRead();
    side.close();
    await inFlight;
    side.resume({ batch: batch(entry('21-0', ['L1'], true)) });
    expect(side.take()).toBeUndefined();
    expect(ids(side.olderLeftOver())).toEqual(['10-0']);
    await side.stop();
  });

  it('hands out what the reads before it left over first', async () => {
    const { read } = reads([batch(entry('40-0', ['L1']))]);
    const side = new SideReads(read, { before: Promise.resolve(batch(entry('30-0', ['B1']))), everyMs: 0 });
    await vi.waitFor(() => expect(ids(side.take())).toEqual(['30-0']));
    await vi.waitFor(() => expect(ids(side.take())).toEqual(['40-0']));
    side.close();
    await side.stop();
  });
});
