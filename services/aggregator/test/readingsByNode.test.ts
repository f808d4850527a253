import type { Reading } from '@streamgauge/core';
import { describe, expect, it } from 'vitest';
import { ReadingsByNode } from '../src/readingsByNode.ts';

const at = (node_id: string, timestamp: number): Reading => ({ node_id, timestamp, flow_rate: timestamp });

/** Each group as [node, [timestamp, entry]...], in the order the groups give them. */
function groups(byNode: ReadingsByNode<string>): [string, [number, number][]][] {
  const out: [string, [number, number][]][] = [];
  for (let g = 0; g < byNode.size; g++) {
    const readings: [number, number][] = [];
    for (let i = byNode.first(g); i >= 0; i = byNode.next(i)) {
      readings.push([byNode.reading(i).timestamp, byNode.entry(i)]);
    }
    out.push([byNode.node(g), readings]);
  }
  return out;
}

describe('ReadingsByNode', () => {
  it("keeps each node's readings in the order they came, nodes in order of first appearance", () => {
    const byNode = new ReadingsByNode<string>();
    const entries = [
      [at('B', 3), at('A', 1), at('B', 1)],
      [at('C', 5), at('A', 0), at('B', 2)],
    ];
    entries.forEach((readings, e) => {
      for (const r of readings) byNode.add(r.node_id, r, e);
    });
    expect(groups(byNode)).toEqual([
      [
        'B',
        [
          [3, 0],
          [1, 0],
          [2, 1],
        ],
      ],
      [
        'A',
        [
          [1, 0],
          [0, 1],
        ],
      ],
      ['C', [[5, 1]]],
    ]);
  });

  it('starts empty again after clear, and holds more readings than its first allocation', () => {
    const byNode = new ReadingsByNode<string>();
    byNode.add('X', at('X', 1), 0);
    byNode.clear();
    expect(byNode.size).toBe(0);
    for (let i = 0; i < 5_000; i++) byNode.add(i % 2 === 0 ? 'E' : 'O', at(i % 2 === 0 ? 'E' : 'O', i), 0);
    const [even, odd] = groups(byNode);
    expect(even?.[1].map(([t]) => t)).toEqual(Array.from({ length: 2_500 }, (_, i) => 2 * i));
    expect(odd?.[1].map(([t]) => t)).toEqual(Array.from({ length: 2_500 }, (_, i) => 2 * i + 1));
  });
});
