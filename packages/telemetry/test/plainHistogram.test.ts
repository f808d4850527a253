import { seededRandom } from '@streamgauge/core';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PlainHistogram } from '../src/plainHistogram.ts';

const BUCKETS = [0.05, 0.1, 0.25, 1, 2.5, 60, 3600, 86_400];

/** The same observations into prom-client's Histogram and a PlainHistogram, each in a registry of its own. */
function both(values: readonly number[]) {
  const theirs = new Registry();
  const ours = new Registry();
  const options = { name: 'age_seconds', help: 'How old.', buckets: BUCKETS };
  const histogram = new Histogram({ ...options, registers: [theirs] });
  const plain = new PlainHistogram({ ...options, registers: [ours] });
  for (const value of values) {
    histogram.observe(value);
    plain.observe(value);
  }
  return { theirs, ours, histogram, plain };
}

describe('PlainHistogram', () => {
  it("exports what prom-client's Histogram exports for the same observations, as text and merged across threads", async () => {
    const random = seededRandom(3);
    // On the bounds, between them, below the first and above the last, 0.
    const values = [0, 0.05, 0.1, 1, 86_400, 86_400.5, 1e9];
    for (let i = 0; i < 5000; i++) values.push(random() ** 4 * 200_000);
    const { theirs, ours } = both(values);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // `streamgauge start` merges its threads' series: two registries' worth, summed.
    const second = both(values.slice(0, 100));
    const merged = (registries: Registry[]) =>
      Promise.all(registries.map((r) => r.getMetricsAsJSON())).then((json) =>
        AggregatorRegistry.aggregate(json).metrics(),
      );
    expect(await merged([ours, second.ours])).toBe(await merged([theirs, second.theirs]));
  });

  it('starts from zero again when reset, and refuses a value that is not a number', async () => {
    const { theirs, ours, histogram, plain } = both([1, 2, 3]);
    histogram.reset();
    plain.reset();
    expect(await ours.metrics()).toBe(await theirs.metrics());
    histogram.observe(7);
    plain.observe(7);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('age_seconds_count 1\n');
    expect(() => plain.observe(Number.NaN)).toThrow(/not a valid number/);
    expect(() => plain.observe(Number.POSITIVE_INFINITY)).toThrow(/not a valid number/);
  });
});
