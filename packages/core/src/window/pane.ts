import type { Reading } from '../reading.ts';

/**
 * A pane summarises the readings of one node in one interval of event time,
 * in a fixed layout of doubles so panes live in flat typed arrays: cheap to
 * merge, to copy and to persist.
 *
 * It keeps what the read model needs and no more, since a node holds a few
 * hundred panes and every double counts at 100,000 nodes:
 * - flow: count, mean, M2 (sum of squared deviations, for `stddev_flow`),
 *   min, max;
 * - pressure and temperature: count, mean, min, max (no standard deviation
 *   is read of them);
 * - volume: min and max (`volume_delta` is their difference; min is +∞
 *   while the pane has no volume).
 * Means and M2 are merged with Chan's parallel formula, which stays exact
 * where a raw sum of squares loses digits; min and max make the pane
 * non-invertible, so windows are merged from panes, never subtracted.
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
  temperature: 12,
  volume: 16,
} as const;

export const PANE_WIDTH = 18;

export type PaneMeasurement = 'flow' | 'pressure' | 'temperature' | 'volume';
export const PANE_MEASUREMENTS: readonly PaneMeasurement[] = ['flow', 'pressure', 'temperature', 'volume'];

export type StatName = 'n' | 'mean' | 'm2' | 'min' | 'max';

/** Where each statistic a pane keeps sits (absolute offsets in the pane); absent: not kept. */
export const STAT_AT: Readonly<Record<PaneMeasurement, Readonly<Partial<Record<StatName, number>>>>> = {
  flow: { n: 3, mean: 4, m2: 5, min: 6, max: 7 },
  pressure: { n: 8, mean: 9, min: 10, max: 11 },
  temperature: { n: 12, mean: 13, min: 14, max: 15 },
  volume: { min: 16, max: 17 },
};

const F_N = 3;
const F_MEAN = 4;
const F_M2 = 5;
const F_MIN = 6;
const F_MAX = 7;
const P_N = 8;
const T_N = 12;
const V_MIN = 16;
const V_MAX = 17;

/** Resets the pane at `at` to empty. */
export function clearPane(buf: Float64Array, at: number): void {
  buf.fill(0, at, at + PANE_WIDTH);
  buf[at + PANE.newest] = Number.NEGATIVE_INFINITY;
  buf[at + F_MIN] = Number.POSITIVE_INFINITY;
  buf[at + F_MAX] = Number.NEGATIVE_INFINITY;
  buf[at + P_N + 2] = Number.POSITIVE_INFINITY;
  buf[at + P_N + 3] = Number.NEGATIVE_INFINITY;
  buf[at + T_N + 2] = Number.POSITIVE_INFINITY;
  buf[at + T_N + 3] = Number.NEGATIVE_INFINITY;
  buf[at + V_MIN] = Number.POSITIVE_INFINITY;
  buf[at + V_MAX] = Number.NEGATIVE_INFINITY;
}

/**
 * An empty pane of its own, cut from a shared slab. A Float64Array of this
 * size is an ArrayBuffer of its own, off the heap, and a metrics round
 * makes one per window evaluated (tens of thousands a second at 100,000
 * nodes): in a profile there, their allocation took ~0.5 s of some rounds'
 * chunks, and a window's evaluation is ~20 % faster from a slab
 * (test/bench/metricsCost.ts). A slab lives while any pane cut from it does.
 */
export function emptyPane(): Float64Array {
  if (slabUsed + PANE_WIDTH > slab.length) {
    slab = new Float64Array(SLAB_PANES * PANE_WIDTH);
    slabUsed = 0;
  }
  const pane = slab.subarray(slabUsed, slabUsed + PANE_WIDTH);
  slabUsed += PANE_WIDTH;
  clearPane(pane, 0);
  return pane;
}

const SLAB_PANES = 512;
let slab = new Float64Array(0);
let slabUsed = 0;

/** Whether the pane at `at` holds a value of `m`. */
export function hasMeasurement(buf: Float64Array, at: number, m: PaneMeasurement): boolean {
  return m === 'volume'
    ? (buf[at + V_MIN] as number) <= (buf[at + V_MAX] as number)
    : (buf[at + PANE[m]] as number) > 0;
}

/** Adds one reading (Welford's update for flow; running means for pressure and temperature). */
export function addToPane(buf: Float64Array, at: number, reading: Reading): void {
  buf[at + PANE.count] = (buf[at + PANE.count] as number) + 1;
  if (reading.timestamp > (buf[at + PANE.newest] as number)) buf[at + PANE.newest] = reading.timestamp;
  const flow = reading.flow_rate;
  if (flow !== undefined) {
    if (flow > 0) buf[at + PANE.flowing] = (buf[at + PANE.flowing] as number) + 1;
    const n = (buf[at + F_N] as number) + 1;
    const mean = buf[at + F_MEAN] as number;
    const delta = flow - mean;
    const next = mean + delta / n;
    buf[at + F_N] = n;
    buf[at + F_MEAN] = next;
    buf[at + F_M2] = (buf[at + F_M2] as number) + delta * (flow - next);
    if (flow < (buf[at + F_MIN] as number)) buf[at + F_MIN] = flow;
    if (flow > (buf[at + F_MAX] as number)) buf[at + F_MAX] = flow;
  }
  if (reading.pressure !== undefined) addMean(buf, at + P_N, reading.pressure);
  if (reading.temperature !== undefined) addMean(buf, at + T_N, reading.temperature);
  const volume = reading.volume;
  if (volume !== undefined) {
    if (volume < (buf[at + V_MIN] as number)) buf[at + V_MIN] = volume;
    if (volume > (buf[at + V_MAX] as number)) buf[at + V_MAX] = volume;
  }
}

