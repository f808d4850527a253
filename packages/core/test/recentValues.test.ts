import { describe, expect, it } from 'vitest';
import { RecentValues } from '../src/anomaly/recentValues.ts';

describe('RecentValues', () => {
  it('keeps the last values with their times, oldest first, across growth and wrap-around', () => {
    const recent = new RecentValues(20);
    for (let i = 0; i < 50; i++) {
      if (recent.full) expect(recent.dropOldest()).toBe(i - 20);
      recent.push(i, 1000 + i);
    }
    expect(recent.values()).toEqual(Array.from({ length: 20 }, (_, i) => 30 + i));
    expect(recent.times()).toEqual(Array.from({ length: 20 }, (_, i) => 1030 + i));
    expect(recent.oldestTime).toBe(1030);
    expect(recent.newest).toBe(49);
    const sum = Array.from({ length: 20 }, (_, i) => 30 + i).reduce((a, b) => a + b);
    expect(recent.sums().sum).toBe(sum);
  });

  it('keeps the newest `limit` of a longer persisted window, and refuses a value beyond it', () => {
    const recent = new RecentValues(3, [1, 2, 3, 4, 5], [10, 20, 30, 40, 50]);
    expect(recent.values()).toEqual([3, 4, 5]);
    expect(recent.times()).toEqual([30, 40, 50]);
    expect(() => recent.push(6, 60)).toThrow(RangeError);
  });

  it('is empty before its first value', () => {
    const recent = new RecentValues(48);
    expect(recent.length).toBe(0);
    expect(recent.newest).toBeUndefined();
    expect(recent.oldestTime).toBeNaN();
  });
});
