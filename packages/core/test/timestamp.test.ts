import { describe, expect, it } from 'vitest';
import { isoTime, parseTimestamp } from '../src/index.ts';

const ok = (value: unknown) => {
  const result = parseTimestamp(value);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(value)} to parse: ${result.error}`);
  return result.ms;
};
const error = (value: unknown) => {
  const result = parseTimestamp(value);
  if (result.ok) throw new Error(`expected ${JSON.stringify(value)} to be rejected, got ${result.ms}`);
  return result.error;
};

describe('parseTimestamp', () => {
  it('reads ISO-8601 with Z, offsets and fractions to the millisecond', () => {
    expect(ok('2024-05-01T12:00:00Z')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(ok('2024-05-01T14:00:00+02:00')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(ok('2024-05-01T07:30:00-0430')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(ok('2024-05-01 12:00:00.123Z')).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 123));
    expect(ok('2024-05-01T12:00:00.1Z')).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 100));
    // Sub-millisecond digits are truncated, not rounded.
    expect(ok('2024-05-01T12:00:00.123999Z')).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 123));
    expect(ok('2024-02-29T00:00Z')).toBe(Date.UTC(2024, 1, 29));
  });

  it('takes epoch milliseconds as they are', () => {
    expect(ok(1_714_564_800_000)).toBe(1_714_564_800_000);
  });

  it('rejects epoch seconds and says so', () => {
    expect(error(1_714_564_800)).toContain('send 1714564800000');
  });

  it('rejects times without a zone, impossible dates and other types', () => {
    expect(error('2024-05-01T12:00:00')).toContain('with a zone');
    expect(error('2023-02-29T00:00:00Z')).toContain('not a calendar date');
    expect(error('2024-04-31T00:00:00Z')).toContain('not a calendar date');
    expect(error('2024-05-01T24:00:00Z')).toContain('not a valid time of day');
    expect(error('2024-05-01T12:00:00+25:00')).toContain('zone offset');
    expect(error('yesterday')).toContain('not an ISO-8601');
    expect(error('0073-06-01T00:00:00Z')).toContain('before 1973');
    expect(error('1972-12-31T23:59:59Z')).toContain('before 1973');
    expect(error(1.5e12 + 0.5)).toContain('whole number');
    expect(error(Number.NaN)).toContain('NaN');
    expect(error(Number.POSITIVE_INFINITY)).toContain('Infinity');
    expect(error(true)).toContain('got boolean');
    expect(error(undefined)).toBe('is required');
    expect(error(null)).toBe('is required');
  });
});

describe('isoTime', () => {
  it('writes what toISOString writes, hour after hour and at every edge', () => {
    const edges = [
      0,
      1,
      3_599_999,
      3_600_000,
      Date.UTC(2026, 11, 5, 12, 59, 59, 999),
      Date.UTC(2026, 11, 5, 13),
      Date.UTC(2024, 1, 29, 23, 59, 59, 999),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      // toISOString's own forms: before 1970, past year 9999, between milliseconds.
      -1,
      Date.UTC(1969, 6, 20, 20, 17, 40),
      Date.UTC(10000, 0, 1),
      1.5,
      Date.UTC(2026, 11, 5) + 0.25,
    ];
    let seed = 7;
    const random = () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    const base = Date.UTC(2026, 11, 5, 12);
    // Times a few hours around one instant (the cached hour reused and replaced), and anywhere.
    const near = Array.from({ length: 20_000 }, () => base + Math.floor(random() * 4 * 3_600_000));
    const anywhere = Array.from({ length: 20_000 }, () => Math.floor(random() * Date.UTC(9999, 11, 31)));
    for (const ms of [...edges, ...near, ...anywhere, ...edges]) {
      expect(isoTime(ms), String(ms)).toBe(new Date(ms).toISOString());
    }
  });
});