/** n, mean, min, max at `at`. */
function addMean(buf: Float64Array, at: number, x: number): void {
  const n = (buf[at] as number) + 1;
  const mean = buf[at + 1] as number;
  buf[at] = n;
  buf[at + 1] = mean + (x - mean) / n;
  if (x < (buf[at + 2] as number)) buf[at + 2] = x;
  if (x > (buf[at + 3] as number)) buf[at + 3] = x;
}

/** Merges the pane at `src[from]` into the pane at `dst[to]`. */
export function mergePane(dst: Float64Array, to: number, src: Float64Array, from: number): void {
  if ((src[from + PANE.count] as number) === 0) return;
  dst[to + PANE.count] = (dst[to + PANE.count] as number) + (src[from + PANE.count] as number);
  dst[to + PANE.flowing] = (dst[to + PANE.flowing] as number) + (src[from + PANE.flowing] as number);
  if ((src[from + PANE.newest] as number) > (dst[to + PANE.newest] as number)) {
    dst[to + PANE.newest] = src[from + PANE.newest] as number;
  }
  const nb = src[from + F_N] as number;
  if (nb > 0) {
    const na = dst[to + F_N] as number;
    if (na === 0) {
      dst.set(src.subarray(from + F_N, from + F_MAX + 1), to + F_N);
    } else {
      const n = na + nb;
      const meanA = dst[to + F_MEAN] as number;
      const delta = (src[from + F_MEAN] as number) - meanA;
      dst[to + F_N] = n;
      dst[to + F_MEAN] = meanA + (delta * nb) / n;
      dst[to + F_M2] =
        (dst[to + F_M2] as number) + (src[from + F_M2] as number) + (delta * delta * na * nb) / n;
      minMax(dst, to + F_MIN, src, from + F_MIN);
    }
  }
  mergeMean(dst, to + P_N, src, from + P_N);
  mergeMean(dst, to + T_N, src, from + T_N);
  minMax(dst, to + V_MIN, src, from + V_MIN);
}

function mergeMean(dst: Float64Array, to: number, src: Float64Array, from: number): void {
  const nb = src[from] as number;
  if (nb === 0) return;
  const na = dst[to] as number;
  const n = na + nb;
  const meanA = dst[to + 1] as number;
  dst[to] = n;
  dst[to + 1] = na === 0 ? (src[from + 1] as number) : meanA + (((src[from + 1] as number) - meanA) * nb) / n;
  minMax(dst, to + 2, src, from + 2);
}

/** min at `at`, max at `at + 1`. */
function minMax(dst: Float64Array, to: number, src: Float64Array, from: number): void {
  if ((src[from] as number) < (dst[to] as number)) dst[to] = src[from] as number;
  if ((src[from + 1] as number) > (dst[to + 1] as number)) dst[to + 1] = src[from + 1] as number;
}

/**
 * The 7-day series' pane: per hour only what `timeseries:7d` shows (the
 * readings, and the mean flow and pressure), a fifth of a full pane, since
 * the series needs 169 of them.
 */
export const SERIES = { count: 0, flowN: 1, flowMean: 2, pressureN: 3, pressureMean: 4 } as const;
export const SERIES_WIDTH = 5;

export function addToSeries(buf: Float64Array, at: number, reading: Reading): void {
  buf[at] = (buf[at] as number) + 1;
  if (reading.flow_rate !== undefined) addRunningMean(buf, at + SERIES.flowN, reading.flow_rate);
  if (reading.pressure !== undefined) addRunningMean(buf, at + SERIES.pressureN, reading.pressure);
}

function addRunningMean(buf: Float64Array, at: number, x: number): void {
  const n = (buf[at] as number) + 1;
  const mean = buf[at + 1] as number;
  buf[at] = n;
  buf[at + 1] = mean + (x - mean) / n;
}

/** A series pane from a full pane (a backfilled hour). */
export function seriesOfPane(dst: Float64Array, to: number, src: Float64Array, from: number): void {
  dst[to + SERIES.count] = src[from + PANE.count] as number;
  dst[to + SERIES.flowN] = src[from + F_N] as number;
  dst[to + SERIES.flowMean] = src[from + F_MEAN] as number;
  dst[to + SERIES.pressureN] = src[from + P_N] as number;
  dst[to + SERIES.pressureMean] = src[from + P_N + 1] as number;
}

/** How a ring's panes are laid out and updated: full panes, or the series' narrow ones. */
export interface PaneLayout {
  readonly name: 'pane' | 'series';
  readonly width: number;
  clear(buf: Float64Array, at: number): void;
  add(buf: Float64Array, at: number, reading: Reading): void;
  /** Sets the pane at `buf[at]` from a full pane (a restore, or the backfill's). */
  fromFull(buf: Float64Array, at: number, full: Float64Array, from: number): void;
}

export const FULL_LAYOUT: PaneLayout = {
  name: 'pane',
  width: PANE_WIDTH,
  clear: clearPane,
  add: addToPane,
  fromFull(buf, at, full, from) {
    buf.set(full.subarray(from, from + PANE_WIDTH), at);
  },
};

export const SERIES_LAYOUT: PaneLayout = {
  name: 'series',
  width: SERIES_WIDTH,
  clear(buf, at) {
    buf.fill(0, at, at + SERIES_WIDTH);
  },
  add: addToSeries,
  fromFull: seriesOfPane,
};
