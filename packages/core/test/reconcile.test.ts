import { describe, expect, it } from 'vitest';
import { NodeWindows, type Reading, RINGS, reconcileNode, SERIES, STAT_AT } from '../src/index.ts';

const HOUR = 3_600_000;
const now = Date.UTC(2026, 10, 25, 12, 34, 56);

function windowsOf(readings: readonly Reading[]): NodeWindows {
  const windows = new NodeWindows('N', 360_000);
  for (const reading of readings) windows.add(reading, now);
  return windows;
}

/** A reading every 10 minutes over the last two days, with flow from `flow`. */
function series(flow: (i: number) => number): Reading[] {
  return Array.from({ length: 288 }, (_, i) => ({
    node_id: 'N',
    timestamp: now - 48 * HOUR + i * 600_000,
    flow_rate: flow(i),
  }));
}

/** Each ring's panes as [pane, count, flow mean]. */
function panes(windows: NodeWindows): [number, number, number][][] {
  return windows.rings.map((ring) =>
    ring.panes().map((pane) => {
      const at = ring.offsetOf(pane);
      const mean = ring.layout.name === 'series' ? SERIES.flowMean : (STAT_AT.flow.mean as number);
      // Both layouts keep the reading count first.
      return [pane, ring.data[at] as number, ring.data[at + mean] as number];
    }),
  );
}

describe('reconcileNode', () => {
  it('with `since`, replaces the panes from that hour on and leaves the older ones as they were', () => {
    const live = windowsOf(series((i) => i));
    const truth = windowsOf(series((i) => 1000 + i));
    const before = panes(live);
    const since = Math.floor((now - 6 * HOUR) / HOUR) * HOUR;
    const outcome = reconcileNode(live, truth, now, {}, since);
    expect(outcome.changed).toBeGreaterThan(0);
    const after = panes(live);
    const wanted = panes(truth);
    RINGS.forEach(({ paneMs }, r) => {
      // A pane that holds any time at or after `since` is rebuilt whole.
      const older = (list: [number, number, number][][]) =>
        list[r]?.filter(([p]) => (p + 1) * paneMs <= since);
      const newer = (list: [number, number, number][][]) =>
        list[r]?.filter(([p]) => (p + 1) * paneMs > since);
      expect(older(after)).toEqual(older(before));
      expect(newer(after)).toEqual(newer(wanted));
      expect(newer(after)?.length).toBeGreaterThan(0);
    });
    // Without it, every pane follows the truth.
    reconcileNode(live, truth, now, {});
    expect(panes(live)).toEqual(wanted);
  });

  it('with `since`, a window still reads its own panes: a coarser pane rebuilt whole does not leak older truth into it', () => {
    const live = windowsOf(series((i) => i));
    // Since 09:00; the truth also holds a reading at 07:30, in the 6-hour pane 06:00-12:00 rebuilt whole.
    const since = Date.UTC(2026, 10, 25, 9);
    const extra: Reading = { node_id: 'N', timestamp: Date.UTC(2026, 10, 25, 7, 31), flow_rate: 5 };
    const truth = windowsOf([...series((i) => i), extra]);
    const counts = () => (['1h', '6h', '24h'] as const).map((range) => live.evaluate(range, now).pane[0]);
    const before = counts();
    reconcileNode(live, truth, now, {}, since);
    expect(counts()).toEqual(before);
    // The whole rebuild takes it.
    reconcileNode(live, truth, now, {});
    expect(counts()).toEqual([before[0], (before[1] as number) + 1, (before[2] as number) + 1]);
  });
});
