import { describe, expect, it } from 'vitest';
import { ScrapeSample } from '../src/index.ts';

describe('ScrapeSample', () => {
  it('reads once per maxAge, however many gauges ask', async () => {
    let reads = 0;
    const sample = new ScrapeSample(async () => ++reads, { maxAgeMs: 60_000 });
    expect(await Promise.all([sample.get(), sample.get(), sample.get()])).toEqual([1, 1, 1]);
    expect(await sample.get()).toBe(1);
    expect(reads).toBe(1);
  });

  it('reads again once the value is older than maxAge', async () => {
    let reads = 0;
    const sample = new ScrapeSample(async () => ++reads, { maxAgeMs: 0 });
    expect(await sample.get()).toBe(1);
    expect(await sample.get()).toBe(2);
  });

  it('gives up after the timeout, and does not pile another read onto a slow one', async () => {
    let reads = 0;
    let finish: (value: number) => void = () => {};
    const failures: unknown[] = [];
    const sample = new ScrapeSample(
      () => {
        reads++;
        return new Promise<number>((resolve) => {
          finish = resolve;
        });
      },
      { maxAgeMs: 0, timeoutMs: 20, onFailure: (error) => failures.push(error) },
    );
    const started = performance.now();
    expect(await sample.get()).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await sample.get()).toBeUndefined();
    expect(reads).toBe(1);
    expect(failures.map((e) => (e as Error).message)).toEqual([
      'no answer within 20 ms',
      'no answer within 20 ms',
    ]);
    finish(7);
    await new Promise((r) => setTimeout(r, 0));
    // The slow read landed: a scrape now starts the next one.
    const next = sample.get();
    finish(8);
    expect(await next).toBe(8);
    expect(reads).toBe(2);
  });

  it('reports a failed read and tries again at the next scrape', async () => {
    let attempt = 0;
    const failures: unknown[] = [];
    const sample = new ScrapeSample(
      async () => {
        if (++attempt === 1) throw new Error('connection refused');
        return 'ok';
      },
      { maxAgeMs: 60_000, onFailure: (error) => failures.push(error) },
    );
    expect(await sample.get()).toBeUndefined();
    expect(await sample.get()).toBe('ok');
    expect((failures[0] as Error).message).toBe('connection refused');
  });
});
