import {
  EMPTY_SUMS,
  type NodeContribution,
  RANGES,
  type Range,
  type SystemSums,
  seededRandom,
} from '@streamgauge/core';
import { describe, expect, it } from 'vitest';
import { NodeContributions } from '../src/nodeContributions.ts';

type Sums = { -readonly [K in keyof SystemSums]: number };

/** The sums as the system metrics define them, computed apart from the table, per shard. */
function expectedSums(
  held: ReadonlyMap<string, { shard: number; byRange: Map<Range, NodeContribution> }>,
  range: Range,
  shards: readonly number[],
): Map<number, Sums> {
  const sums = new Map<number, Sums>(shards.map((shard) => [shard, { ...EMPTY_SUMS }]));
  for (const { shard, byRange } of held.values()) {
    const c = byRange.get(range);
    const into = sums.get(shard);
    if (c === undefined || into === undefined) continue;
    into.total += 1;
    if (c.uptime > 0.1) into.active += 1;
    if (c.avgFlow !== undefined) into.flow += c.avgFlow;
    if (c.avgPressure !== undefined) {
      into.pressureSum += c.avgPressure;
      into.pressureNodes += 1;
    }
  }
  return sums;
}

describe('NodeContributions', () => {
  it('sums what each node last added per range and shard, through replacements and forgotten nodes', () => {
    const table = new NodeContributions();
    const held = new Map<string, { shard: number; byRange: Map<Range, NodeContribution> }>();
    const next = seededRandom(7);
    // Values in eighths: every sum is exact whatever the order nodes are added in.
    const eighths = () => Math.floor(next() * 800) / 8;
    for (let step = 0; step < 20_000; step++) {
      const id = `n${Math.floor(next() * 400)}`;
      if (next() < 0.1) {
        table.delete(id);
        held.delete(id);
        continue;
      }
      const known = held.get(id);
      const shard = known?.shard ?? Math.floor(next() * 4);
      const range = RANGES[Math.floor(next() * RANGES.length)] as Range;
      const c: NodeContribution = {
        avgFlow: next() < 0.2 ? undefined : eighths(),
        avgPressure: next() < 0.3 ? undefined : eighths(),
        uptime: Math.floor(next() * 9) / 8,
      };
      table.set(id, shard, range, c);
      const entry = known ?? { shard, byRange: new Map() };
      entry.byRange.set(range, c);
      held.set(id, entry);
      if (step % 2_000 === 1_999) {
        for (const r of RANGES) {
          // Shard 3 is not asked for: its nodes are left out.
          const sums = new Map<number, Sums>([0, 1, 2].map((s) => [s, { ...EMPTY_SUMS }]));
          table.addTo(r, sums);
          expect(sums).toEqual(expectedSums(held, r, [0, 1, 2]));
        }
      }
    }
    expect(table.size).toBe(held.size);
    for (const [id, { byRange }] of held) {
      for (const range of RANGES) expect(table.get(id, range)).toEqual(byRange.get(range));
    }
  });

  it('counts a mean that is NaN (readings whose sum overflows) as NaN, as a record did, not as no mean', () => {
    const table = new NodeContributions();
    table.set('a', 0, '1h', { avgFlow: 2, avgPressure: 3, uptime: 1 });
    table.set('x', 0, '1h', { avgFlow: Number.NaN, avgPressure: Number.NaN, uptime: 1 });
    expect(table.get('x', '1h')).toEqual({ avgFlow: Number.NaN, avgPressure: Number.NaN, uptime: 1 });
    const sums = new Map<number, Sums>([[0, { ...EMPTY_SUMS }]]);
    table.addTo('1h', sums);
    expect(sums.get(0)).toEqual({
      total: 2,
      active: 2,
      flow: Number.NaN,
      pressureSum: Number.NaN,
      pressureNodes: 2,
    });
  });

  it('forgets a node entirely, and a node set again after that starts empty in every range', () => {
    const table = new NodeContributions();
    table.set('a', 0, '1h', { avgFlow: 2, avgPressure: 3, uptime: 1 });
    table.set('b', 0, '24h', { avgFlow: 5, avgPressure: undefined, uptime: 0 });
    table.set('a', 0, '7d', { avgFlow: 1, avgPressure: undefined, uptime: 0.5 });
    table.delete('a');
    expect(table.get('a', '1h')).toBeUndefined();
    expect(table.get('b', '24h')).toEqual({ avgFlow: 5, avgPressure: undefined, uptime: 0 });
    table.set('a', 1, '1h', { avgFlow: 4, avgPressure: undefined, uptime: 0.05 });
    expect(table.get('a', '7d')).toBeUndefined();
    const sums = new Map<number, Sums>([
      [0, { ...EMPTY_SUMS }],
      [1, { ...EMPTY_SUMS }],
    ]);
    table.addTo('1h', sums);
    expect(sums.get(0)).toEqual(EMPTY_SUMS);
    expect(sums.get(1)).toEqual({ total: 1, active: 0, flow: 4, pressureSum: 0, pressureNodes: 0 });
  });
});
