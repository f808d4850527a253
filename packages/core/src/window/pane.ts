import type { Reading } from '../reading.ts';

/**
 * A pane summarises the readings of one node in one interval of event time,
 * in a fixed layout of doubles so panes live in flat typed arrays: cheap to
 * merge, to copy and to persist.
 *
 * Per measurement it keeps what the read model needs and no more: count,
 * mean, M2 (sum of squared deviations, for the sample standard deviation),
 * min and max. Means and M2 are merged with Chan's parallel formula, which
 * stays exact where a raw sum of squares loses digits; min and max make the
 * pane non-invertible, so windows are merged from panes, never subtracted.
 */
export const PANE = {
  /** Readings in the pane. */
  count: 0,
  /** Readings with flow_rate > 0 (the dashboard's "uptime"). */
  flowing: 1,
  /** Newest event time in the pane (ms), so a window reports what it covers. */
  newest: 2,
  flow: 3,
  pressure: 8,
  temperature: 13,
  volume: 18,
} as const;

/** Per measurement: n, mean, m2, min, max. */
export const STAT = { n: 0, mean: 1, m2: 2, min: 3, max: 4 } as const;
export const STAT_WIDTH = 5;
export const PANE_WIDTH = 23;

export type PaneMeasurement = 'flow' | 'pressure' | 'temperature' | 'volume';
export const PANE_MEASUREMENTS: readonly PaneMeasurement[] = ['flow', 'pressure', 'temperature', 'volume'];

/** Resets the pane at `at` to empty. */
export function clearPane(buf: Float64Array, at: number): void {
  buf.fill(0, at, at + PANE_WIDTH);
  buf[at + PANE.newest] = Number.NEGATIVE_INFINITY;
  for (const m of PANE_MEASUREMENTS) {
    buf[at + PANE[m] + STAT.min] = Number.POSITIVE_INFINITY;
    buf[at + PANE[m] + STAT.max] = Number.NEGATIVE_INFINITY;
  }
}

export function emptyPane(): Float64Array {
  const pane = new Float64Array(PANE_WIDTH);
  clearPane(pane, 0);
  return pane;
}

/** Adds one reading (Welford's update). */
export function addToPane(buf: Float64Array, at: number, reading: Reading): void {
  buf[at + PANE.count] = (buf[at + PANE.count] as number) + 1;
  if (reading.flow_rate !== undefined && reading.flow_rate > 0) {
    buf[at + PANE.flowing] = (buf[at + PANE.flowing] as number) + 1;
  }
  if (reading.timestamp > (buf[at + PANE.newest] as number)) buf[at + PANE.newest] = reading.timestamp;
  if (reading.flow_rate !== undefined) addValue(buf, at + PANE.flow, reading.flow_rate);
  if (reading.pressure !== undefined) addValue(buf, at + PANE.pressure, reading.pressure);
  if (reading.temperature !== undefined) addValue(buf, at + PANE.temperature, reading.temperature);
  if (reading.volume !== undefined) addValue(buf, at + PANE.volume, reading.volume);
}

function addValue(buf: Float64Array, at: number, x: number): void {
  const n = (buf[at + STAT.n] as number) + 1;
  const mean = buf[at + STAT.mean] as number;
  const delta = x - mean;
  const nextMean = mean + delta / n;
  buf[at + STAT.n] = n;
  buf[at + STAT.mean] = nextMean;
  buf[at + STAT.m2] = (buf[at + STAT.m2] as number) + delta * (x - nextMean);
  if (x < (buf[at + STAT.min] as number)) buf[at + STAT.min] = x;
  if (x > (buf[at + STAT.max] as number)) buf[at + STAT.max] = x;
}

/** Merges the pane at `src[from]` into the pane at `dst[to]`. */
export function mergePane(dst: Float64Array, to: number, src: Float64Array, from: number): void {
  if ((src[from + PANE.count] as number) === 0) return;
  dst[to + PANE.count] = (dst[to + PANE.count] as number) + (src[from + PANE.count] as number);
  dst[to + PANE.flowing] = (dst[to + PANE.flowing] as number) + (src[from + PANE.flowing] as number);
  if ((src[from + PANE.newest] as number) > (dst[to + PANE.newest] as number)) {
    dst[to + PANE.newest] = src[from + PANE.newest] as number;
  }
  for (const m of PANE_MEASUREMENTS) mergeStat(dst, to + PANE[m], src, from + PANE[m]);
}

function mergeStat(dst: Float64Array, to: number, src: Float64Array, from: number): void {
  const nb = src[from + STAT.n] as number;
  if (nb === 0) return;
  const na = dst[to + STAT.n] as number;
  if (na === 0) {
    dst.set(src.subarray(from, from + STAT_WIDTH), to);
    return;
  }
  const n = na + nb;
  const meanA = dst[to + STAT.mean] as number;
  const delta = (src[from + STAT.mean] as number) - meanA;
  dst[to + STAT.n] = n;
  dst[to + STAT.mean] = meanA + (delta * nb) / n;
  dst[to + STAT.m2] =
    (dst[to + STAT.m2] as number) + (src[from + STAT.m2] as number) + (delta * delta * na * nb) / n;
  if ((src[from + STAT.min] as number) < (dst[to + STAT.min] as number))
    dst[to + STAT.min] = src[from + STAT.min] as number;
  if ((src[from + STAT.max] as number) > (dst[to + STAT.max] as number))
    dst[to + STAT.max] = src[from + STAT.max] as number;
}
