import type { Reading } from '../reading.ts';
import { type LatestValues, METADATA_KEYS, type NodeMetadata, NodeWindows } from './nodeWindows.ts';
import {
  emptyPane,
  hasMeasurement,
  PANE,
  PANE_MEASUREMENTS,
  PANE_WIDTH,
  type PaneMeasurement,
  SERIES,
  SERIES_WIDTH,
  STAT_AT,
} from './pane.ts';
import type { PaneRing } from './paneRing.ts';

/** How a reconcile found one node's live windows against the warehouse's. */
export interface NodeReconcile {
  /** Panes where either side holds a reading. */
  compared: number;
  /** Panes replaced by the warehouse's. */
  changed: number;
  /** Whether latest values or metadata were replaced. */
  identityChanged: boolean;
}

/** The measurement's name in readings and reports. */
const MEASUREMENT_NAME: Record<PaneMeasurement, string> = {
  flow: 'flow_rate',
  pressure: 'pressure',
  temperature: 'temperature',
  volume: 'volume',
};

const EMPTY = emptyPane();
const EMPTY_SERIES = new Float64Array(SERIES_WIDTH);

/**
 * Makes `live` agree with `truth` (the warehouse's panes with the stream's
 * tail replayed onto them): every pane the live windows keep at `now` that
 * differs is replaced and marked changed, so the next commit persists it;
 * latest values and metadata too. `drift` collects the largest absolute
 * difference seen per metric. With `since`, panes that start before it are
 * left as they are (a rebuild of recent history only).
 *
 * Means and M2 computed by SQL and by Welford's updates differ in the last
 * bits, so they count as equal within a relative 1e-9; counts, min, max and
 * the newest event time must be exact.
 */
