import { RANGE_MS, RANGES, type Range } from '../ranges.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * Pane size per range: windows are unions of whole panes, `[floor(T/p)*p - R, T]`,
 * so a range covers between R and R + p. The long ranges take coarse panes
 * (DESIGN.md allows it when documented) because a node keeps every pane its
 * longest range needs: 1-hour panes for 30 days were 720 per node, 1-day
 * panes are 31. Every metrics hash says what it covers (`window_start`).
 */
export const PANE_MS: Record<Range, number> = {
  '1h': MINUTE,
  '6h': 15 * MINUTE,
  '24h': HOUR,
  '3d': 6 * HOUR,
  '7d': 6 * HOUR,
  '30d': DAY,
};

/** The distinct pane sizes, finest first, each with the panes its longest range needs. */
export const PANE_SIZES: readonly { paneMs: number; history: number }[] = [
  ...new Set(RANGES.map((r) => PANE_MS[r])),
]
  .sort((a, b) => a - b)
  .map((paneMs) => ({
    paneMs,
    history: Math.max(...RANGES.filter((r) => PANE_MS[r] === paneMs).map((r) => RANGE_MS[r] / paneMs)),
  }));

export const RING_OF_RANGE: Record<Range, number> = Object.fromEntries(
  RANGES.map((r) => [r, PANE_SIZES.findIndex((s) => s.paneMs === PANE_MS[r])]),
) as Record<Range, number>;

/** The 7-day series' hours: a ring of its own, after the windows' rings, of series panes. */
export const SERIES_PANE_MS = HOUR;
export const SERIES_RING = PANE_SIZES.length;

/** Every ring a node keeps: the windows' (full panes), then the series' (narrow panes). */
export const RINGS: readonly { paneMs: number; history: number; series: boolean }[] = [
  ...PANE_SIZES.map((s) => ({ ...s, series: false })),
  // The 7d window starts at a 6-hour boundary: up to 5 hours more than 168.
  {
    paneMs: SERIES_PANE_MS,
    history: (RANGE_MS['7d'] + PANE_MS['7d']) / SERIES_PANE_MS - 1,
    series: true,
  },
];

export interface WindowBounds {
  /** First and last pane number of the window (the last holds T). */
  readonly first: number;
  readonly last: number;
  /** `floor(T/p)*p - R`, ms. */
  readonly start: number;
  /** T, ms. */
  readonly at: number;
}

/** The window of `range` at evaluation time `at`: event times in `[floor(T/p)*p - R, T]`. */
export function windowBounds(range: Range, at: number): WindowBounds {
  const p = PANE_MS[range];
  const last = Math.floor(at / p);
  const first = last - RANGE_MS[range] / p;
  return { first, last, start: first * p, at };
}

/**
 * Start of the live horizon at `now`: the 30-day window's start. Readings
 * before it are archived but too late for the live windows.
 */
export function horizonStart(now: number): number {
  return windowBounds('30d', now).start;
}
