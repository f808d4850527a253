import { describe, expect, it } from 'vitest';
import {
  recentCapacity,
  recentCapacityFor,
  recentDoubles,
  recentDropOldest,
  recentGrown,
  recentInit,
  recentLength,
  recentMove,
  recentNewest,
  recentOldestTime,
  recentPush,
  recentSums,
  recentTimes,
  recentValues,
} from '../src/anomaly/recentValues.ts';

/** A window of `capacity` slots at offset 5 of an array that holds more, as the detector's numbers do. */
function windowOf(capacity: number): Float64Array {
  const n = new Float64Array(5 + recentDoubles(capacity) + 3).fill(-1);
  recentInit(n, 5, capacity);
  return n;
}

describe('the σ window (recentValues)', () => {
  it('keeps the last values with their times, oldest first, across growth and wrap-around', () => {
    const limit = 20;
    let n = windowOf(recentCapacityFor(0, limit));
    for (let i = 0; i < 50; i++) {
      if (recentLength(n, 5) === limit) expect(recentDropOldest(n, 5)).toBe(i - limit);
      if (recentLength(n, 5) === recentCapacity(n, 5)) {
        const grown = windowOf(recentGrown(recentCapacity(n, 5), limit));
        recentMove(n, 5, grown, 5, recentCapacity(grown, 5));
        n = grown;
      }
      recentPush(n, 5, i, 1000 + i);
    }
    expect(recentCapacity(n, 5)).toBe(limit);
    expect(recentValues(n, 5)).toEqual(Array.from({ length: 20 }, (_, i) => 30 + i));
    expect(recentTimes(n, 5)).toEqual(Array.from({ length: 20 }, (_, i) => 1030 + i));
    expect(recentOldestTime(n, 5)).toBe(1030);
    expect(recentNewest(n, 5)).toBe(49);
    const sum = Array.from({ length: 20 }, (_, i) => 30 + i).reduce((a, b) => a + b);
    expect(recentSums(n, 5).sum).toBe(sum);
    // Nothing outside the window was written.
    expect([...n.subarray(0, 5), ...n.subarray(5 + recentDoubles(limit))]).toEqual(Array(8).fill(-1));
  });

  it('keeps the newest `capacity` of a longer persisted window, and refuses a value beyond it', () => {
    const n = new Float64Array(recentDoubles(3));
    recentInit(n, 0, 3, [1, 2, 3, 4, 5], [10, 20, 30, 40, 50]);
    expect(recentValues(n, 0)).toEqual([3, 4, 5]);
    expect(recentTimes(n, 0)).toEqual([30, 40, 50]);
    expect(() => recentPush(n, 0, 6, 60)).toThrow(RangeError);
  });

  it('is empty before its first value', () => {
    const n = windowOf(8);
    expect(recentLength(n, 5)).toBe(0);
    expect(recentNewest(n, 5)).toBeNaN();
    expect(recentOldestTime(n, 5)).toBeNaN();
  });

  it('starts as small as its values and grows by doubling up to its limit', () => {
    expect(recentCapacityFor(0, 48)).toBe(8);
    expect(recentCapacityFor(10, 48)).toBe(16);
    expect(recentCapacityFor(48, 48)).toBe(48);
    expect(recentGrown(16, 48)).toBe(32);
    expect(recentGrown(32, 48)).toBe(48);
    expect(recentCapacityFor(0, 2)).toBe(2);
  });
});