export function reconcileNode(
  live: NodeWindows,
  truth: NodeWindows,
  now: number,
  drift: Record<string, number>,
  since = Number.NEGATIVE_INFINITY,
): NodeReconcile {
  const outcome: NodeReconcile = { compared: 0, changed: 0, identityChanged: false };
  live.rings.forEach((ring, r) => {
    const other = truth.rings[r] as PaneRing;
    const current = ring.paneOf(now);
    // Every pane holding a reading at or after `since` is rebuilt whole (panes may be longer than an hour).
    const first = Math.max(current - ring.history, Math.floor(since / ring.paneMs));
    const series = ring.layout.name === 'series';
    const empty = series ? EMPTY_SERIES : EMPTY;
    for (let pane = first; pane <= current + ring.ahead; pane++) {
      const a = ring.offsetOf(pane);
      const b = other.offsetOf(pane);
      const liveData = a >= 0 ? ring.data : empty;
      const truthData = b >= 0 ? other.data : empty;
      const at = Math.max(a, 0);
      const bt = Math.max(b, 0);
      if ((liveData[at + PANE.count] as number) === 0 && (truthData[bt + PANE.count] as number) === 0)
        continue;
      outcome.compared++;
      if (series ? sameSeries(liveData, at, truthData, bt) : samePane(liveData, at, truthData, bt)) continue;
      outcome.changed++;
      // The series' hours hold nothing the windows' panes do not: drift is told by those.
      if (!series) recordDrift(drift, liveData, at, truthData, bt);
      live.restorePane(r, pane, truthData, bt);
      ring.markChanged(pane);
    }
  });
  // The warehouse is read over the live horizon; a metadata field last sent
  // before it (or a latest reading older than it) is kept as the live state has it.
  const metadata = { ...live.metadata, ...truth.metadata };
  const latest = truth.latest ?? live.latest;
  if (!sameJson(live.latest, latest) || !sameMetadata(live.metadata, metadata)) {
    live.latest = latest;
    live.metadata = metadata;
    live.latestChanged = true;
    outcome.identityChanged = true;
  }
  return outcome;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function sameMetadata(a: NodeMetadata, b: NodeMetadata): boolean {
  for (const key of METADATA_KEYS) {
    if (a[key]?.value !== b[key]?.value || a[key]?.timestamp !== b[key]?.timestamp) return false;
  }
  return true;
}

function samePane(a: Float64Array, at: number, b: Float64Array, bt: number): boolean {
  if (a[at + PANE.count] !== b[bt + PANE.count] || a[at + PANE.flowing] !== b[bt + PANE.flowing])
    return false;
  if (a[at + PANE.newest] !== b[bt + PANE.newest]) return false;
  for (const m of PANE_MEASUREMENTS) {
    const { n, mean, m2, min, max } = STAT_AT[m];
    if (n !== undefined) {
      if (a[at + n] !== b[bt + n]) return false;
      if ((a[at + n] as number) === 0) continue;
    }
    if (min !== undefined && a[at + min] !== b[bt + min]) return false;
    if (max !== undefined && a[at + max] !== b[bt + max]) return false;
    if (mean !== undefined && !close(a[at + mean] as number, b[bt + mean] as number)) return false;
    if (m2 !== undefined && !close(a[at + m2] as number, b[bt + m2] as number)) return false;
  }
  return true;
}

/** Series panes: counts exact, means within the same tolerance. */
function sameSeries(a: Float64Array, at: number, b: Float64Array, bt: number): boolean {
  for (const count of [SERIES.count, SERIES.flowN, SERIES.pressureN]) {
    if (a[at + count] !== b[bt + count]) return false;
  }
  return (
    close(a[at + SERIES.flowMean] as number, b[bt + SERIES.flowMean] as number) &&
    close(a[at + SERIES.pressureMean] as number, b[bt + SERIES.pressureMean] as number)
  );
}

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

function recordDrift(
  drift: Record<string, number>,
  a: Float64Array,
  at: number,
  b: Float64Array,
  bt: number,
): void {
  raise(drift, 'readings', Math.abs((a[at + PANE.count] as number) - (b[bt + PANE.count] as number)));
  for (const m of PANE_MEASUREMENTS) {
    const stats = STAT_AT[m];
    // With readings on one side only, the count says it all.
    if (!hasMeasurement(a, at, m) || !hasMeasurement(b, bt, m)) continue;
    const name = MEASUREMENT_NAME[m];
    for (const stat of ['mean', 'min', 'max'] as const) {
      const offset = stats[stat];
      if (offset === undefined) continue;
      raise(drift, `${name}.${stat}`, Math.abs((a[at + offset] as number) - (b[bt + offset] as number)));
    }
  }
}

function raise(drift: Record<string, number>, metric: string, value: number): void {
  if (value > (drift[metric] ?? 0)) drift[metric] = value;
}

/** A backfilled pane, flat: ring index, pane number, then the pane (pane.ts layout). */
export const BACKFILL_PANE_WIDTH = 2 + PANE_WIDTH;

/**
 * A node's windows from backfilled panes (`BACKFILL_PANE_WIDTH` doubles
 * each) as they stand at `now`: panes that have left their ring's reach
 * since they were computed are skipped.
 */
export function windowsFromPanes(
  nodeId: string,
  aheadMs: number,
  panes: Float64Array,
  now: number,
): NodeWindows {
  const windows = new NodeWindows(nodeId, aheadMs);
  for (let at = 0; at + BACKFILL_PANE_WIDTH <= panes.length; at += BACKFILL_PANE_WIDTH) {
    const ring = windows.rings[panes[at] as number];
    const pane = panes[at + 1] as number;
    if (ring === undefined || !ring.reaches(pane, now)) continue;
    windows.restoreFullPane(panes[at] as number, pane, panes, at + 2);
  }
  return windows;
}

/** What the warehouse says about one node (a backfill run's part for it). */
export interface NodeBackfill {
  readonly nodeId: string;
  /** `BACKFILL_PANE_WIDTH` doubles per pane: ring, pane number, pane (pane.ts layout). */
  readonly panes: Float64Array;
  readonly latest?: LatestValues;
  readonly metadata: NodeMetadata;
  /** Readings archived after the panes' cut time but within the shard's cut: added one by one. */
  readonly readings: readonly Reading[];
}

/**
 * A node's truth at `now`: the warehouse's panes, latest values and
 * metadata, its readings archived after the panes were cut, then `tail`
 * (the shard's stream after the cut, up to where the state compared with
 * it has applied).
 */
export function truthOf(
  node: NodeBackfill,
  aheadMs: number,
  now: number,
  tail: readonly Reading[] = [],
): NodeWindows {
  const truth = windowsFromPanes(node.nodeId, aheadMs, node.panes, now);
  truth.latest = node.latest;
  truth.metadata = { ...node.metadata };
  for (const reading of node.readings) truth.add(reading, now);
  for (const reading of tail) truth.add(reading, now);
  return truth;
}
