import { emptyPane, mergePane, type NodeWindows, PANE, SERIES_RING, STAT_AT } from '@streamgauge/core';

/**
 * State persisted before panes were compact (format 1): field
 * `p<ring>.<slot>` holding the pane number and 23 doubles, rings of 1-minute,
 * 5-minute, 15-minute and 1-hour panes. Read once, into today's rings, and
 * written back in today's format by the node's next commit (which deletes
 * these fields), so an upgrade keeps the live state instead of waiting for a
 * backfill.
 *
 * 1-minute and 15-minute panes carry over; 1-hour panes are the 1-hour
 * ring's, the series' hours, and merged into the 6-hour and 1-day panes.
 * The first day's pane lacks the hours before the old 30-day horizon until
 * the next reconcile.
 */
const OLD_WIDTH = 23;
const OLD_BYTES = 8 + OLD_WIDTH * 8;
/** Old ring index → pane size (ms); the 5-minute ring (1) has no counterpart. */
const OLD_PANE_MS = [60_000, 300_000, 900_000, 3_600_000];

export function migrateLegacyPanes(node: NodeWindows, fields: readonly [string, Buffer][]): void {
  const old = new Float64Array(OLD_WIDTH);
  const pane = emptyPane();
  for (const [field, value] of fields) {
    const ring = Number(field.slice(1, field.indexOf('.')));
    const paneMs = OLD_PANE_MS[ring];
    if (paneMs === undefined || ring === 1 || value.length !== OLD_BYTES) continue;
    for (let i = 0; i < OLD_WIDTH; i++) old[i] = value.readDoubleLE(8 + i * 8);
    if ((old[0] as number) === 0) continue;
    fromOldPane(pane, old);
    const start = value.readDoubleLE(0) * paneMs;
    for (let r = 0; r < node.rings.length; r++) {
      const target = node.rings[r];
      if (target === undefined) continue;
      const hourly = paneMs === 3_600_000;
      // The series takes hours; each window ring takes panes of its own size, or coarser ones from hours.
      const takes =
        r === SERIES_RING ? hourly : target.paneMs === paneMs || (hourly && target.paneMs > paneMs);
      if (!takes) continue;
      const number = target.paneOf(start);
      const at = target.offsetOf(number);
      if (at >= 0 && r !== SERIES_RING) mergePane(target.data, at, pane, 0);
      else target.putFull(number, pane);
      target.markChanged(number);
    }
  }
  node.latestChanged = true;
}

/** Format 1's layout: count, flowing, newest, then n, mean, m2, min, max of flow, pressure, temperature, volume. */
function fromOldPane(pane: Float64Array, old: Float64Array): void {
  pane.set(emptyPane());
  pane[PANE.count] = old[0] as number;
  pane[PANE.flowing] = old[1] as number;
  pane[PANE.newest] = old[2] as number;
  (['flow', 'pressure', 'temperature', 'volume'] as const).forEach((m, i) => {
    const base = 3 + i * 5;
    if ((old[base] as number) === 0) return;
    const { n, mean, m2, min, max } = STAT_AT[m];
    if (n !== undefined) pane[n] = old[base] as number;
    if (mean !== undefined) pane[mean] = old[base + 1] as number;
    if (m2 !== undefined) pane[m2] = old[base + 2] as number;
    if (min !== undefined) pane[min] = old[base + 3] as number;
    if (max !== undefined) pane[max] = old[base + 4] as number;
  });
}
