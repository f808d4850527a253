import { RANGE_MS, type Range, type Reading } from '@streamgauge/core';

/**
 * The read model computed the obvious way, straight from raw readings, with
 * none of the pipeline's code: windows are filters, averages are sums,
 * standard deviations two-pass. Tests compare what the pipeline wrote with
 * what this says, over each key's own [window_start, window_end].
 */
export interface OracleMetrics {
  reading_count: number;
  avg_flow: number;
  min_flow: number;
  max_flow: number;
  stddev_flow: number;
  avg_pressure: number;
  min_pressure: number;
  max_pressure: number;
  uptime_percentage: number;
  avg_temperature: number;
  min_temperature: number;
  max_temperature: number;
  volume_delta: number;
}

const HOUR = 3_600_000;

function values(readings: readonly Reading[], field: 'flow_rate' | 'pressure' | 'temperature' | 'volume') {
  const out: number[] = [];
  for (const r of readings) {
    const v = r[field];
    if (v !== undefined) out.push(v);
  }
  return out;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : sum(xs) / xs.length);
const min = (xs: readonly number[]) => (xs.length === 0 ? 0 : Math.min(...xs));
const max = (xs: readonly number[]) => (xs.length === 0 ? 0 : Math.max(...xs));
function sampleStddev(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(sum(xs.map((x) => (x - m) ** 2)) / (xs.length - 1));
}

export function inWindow(readings: readonly Reading[], start: number, end: number): Reading[] {
  return readings.filter((r) => r.timestamp >= start && r.timestamp <= end);
}

export function oracleMetrics(readings: readonly Reading[]): OracleMetrics {
  const flow = values(readings, 'flow_rate');
  const pressure = values(readings, 'pressure');
  const temperature = values(readings, 'temperature');
  const volume = values(readings, 'volume');
  const flowing = readings.filter((r) => r.flow_rate !== undefined && r.flow_rate > 0).length;
  return {
    reading_count: readings.length,
    avg_flow: mean(flow),
    min_flow: min(flow),
    max_flow: max(flow),
    stddev_flow: sampleStddev(flow),
    avg_pressure: mean(pressure),
    min_pressure: min(pressure),
    max_pressure: max(pressure),
    uptime_percentage: readings.length === 0 ? 0 : flowing / readings.length,
    avg_temperature: mean(temperature),
    min_temperature: min(temperature),
    max_temperature: max(temperature),
    volume_delta: volume.length === 0 ? 0 : max(volume) - min(volume),
  };
}

/** The window DESIGN.md defines, computed independently of the pipeline's code. */
export function oracleWindow(range: Range, at: number): { start: number; end: number } {
  const pane = { '1h': 60_000, '6h': 900_000, '24h': HOUR, '3d': 6 * HOUR, '7d': 6 * HOUR, '30d': 24 * HOUR }[
    range
  ];
  return { start: Math.floor(at / pane) * pane - RANGE_MS[range], end: at };
}

export function oracleLatest(readings: readonly Reading[]): Record<string, number | string> | undefined {
  if (readings.length === 0) return undefined;
  const newest = readings.reduce((a, b) => (b.timestamp > a.timestamp ? b : a));
  return {
    timestamp: new Date(newest.timestamp).toISOString(),
    flow_rate: newest.flow_rate ?? 0,
    pressure: newest.pressure ?? 0,
    temperature: newest.temperature ?? 0,
    volume: newest.volume ?? 0,
  };
}

export function oracleMetadata(nodeId: string, readings: readonly Reading[]): Record<string, string> {
  const newestWith = (field: 'node_name' | 'node_type' | 'district_id') => {
    let best: Reading | undefined;
    for (const r of readings) {
      if (r[field] !== undefined && (best === undefined || r.timestamp >= best.timestamp)) best = r;
    }
    return best?.[field];
  };
  return {
    node_id: nodeId,
    node_name: newestWith('node_name') ?? nodeId,
    node_type: newestWith('node_type') ?? '',
    district_id: newestWith('district_id') ?? '',
  };
}

export interface OracleSeries {
  timestamps: string[];
  flow_rates: number[];
  pressures: number[];
}

/** Hourly averages over [start, end], one entry per hour with a reading. */
export function oracleSeries(readings: readonly Reading[], start: number, end: number): OracleSeries {
  const hours = new Map<number, Reading[]>();
  for (const r of inWindow(readings, start, end)) {
    const hour = Math.floor(r.timestamp / HOUR) * HOUR;
    hours.set(hour, [...(hours.get(hour) ?? []), r]);
  }
  const series: OracleSeries = { timestamps: [], flow_rates: [], pressures: [] };
  for (const hour of [...hours.keys()].sort((a, b) => a - b)) {
    const group = hours.get(hour) ?? [];
    series.timestamps.push(new Date(hour).toISOString().slice(0, 19).replace('T', ' '));
    series.flow_rates.push(mean(values(group, 'flow_rate')));
    series.pressures.push(mean(values(group, 'pressure')));
  }
  return series;
}

export interface OracleSystem {
  total_nodes: number;
  active_nodes: number;
  avg_pressure: number;
  total_flow: number;
}

/** System metrics from each node's readings in the node's window. */
export function oracleSystem(perNode: readonly Reading[][]): OracleSystem {
  let active = 0;
  let flow = 0;
  const pressures: number[] = [];
  for (const readings of perNode) {
    const m = oracleMetrics(readings);
    if (m.uptime_percentage > 0.1) active++;
    flow += m.avg_flow;
    if (values(readings, 'pressure').length > 0) pressures.push(m.avg_pressure);
  }
  return {
    total_nodes: perNode.length,
    active_nodes: active,
    avg_pressure: mean(pressures),
    total_flow: flow,
  };
}

/**
 * Compares a stored hash with expected values: numbers equal within 1e-9
 * relative (1e-12 absolute near zero), strings exactly. Returns the
 * differences, empty when equal.
 */
export function compareFields(
  label: string,
  stored: Record<string, string>,
  expected: Record<string, number | string>,
): string[] {
  const problems: string[] = [];
  for (const [field, want] of Object.entries(expected)) {
    const got = stored[field];
    if (got === undefined) {
      problems.push(`${label}.${field}: missing (expected ${want})`);
    } else if (typeof want === 'number') {
      const value = Number(got);
      if (!closeEnough(value, want)) problems.push(`${label}.${field}: ${got} ≠ ${want}`);
    } else if (got !== want) {
      problems.push(`${label}.${field}: ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`);
    }
  }
  return problems;
}

export function closeEnough(a: number, b: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return false;
  return Math.abs(a - b) <= Math.max(1e-12, 1e-9 * Math.max(Math.abs(a), Math.abs(b)));
}
