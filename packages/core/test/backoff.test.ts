import { describe, expect, it } from 'vitest';
import { backoffMs } from '../src/index.ts';

describe('backoffMs', () => {
  it('doubles from the base up to the ceiling, and stays finite however long the outage', () => {
    const waits = [0, 1, 2, 3, 4, 5].map((attempt) => backoffMs(attempt, { baseMs: 100, maxMs: 2_000 }));
    expect(waits).toEqual([100, 200, 400, 800, 1_600, 2_000]);
    expect(backoffMs(10_000, { baseMs: 50, maxMs: 1_000 })).toBe(1_000);
  });
});
