import { describe, expect, it } from 'vitest';
import { AnswerCache } from '../src/answers.ts';
import { parseLatest, parseMetadata, parseMetrics, sameFields } from '../src/model.ts';

describe('sameFields', () => {
  it('is true only for the same fields with the same values', () => {
    const latest = { timestamp: '2026-12-03T10:00:00.000Z', flow_rate: '3.2', pressure: '3.9' };
    expect(sameFields(parseLatest(latest), parseLatest({ ...latest }))).toBe(true);
    expect(sameFields(parseLatest(latest), parseLatest({ ...latest, flow_rate: '3.3' }))).toBe(false);
    expect(
      sameFields(parseLatest(latest), parseLatest({ ...latest, timestamp: '2026-12-03T10:00:01.000Z' })),
    ).toBe(false);
    expect(sameFields(null, parseLatest(latest))).toBe(false);
    expect(sameFields(parseLatest(latest), null)).toBe(false);
    expect(sameFields(undefined, null)).toBe(false);
    expect(sameFields(null, null)).toBe(true);
    expect(sameFields(parseMetadata('N1', {}), parseMetadata('N1', {}))).toBe(true);
    expect(sameFields(parseMetadata('N1', {}), parseMetadata('N1', { district_id: 'EAST' }))).toBe(false);
    // A field more or less is a change, whatever the values of the others.
    expect(sameFields(parseMetrics({ avg_flow: '1' }), parseMetrics({ avg_flow: '1', max_flow: '2' }))).toBe(
      false,
    );
    expect(sameFields(parseMetrics({ avg_flow: '1', max_flow: '2' }), parseMetrics({ avg_flow: '1' }))).toBe(
      false,
    );
    expect(sameFields(parseMetrics({ avg_flow: 'x' }), parseMetrics({ avg_flow: 'y' }))).toBe(true); // both NaN
  });
});

describe('AnswerCache', () => {
  it('serializes once per key and generation, and tags what it keeps', async () => {
    const cache = new AnswerCache();
    let computed = 0;
    const compute = () => ({ value: { n: ++computed }, keep: true });
    const first = await cache.answer('a', '1.100', compute);
    expect(JSON.parse(first.body.toString())).toEqual({ n: 1 });
    expect(first.etag).toMatch(/^W\/"[0-9a-z]+:1\.100"$/);
    expect(await cache.answer('a', '1.100', compute)).toBe(first);
    expect(JSON.parse((await cache.answer('b', '1.100', compute)).body.toString())).toEqual({ n: 2 });
    const next = await cache.answer('a', '2.100', compute);
    expect(JSON.parse(next.body.toString())).toEqual({ n: 3 });
    expect(next.etag).not.toBe(first.etag);
  });

  it('keeps neither an answer marked not to keep nor one whose generation moved on while it was computed', async () => {
    const cache = new AnswerCache();
    const partial = await cache.answer('a', '1.1', () => ({ value: 1, keep: false }));
    expect(partial.etag).toBe('');
    expect((await cache.answer('a', '1.1', () => ({ value: 2, keep: true }))).body.toString()).toBe('2');
    let release: () => void = () => {};
    const slow = cache.answer('b', '1.1', async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return { value: 'old', keep: true };
    });
    await cache.answer('c', '2.1', () => ({ value: 'new', keep: true }));
    release();
    expect((await slow).etag).toBe('');
    expect((await cache.answer('b', '2.1', () => ({ value: 'fresh', keep: true }))).body.toString()).toBe(
      '"fresh"',
    );
  });
});
