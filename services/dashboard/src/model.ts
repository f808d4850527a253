import {
  type AnomalyRecord,
  type AnomalyType,
  type Range,
  systemMetricsHash,
  systemSums,
} from '@streamgauge/core';

/**
 * The read model's keys as the API serves them: Redis' decimal strings as
 * numbers, times as ISO-8601. Pure: no I/O.
 */

export interface Latest {
  readonly timestamp: string;
  readonly flow_rate: number;
  readonly pressure: number;
  readonly temperature: number;
  readonly volume: number;
}

export type Metrics = Readonly<Record<string, number | string>>;

export interface SystemMetrics {
  readonly total_nodes: number;
  readonly active_nodes: number;
  readonly avg_pressure: number;
  readonly total_flow: number;
  readonly updated_at: string | null;
}

export interface Series {
  readonly timestamps: string[];
  readonly flow_rates: number[];
  readonly pressures: number[];
}

export interface NodeMetadata {
  readonly node_name: string;
  readonly node_type: string;
  readonly district_id: string;
}

export type NodeStatus = 'ok' | 'stale' | 'offline' | 'anomaly';
export const NODE_STATUSES: readonly NodeStatus[] = ['ok', 'stale', 'offline', 'anomaly'];

const TEXT_FIELDS = new Set(['window_start', 'window_end', 'updated_at']);

/** A hash as HGETALL returns it, `{}` when the key is absent. */
type Hash = Record<string, string>;

export function parseLatest(hash: Hash): Latest | null {
  if (hash.timestamp === undefined) return null;
  return {
    timestamp: hash.timestamp,
    flow_rate: Number(hash.flow_rate ?? 0),
    pressure: Number(hash.pressure ?? 0),
    temperature: Number(hash.temperature ?? 0),
    volume: Number(hash.volume ?? 0),
  };
}

/**
 * Whether two parsed values hold the same fields and values (flat records of
 * strings, numbers and null): the view keeps the object it has when a
 * re-read brings nothing new, so the refresh leaves no new objects to survive
 * the young-generation collections.
 */
export function sameFields<T extends object>(held: T | null | undefined, read: T | null): boolean {
  if (held === read) return true;
  if (held === null || held === undefined || read === null) return false;
  const a = held as Record<string, unknown>;
  const b = read as Record<string, unknown>;
  let fields = 0;
  for (const field in b) {
    if (!Object.is(a[field], b[field])) return false;
    fields++;
  }
  for (const _ in a) fields--;
  return fields === 0;
}

export function parseMetrics(hash: Hash): Metrics | null {
  if (Object.keys(hash).length === 0) return null;
  const metrics: Record<string, number | string> = {};
  for (const [field, value] of Object.entries(hash)) {
    metrics[field] = TEXT_FIELDS.has(field) ? value : Number(value);
  }
  return metrics;
}

export function parseSystem(hash: Hash): SystemMetrics | null {
  if (Object.keys(hash).length === 0) return null;
  return {
    total_nodes: Number(hash.total_nodes ?? 0),
    active_nodes: Number(hash.active_nodes ?? 0),
    avg_pressure: Number(hash.avg_pressure ?? 0),
    total_flow: Number(hash.total_flow ?? 0),
    updated_at: hash.updated_at ?? null,
  };
}

export function parseMetadata(nodeId: string, hash: Hash): NodeMetadata {
  return {
    node_name: hash.node_name || nodeId,
    node_type: hash.node_type ?? '',
    district_id: hash.district_id ?? '',
  };
}

/** `node:{id}:timeseries:7d`: its "YYYY-MM-DD HH:MM:SS" UTC hours as ISO-8601. */
export function parseSeries(json: string | null): Series {
  if (json === null) return { timestamps: [], flow_rates: [], pressures: [] };
  const raw = JSON.parse(json) as { timestamps?: string[]; flow_rates?: number[]; pressures?: number[] };
  return {
    timestamps: (raw.timestamps ?? []).map((t) => `${t.replace(' ', 'T')}.000Z`),
    flow_rates: (raw.flow_rates ?? []).map(Number),
    pressures: (raw.pressures ?? []).map(Number),
  };
}

/** Open anomalies first decide; then the age of the newest reading (`latestAt`, ms; NaN: none). */
export function nodeStatus(
  latestAt: number,
  openAnomalies: number,
  now: number,
  limits: { staleAfterMs: number; offlineAfterMs: number },
): NodeStatus {
  if (openAnomalies > 0) return 'anomaly';
  if (Number.isNaN(latestAt)) return 'offline';
  const age = now - latestAt;
  if (age > limits.offlineAfterMs) return 'offline';
  if (age > limits.staleAfterMs) return 'stale';
  return 'ok';
}

/**
 * `system:metrics` for a subset of nodes (a district), by the aggregator's
 * own rules (core's systemSums). The hash has no pressure count: a node
 * whose average, minimum and maximum pressure are all 0 counts as having no
 * pressure data, as a node without pressure readings writes them.
 */
