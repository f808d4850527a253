import { describe, expect, it } from 'vitest';
import { ReadAheadPace } from '../src/readAheadPace.ts';

describe('ReadAheadPace', () => {
  it('reads at once until it has seen a read and an apply of a lane chunk', () => {
    const pace = new ReadAheadPace();
    expect(pace.due(50_000, 0)).toBe(true);
    pace.read(300);
    expect(pace.due(50_000, 0)).toBe(true);
    const started = new ReadAheadPace();
    started.applied(50_000, 1_000);
    expect(started.due(50_000, 0)).toBe(true);
  });

  it('sends the read so that its reply comes before the chunk is applied, with room to spare', () => {
    const pace = new ReadAheadPace();
    pace.read(200);
    // 20 µs a reading: 50,000 readings take 1 s to apply.
    pace.applied(50_000, 1_000);
    // A read of 200 ms, sent 1.5× as early as it needs: 300 ms before the end.
    expect(pace.due(50_000, 699)).toBe(false);
    expect(pace.due(50_000, 700)).toBe(true);
    // A smaller batch: its read is due sooner.
    expect(pace.due(25_000, 199)).toBe(false);
    expect(pace.due(25_000, 200)).toBe(true);
    // A batch applied in less time than a read takes: at once.
    expect(pace.due(10_000, 0)).toBe(true);
  });

  it('follows the shard as its reads and applies slow down or speed up', () => {
    const pace = new ReadAheadPace();
    pace.read(100);
    pace.applied(50_000, 1_000);
    expect(pace.due(50_000, 849)).toBe(false);
    // Reads get slower (Redis busier): the read goes earlier, more so with each.
    pace.read(500);
    const after1 = firstDue(pace, 50_000);
    pace.read(500);
    const after2 = firstDue(pace, 50_000);
    expect(after1).toBeLessThan(850);
    expect(after2).toBeLessThan(after1);
    // Applies get faster: the read goes earlier again.
    pace.applied(50_000, 500);
    expect(firstDue(pace, 50_000)).toBeLessThan(after2);
    // An empty batch teaches nothing (and divides by nothing).
    const before = firstDue(pace, 50_000);
    pace.applied(0, 100);
    expect(firstDue(pace, 50_000)).toBe(before);
  });
});

/** The first whole millisecond into the apply at which the read is due. */
function firstDue(pace: ReadAheadPace, readings: number): number {
  let ms = 0;
  while (!pace.due(readings, ms)) ms++;
  return ms;
}
