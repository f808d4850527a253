import { describe, expect, it } from 'vitest';
import { type HourlyPoint, seriesTime, timeseriesJson } from '../src/index.ts';

describe('timeseriesJson', () => {
  it('writes exactly what JSON.stringify writes, whatever the numbers', () => {
    const hour = Date.UTC(2026, 10, 25, 12);
    const values = [
      0,
      -0,
      1.5,
      -2.25,
      1 / 3,
      1e-7,
      123456789.123,
      1e21,
      5e-324,
      Number.MAX_VALUE,
      2 ** 53 + 2,
    ];
    const points: HourlyPoint[] = values.map((v, i) => ({
      hour: hour / 3_600_000 + i,
      at: hour + i * 3_600_000,
      flow: i % 3 === 0 ? undefined : v,
      pressure: i % 4 === 1 ? undefined : -v,
    }));
    const expected = JSON.stringify({
      timestamps: points.map((p) => seriesTime(p.at)),
      flow_rates: points.map((p) => p.flow ?? 0),
      pressures: points.map((p) => p.pressure ?? 0),
    });
    expect(timeseriesJson(points)).toBe(expected);
    expect(JSON.parse(timeseriesJson([]))).toEqual({ timestamps: [], flow_rates: [], pressures: [] });
    expect(timeseriesJson([])).toBe(JSON.stringify({ timestamps: [], flow_rates: [], pressures: [] }));
  });
});