export function systemOf(metrics: readonly (Metrics | null | undefined)[], now: number): SystemMetrics {
  const sums = systemSums(
    metrics.map((m) => {
      const pressure = m?.avg_pressure === undefined ? 0 : Number(m.avg_pressure);
      const hasPressure =
        m !== null &&
        m !== undefined &&
        (pressure !== 0 || Number(m.max_pressure ?? 0) !== 0 || Number(m.min_pressure ?? 0) !== 0);
      return {
        avgFlow: m === null || m === undefined ? undefined : Number(m.avg_flow ?? 0),
        avgPressure: hasPressure ? pressure : undefined,
        uptime: m === null || m === undefined ? 0 : Number(m.uptime_percentage ?? 0),
      };
    }),
  );
  return parseSystem(systemMetricsHash(sums, now)) as SystemMetrics;
}

/** Per night of the series, the lowest hourly mean flow in the leak rule's night hours (UTC), newest last. */
export function minimumNightFlow(
  series: Series,
  hours: readonly [number, number],
): { hours: readonly [number, number]; nights: { date: string; flow: number }[]; last: number | null } {
  const byNight = new Map<string, number>();
  series.timestamps.forEach((timestamp, i) => {
    const hour = Number(timestamp.slice(11, 13));
    if (hour < hours[0] || hour >= hours[1]) return;
    const date = timestamp.slice(0, 10);
    const flow = series.flow_rates[i] ?? 0;
    byNight.set(date, Math.min(byNight.get(date) ?? Number.POSITIVE_INFINITY, flow));
  });
  const nights = [...byNight]
    .map(([date, flow]) => ({ date, flow }))
    .sort((a, b) => (a.date < b.date ? -1 : 1));
  return { hours, nights, last: nights.at(-1)?.flow ?? null };
}

/** What an anomaly's value is measured in. */
export function unitOf(type: AnomalyType | string): string | null {
  if (type === 'low_pressure' || type === 'high_pressure') return 'bar';
  if (type === 'offline') return 'ms';
  if (type === 'stuck_sensor') return null;
  return 'L/s';
}

/** Below the expected range: negative; above: positive; inside or unknown: 0. */
export function deviationOf(
  value: number,
  low: number | null | undefined,
  high: number | null | undefined,
): number {
  if (low !== null && low !== undefined && value < low) return value - low;
  if (high !== null && high !== undefined && value > high) return value - high;
  return 0;
}

export interface AnomalyView {
  readonly id: string;
  readonly node_id: string;
  readonly district_id: string;
  readonly type: string;
  readonly severity: string;
  readonly opened_at: string;
  readonly last_at?: string;
  readonly closed_at?: string;
  readonly value: number;
  readonly expected_low: number | null;
  readonly expected_high: number | null;
  readonly deviation: number;
  readonly unit: string | null;
  readonly flow_rate: number;
  readonly pressure: number;
  readonly rules: readonly string[];
}

/** An open anomaly (`node:{id}:anomalies`): its latest value against the range expected then. */
export function openAnomalyView(record: AnomalyRecord, district: string): AnomalyView {
  const low = record.expected.low ?? null;
  const high = record.expected.high ?? null;
  return {
    id: record.id,
    node_id: record.node_id,
    district_id: district,
    type: record.type,
    severity: record.severity,
    opened_at: new Date(record.opened_at).toISOString(),
    last_at: new Date(record.last_at).toISOString(),
    value: record.values.last,
    expected_low: low,
    expected_high: high,
    deviation: deviationOf(record.values.last, low, high),
    unit: unitOf(record.type),
    flow_rate: record.reading?.flow_rate ?? 0,
    pressure: record.reading?.pressure ?? 0,
    rules: record.rules,
  };
}

/** An entry of `anomalies:recent` (as the anomaly opened). */
export function recentAnomalyView(entry: Record<string, unknown>, district: string): AnomalyView {
  const value = Number(entry.value ?? 0);
  const low =
    entry.expected_low === null || entry.expected_low === undefined ? null : Number(entry.expected_low);
  const high =
    entry.expected_high === null || entry.expected_high === undefined ? null : Number(entry.expected_high);
  const type = String(entry.anomaly_type ?? '');
  return {
    id: String(entry.id ?? ''),
    node_id: String(entry.node_id ?? ''),
    district_id: district,
    type,
    severity: String(entry.severity ?? ''),
    opened_at: `${String(entry.timestamp ?? '').replace(' ', 'T')}.000Z`,
    value,
    expected_low: low,
    expected_high: high,
    deviation: deviationOf(value, low, high),
    unit: unitOf(type),
    flow_rate: Number(entry.flow_rate ?? 0),
    pressure: Number(entry.pressure ?? 0),
    rules: Array.isArray(entry.rules) ? (entry.rules as string[]) : [],
  };
}

export type { Range };
