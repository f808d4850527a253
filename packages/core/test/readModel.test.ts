import { describe, expect, it } from 'vitest';
import {
  type HourlyPoint,
  LATEST_FIELDS,
  NodeWindows,
  nodeSeriesJson,
  PackedHash,
  seriesTime,
  timeseriesJson,
} from '../src/index.ts';

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

  it("writes a node's series from its windows as from its points, and each hour's own time", () => {
    const windows = new NodeWindows('N', 6 * 60_000);
    const now = Date.UTC(2026, 10, 25, 12, 30);
    for (let i = 0; i < 400; i++) {
      const timestamp = now - i * 25 * 60_000;
      windows.add(
        { node_id: 'N', timestamp, ...(i % 5 === 0 ? {} : { flow_rate: i / 7 }), pressure: 3 + i / 11 },
        now,
      );
    }
    expect(nodeSeriesJson(windows, now)).toBe(timeseriesJson(windows.hourlySeries(now)));
    // Hours 1024 apart share a place in the formatting cache: each keeps its own text.
    const hour = Date.UTC(2026, 0, 1);
    const far = hour + 1024 * 3_600_000;
    const points = [hour, far, hour].map((at, i) => ({ hour: at / 3_600_000, at, flow: i, pressure: i }));
    expect(JSON.parse(timeseriesJson(points)).timestamps).toEqual([hour, far, hour].map(seriesTime));
  });
});

describe('PackedHash', () => {
  it('pairs each value with its field, and refuses values that would not cut apart again', () => {
    const values = ['2026-12-06T00:00:00.000Z', '1.5', '0', '3.25', '7'];
    expect(new PackedHash(LATEST_FIELDS, values).toRecord()).toEqual({
      timestamp: values[0],
      flow_rate: '1.5',
      pressure: '0',
      temperature: '3.25',
      volume: '7',
    });
    expect(() => new PackedHash(LATEST_FIELDS, values.slice(1))).toThrow('5 fields got 4 values');
    expect(() => new PackedHash(LATEST_FIELDS, [...values, '8'])).toThrow('5 fields got 6 values');
    expect(() => new PackedHash(LATEST_FIELDS, ['a\x1fb', ...values.slice(1)])).toThrow(/unit separator/);
  });
});
