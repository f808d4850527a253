import { describe, expect, it } from 'vitest';
import { ReadAheadPace } from '../src/readAheadPace.ts';

describe('ReadAheadPace', () => {
  it('reads at once until it has seen a read that brought a lane chunk', () => {
    const pace = new ReadAheadPace();
    expect(pace.during()(50_000, 0)).toBe(true);
    pace.read(200);
    expect(pace.during()(50_000, 0)).toBe(false);
  });

  it("sends the read so that its reply comes before the batch is applied, with room to spare, judged by the batch's own pace", () => {
    const pace = new ReadAheadPace();
    pace.read(200);
    const due = pace.during();
    // The batch waited 5 s for room before its first report: not its pace.
    expect(due(50_000, 5_000)).toBe(false);
    // Then 20 µs a reading: 10,000 readings in 200 ms.
    expect(due(40_000, 5_200)).toBe(false);
    // 300 ms left (1.5× the read's 200 ms) once 15,000 readings are left.
    expect(due(15_001, 5_700)).toBe(false);
    expect(due(15_000, 5_700)).toBe(true);
  });

  it('follows the batch when it slows down', () => {
    const pace = new ReadAheadPace();
    pace.read(200);
    const due = pace.during();
    due(50_000, 0);
    expect(due(40_000, 200)).toBe(false);
    // The next 10,000 took 800 ms (50 µs a reading on the whole): 15,000 left take 750 ms.
    expect(due(15_000, 1_250)).toBe(false);
    // 6,000 left at that pace: 300 ms.
    expect(due(6_000, 2_200)).toBe(true);
  });

  it('judges nothing before a thousand readings of the batch are applied', () => {
    const pace = new ReadAheadPace();
    pace.read(10_000);
    const due = pace.during();
    due(1_500, 0);
    expect(due(600, 1)).toBe(false);
    expect(due(500, 2)).toBe(true);
  });

  it('sends reads earlier as they get slower', () => {
    const left = (pace: ReadAheadPace) => {
      const due = pace.during();
      due(50_000, 0);
      // 10 µs a reading throughout: the readings left when the read is due.
      let n = 49_000;
      while (!due(n, (50_000 - n) / 100)) n -= 100;
      return n;
    };
    const pace = new ReadAheadPace();
    pace.read(100);
    const fast = left(pace);
    pace.read(500);
    const slower = left(pace);
    pace.read(500);
    expect(fast).toBe(15_000);
    expect(slower).toBeGreaterThan(fast);
    expect(left(pace)).toBeGreaterThan(slower);
  });
});
