import { type AnomalyType, type Reading, seededRandom } from '@streamgauge/core';
import { demandAt, readingOf, simulatedNetwork } from './network.ts';

/** What the generator injects, and the anomaly type a detector should report for it. */
export const INJECTED_KINDS = {
  burst: 'high_flow',
  gradual_leak: 'gradual_leak',
  pressure_drop: 'low_pressure',
  stuck: 'stuck_sensor',
  offline: 'offline',
} as const satisfies Record<string, AnomalyType>;
export type InjectedKind = keyof typeof INJECTED_KINDS;

export interface InjectedEvent {
  readonly kind: InjectedKind;
  readonly expected: AnomalyType;
  readonly nodeId: string;
  readonly start: number;
  readonly end: number;
}

export interface LabelledOptions {
  readonly nodes: number;
  readonly days: number;
  /** First reading's time (ms); aligned to the interval. */
  readonly start: number;
  readonly intervalMs?: number;
  readonly seed: number;
  /** Kinds to inject, each once per node in turn (none: clean data). */
  readonly inject?: readonly InjectedKind[];
}

export interface LabelledData {
  /** Every reading, in event-time order across nodes. */
  readonly readings: Reading[];
  /** Per reading, the type expected while an injected event covers it ('' when none). */
  readonly labels: (AnomalyType | '')[];
  readonly events: InjectedEvent[];
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * Labelled data for evaluating detectors: distribution loggers with a
 * diurnal demand (the simulator's curve), pressure falling with flow, and
 * noise; then, per node, injected events at known times:
 *
 * - burst: flow 2.5× for 90 minutes, pressure 0.4 bar lower;
 * - gradual_leak: a leak growing from nothing to 40 % of the node's night
 *   flow plus 1 L/s over 6 days, lasting to the end (too slow for the σ rule);
 * - pressure_drop: pressure 2.5 bar lower for 2 hours;
 * - stuck: both values frozen for 6 hours;
 * - offline: no reading for 4 hours.
 *
 * Events start after a week (baselines need history), at random hours,
 * never overlapping on a node.
 */
export function labelledReadings(options: LabelledOptions): LabelledData {
  const random = seededRandom(options.seed);
  const interval = options.intervalMs ?? 15 * 60_000;
  const start = Math.ceil(options.start / interval) * interval;
  const end = start + options.days * DAY;
  const events: InjectedEvent[] = [];
  const rows: { reading: Reading; label: AnomalyType | '' }[] = [];
  for (let n = 0; n < options.nodes; n++) {
    const nodeId = `LAB${String(n + 1).padStart(3, '0')}`;
    const peak = 8 + random() * 30;
    const staticPressure = 4 + random() * 2;
    const headLoss = 0.02 + random() * 0.03;
    const mine: InjectedEvent[] = [];
    // The short events first, in an order rotated per node; a leak last (it lasts to the end).
    const kinds = options.inject ?? [];
    const short = kinds.filter((k) => k !== 'gradual_leak');
    const order = short.map((_, i) => short[(i + n) % short.length] as InjectedKind);
    let at = start + 7 * DAY + Math.floor(random() * 24) * HOUR;
    for (const kind of order) {
      const length = { burst: 1.5 * HOUR, pressure_drop: 2 * HOUR, stuck: 6 * HOUR, offline: 4 * HOUR }[
        kind as Exclude<InjectedKind, 'gradual_leak'>
      ];
      if (at + length > end) break;
      mine.push({ kind, expected: INJECTED_KINDS[kind], nodeId, start: at, end: at + length });
      at += length + 2 * DAY + Math.floor(random() * 24) * HOUR;
    }
    if (kinds.includes('gradual_leak') && at + 8 * DAY <= end) {
      mine.push({ kind: 'gradual_leak', expected: 'gradual_leak', nodeId, start: at, end });
    }
    events.push(...mine);
    let frozen: Reading | undefined;
    for (let t = start; t < end; t += interval) {
      const event = mine.find((e) => t >= e.start && t < e.end);
      if (event?.kind === 'offline') continue;
      const noise = () => (random() - 0.5) * 2;
      let flow = peak * demandAt(t) * (1 + 0.05 * noise());
      let pressureDrop = 0;
      if (event?.kind === 'burst') {
        flow *= 2.5;
        pressureDrop = 0.4;
      }
      if (event?.kind === 'gradual_leak') {
        const grown = Math.min(1, (t - event.start) / (6 * DAY));
        flow += grown * (0.4 * peak * demandAt(3 * HOUR) + 1);
      }
      if (event?.kind === 'pressure_drop') pressureDrop = 2.5;
      let reading: Reading = {
        node_id: nodeId,
        timestamp: t,
        flow_rate: round(flow, 3),
        pressure: round(staticPressure - headLoss * flow - pressureDrop + 0.03 * noise(), 3),
      };
      if (event?.kind === 'stuck') {
        frozen ??= reading;
        reading = { ...frozen, timestamp: t };
      } else frozen = undefined;
      rows.push({ reading, label: event?.expected ?? '' });
    }
  }
  rows.sort(
    (a, b) => a.reading.timestamp - b.reading.timestamp || a.reading.node_id.localeCompare(b.reading.node_id),
  );
  return { readings: rows.map((r) => r.reading), labels: rows.map((r) => r.label), events };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * The live simulator's network with nothing injected (`pnpm start`'s
 * loggers: distribution, storage that fills in cycles, pressure-only
 * monitoring points), one reading per node every `intervalMs`, 1 % of
 * samples lost: what the detectors see every day on a clean network.
 */
export function simulatorNetworkReadings(options: {
  readonly nodes: number;
  readonly days: number;
  readonly start: number;
  readonly intervalMs: number;
  readonly seed: number;
}): Reading[] {
  const random = seededRandom(options.seed);
  const network = simulatedNetwork(options.nodes, random);
  const readings: Reading[] = [];
  const end = options.start + options.days * DAY;
  for (let t = options.start; t < end; t += options.intervalMs) {
    for (const node of network) {
      const simulated = readingOf(node, t, options.intervalMs, random);
      if (random() < 0.01) continue;
      readings.push({
        node_id: simulated.node_id,
        node_type: simulated.node_type,
        timestamp: t,
        pressure: simulated.pressure,
        ...(simulated.flow_rate !== undefined && { flow_rate: simulated.flow_rate }),
      });
    }
  }
  return readings;
}
