import { RANGE_MS, RANGES, type Range } from '../ranges.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** Pane size per range (DESIGN.md): windows are unions of whole panes. */
export const PANE_MS: Record<Range, number> = {
  '1h': MINUTE,
  '6h': 5 * MINUTE,
  '24h': 15 * MINUTE,
  '3d': HOUR,
  '7d': HOUR,
  '30d': HOUR,
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
