import {
  latestHash,
  metadataHash,
  metricsHash,
  NodeWindows,
  RANGES,
  type Reading,
  seededRandom,
  timeseriesJson,
} from '@streamgauge/core';
import { describe, expect, it } from 'vitest';
import {
  compareFields,
  inWindow,
  oracleLatest,
  oracleMetadata,
  oracleMetrics,
  oracleSeries,
  oracleWindow,
} from '../src/index.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const AHEAD = 6 * 60_000;

function randomReading(rand: () => number, now: number, id: string): Reading {
  // Mostly recent, some late (up to 31 days: a few beyond the horizon), a few ahead.
  const r = rand();
  const age = r < 0.5 ? rand() * 2 * HOUR : r < 0.9 ? rand() * 31 * DAY : -rand() * 5 * 60_000;
  const reading: Reading = { node_id: id, timestamp: Math.floor(now - age) };
  if (rand() < 0.8) reading.flow_rate = rand() < 0.2 ? 0 : Math.round(rand() * 5000) / 100;
  if (rand() < 0.8) reading.pressure = 2 + rand() * 3;
  if (rand() < 0.4) reading.temperature = 10 + rand() * 10;
  if (rand() < 0.3) reading.volume = 1000 + rand() * 100;
  if (reading.flow_rate === undefined && reading.pressure === undefined) reading.pressure = 1e6 * rand();
  if (rand() < 0.1) reading.node_name = `name-${Math.floor(rand() * 3)}`;
  if (rand() < 0.1) reading.district_id = 'D1';
  return reading;
}

/** Applies readings at increasing clock times, as the aggregator does; returns those the live windows took. */
function feed(windows: NodeWindows, readings: Reading[], start: number, step: number): Reading[] {
  const taken: Reading[] = [];
  const seen = new Set<number>();
  let now = start;
  for (const reading of readings) {
    now += step;
    if (seen.has(reading.timestamp)) continue; // identity: ingest deduplicates
    seen.add(reading.timestamp);
    // Independently of the code under test: the 30-day horizon and the ahead limit.
    // The 30d window's start: its panes are days (PANE_MS).
    const horizon = Math.floor(now / DAY) * DAY - 30 * DAY;
    const expected =
      reading.timestamp < horizon ? 'too_late' : reading.timestamp > now + AHEAD ? 'too_early' : 'applied';
    expect(windows.add(reading, now)).toBe(expected);
    if (expected === 'applied') taken.push(reading);
  }
  return taken;
}

function check(windows: NodeWindows, taken: Reading[], at: number): string[] {
  const problems: string[] = [];
  for (const range of RANGES) {
    const summary = windows.evaluate(range, at);
    const hash = metricsHash(summary, at);
    const { start, end } = oracleWindow(range, at);
    expect(hash.window_start).toBe(new Date(start).toISOString());
    // The window covers up to T, or further when its last pane holds a reading
    // stamped slightly ahead; the oracle then covers exactly as far.
    const coveredEnd = Date.parse(hash.window_end as string);
    expect(coveredEnd).toBeGreaterThanOrEqual(end);
    problems.push(...compareFields(range, hash, { ...oracleMetrics(inWindow(taken, start, coveredEnd)) }));
  }
  return problems;
}

describe('NodeWindows against the oracle', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`equals the straightforward computation for every range (seed ${seed})`, () => {
      const rand = seededRandom(seed);
      const start = Date.UTC(2026, 10, 1) + Math.floor(rand() * DAY);
      const windows = new NodeWindows('N', AHEAD);
      const readings: Reading[] = [];
      for (let i = 0; i < 3000; i++) readings.push(randomReading(rand, start + i * 20_000, 'N'));
      const taken = feed(windows, readings, start, 20_000);
      const at = start + 3000 * 20_000;
      expect(check(windows, taken, at)).toEqual([]);

      // Sliding with no new reading: every window follows the clock.
      for (const later of [at + 61_000, at + HOUR + 1, at + 25 * HOUR, at + 8 * DAY]) {
        expect(check(windows, taken, later)).toEqual([]);
      }
      // An hour after the last reading (and past the ones stamped ahead), the 1h window is empty.
      expect(windows.evaluate('1h', at + HOUR + 10 * 60_000).pane[0]).toBe(0);
    });
  }

  it('takes late readings into closed panes and re-evaluates exactly', () => {
    const now = Date.UTC(2026, 10, 25, 12, 30);
    const windows = new NodeWindows('N', AHEAD);
    const taken = feed(windows, [{ node_id: 'N', timestamp: now - 10 * 60_000, flow_rate: 5 }], now, 0);
    windows.evaluate('1h', now);
    windows.evaluate('30d', now);
    taken.push(...feed(windows, [{ node_id: 'N', timestamp: now - 50 * 60_000, flow_rate: 7 }], now, 0));
    taken.push(...feed(windows, [{ node_id: 'N', timestamp: now - 20 * DAY, flow_rate: 1e-3 }], now, 0));
    expect(check(windows, taken, now)).toEqual([]);
    expect(metricsHash(windows.evaluate('30d', now), now).reading_count).toBe('3');
  });

  it('keeps latest values and metadata from the newest event time', () => {
    const now = Date.UTC(2026, 10, 25, 12);
    const readings: Reading[] = [
      { node_id: 'N', timestamp: now - 5000, pressure: 3, node_name: 'new', node_type: 'storage' },
      { node_id: 'N', timestamp: now - 9000, flow_rate: 2, pressure: 1, node_name: 'old', district_id: 'D' },
    ];
    const windows = new NodeWindows('N', AHEAD);
    feed(windows, readings, now, 0);
    expect(latestHash(windows.latest ?? { timestamp: 0 })).toEqual(
      Object.fromEntries(Object.entries(oracleLatest(readings) ?? {}).map(([k, v]) => [k, String(v)])),
    );
    expect(metadataHash('N', windows.metadata)).toEqual(oracleMetadata('N', readings));
  });

  it('builds the hourly 7d series the oracle builds', () => {
    const rand = seededRandom(9);
    const now = Date.UTC(2026, 10, 25, 12, 17);
    const windows = new NodeWindows('N', AHEAD);
    const readings = Array.from({ length: 2000 }, () => randomReading(rand, now, 'N'));
    const taken = feed(windows, readings, now, 0);
    const { start } = oracleWindow('7d', now);
    const series = JSON.parse(timeseriesJson(windows.hourlySeries(now)));
    const expected = oracleSeries(taken, start, now + AHEAD);
    expect(series.timestamps).toEqual(expected.timestamps);
    expect(
      compareFields(
        'series',
        Object.fromEntries(series.flow_rates.map((v: number, i: number) => [i, String(v)])),
        Object.fromEntries(expected.flow_rates.map((v, i) => [i, v])),
      ),
    ).toEqual([]);
  });
});
