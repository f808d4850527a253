import { checkReading, seededRandom } from '@streamgauge/core';
import { describe, expect, it } from 'vitest';
import { demandAt, readingOf, simulatedNetwork } from '../src/index.ts';

const HOUR = 3_600_000;

describe('simulated network', () => {
  it('produces readings ingest accepts, for the reference nodes of one district', () => {
    const random = seededRandom(3);
    const nodes = simulatedNetwork(14, random);
    expect(nodes.slice(0, 3).map((n) => n.id)).toEqual(['215542', '281492', '287156']);
    expect(nodes[13]?.id).toBe('SIM0014');
    const now = Date.UTC(2026, 10, 25, 8);
    for (const node of nodes) {
      for (let i = 0; i < 50; i++) {
        const raw = readingOf(node, now - i * 60_000, 60_000, random);
        const checked = checkReading(raw, { nowMs: now, maxFutureMs: 0 });
        expect(checked.ok, JSON.stringify(raw)).toBe(true);
      }
    }
  });

  it('follows a diurnal demand curve: low at night, peaks morning and evening', () => {
    const day = Date.UTC(2026, 10, 25);
    expect(demandAt(day + 3 * HOUR)).toBeLessThan(0.35);
    expect(demandAt(day + 7.5 * HOUR)).toBeGreaterThan(0.8);
    expect(demandAt(day + 20 * HOUR)).toBeGreaterThan(0.65);
  });

  it('lets pressure fall as flow rises, and counts volume up', () => {
    const random = seededRandom(5);
    const [node] = simulatedNetwork(1, random);
    if (node === undefined) throw new Error('no node');
    const day = Date.UTC(2026, 10, 25);
    const night = readingOf(node, day + 3 * HOUR, 60_000, random);
    const peak = readingOf(node, day + 7.5 * HOUR, 60_000, random);
    expect(peak.flow_rate ?? 0).toBeGreaterThan(night.flow_rate ?? 0);
    expect(peak.pressure).toBeLessThan(night.pressure);
    expect(peak.volume ?? 0).toBeGreaterThan(night.volume ?? 0);
  });
});
