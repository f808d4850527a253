import { isoTime } from './timestamp.ts';
import type {
  HourlyPoint,
  LatestValues,
  NodeMetadata,
  NodeWindows,
  WindowSummary,
} from './window/nodeWindows.ts';
import { hasMeasurement, PANE, type PaneMeasurement, STAT_AT, type StatName } from './window/pane.ts';

/**
 * The values of the dashboard's keys (DATA_MODEL.md), computed from window
 * summaries. Pure: the Redis writer only stores what these return.
 *
 * Numbers are decimal strings at full precision (JavaScript's shortest
 * round-trip form); a value with no data is "0", as the old system wrote it.
 */
export function decimal(x: number): string {
  return Number.isFinite(x) ? String(x) : '0';
}

/** `format`, remembering up to `size` instants: for times every node written shares. */
function memoized(format: (ms: number) => string, size: number): (ms: number) => string {
  const cache = new Map<number, string>();
  return (ms) => {
    let text = cache.get(ms);
    if (text === undefined) {
      if (cache.size >= size) cache.clear();
      text = format(ms);
      cache.set(ms, text);
    }
    return text;
  };
}

// Every node written in one flush shares T and each range's window start:
// format each instant once, not once per node.
const iso = memoized(isoTime, 256);

function stat(pane: Float64Array, m: PaneMeasurement, field: StatName): number {
  const at = STAT_AT[m][field];
  if (at === undefined) throw new Error(`a pane keeps no ${field} of ${m}`);
  return pane[at] as number;
}

function has(pane: Float64Array, m: PaneMeasurement): boolean {
  return hasMeasurement(pane, 0, m);
}

/** Mean of a measurement over the summary, or undefined without data. */
export function meanOf(pane: Float64Array, m: PaneMeasurement): number | undefined {
  return has(pane, m) ? stat(pane, m, 'mean') : undefined;
}

export function uptimeOf(pane: Float64Array): number {
  const count = pane[PANE.count] as number;
  return count === 0 ? 0 : (pane[PANE.flowing] as number) / count;
}

/**
 * A hash as its field names and its values in that order: what the
 * dashboard's key writer sends, built without an object keyed by field
 * (which the writer had to take apart again). Only for values that cannot
 * hold FIELD_END (numbers, times); a hash of free text is a plain record.
 */
export class PackedHash {
  readonly fields: readonly string[];
  readonly values: readonly string[];

  /**
   * Throws a RangeError when the values do not pair with the fields or one
   * holds FIELD_END: the writer joins the values as they are, and one value
   * too many or cut in two would shift every hash after it in the call.
   */
  constructor(fields: readonly string[], values: readonly string[]) {
    if (values.length !== fields.length) {
      throw new RangeError(`a packed hash of ${fields.length} fields got ${values.length} values`);
    }
    for (const value of values) {
      if (value.includes(FIELD_END))
        throw new RangeError('a packed hash value holds the unit separator (\\x1f)');
    }
    this.fields = fields;
    this.values = values;
  }

  /** The same hash as a record. */
  toRecord(): Record<string, string> {
    const record: Record<string, string> = {};
    this.fields.forEach((field, i) => {
      record[field] = this.values[i] as string;
    });
    return record;
  }
}

/**
 * What the writer puts after each value of a hash it sends joined (the
 * ASCII unit separator): no number or time holds it.
 */
export const FIELD_END = '\x1f';

/** A metrics hash's fields, in the order of its packed values. */
export const METRICS_FIELDS: readonly string[] = [
  'reading_count',
  'avg_flow',
  'min_flow',
  'max_flow',
  'stddev_flow',
  'avg_pressure',
  'min_pressure',
  'max_pressure',
  'uptime_percentage',
  'avg_temperature',
  'min_temperature',
  'max_temperature',
  'volume_delta',
  'window_start',
  'window_end',
  'updated_at',
];

/** `node:{id}:metrics:{range}`, packed (METRICS_FIELDS). */
export function packedMetrics(summary: WindowSummary, updatedAt: number): PackedHash {
  const p = summary.pane;
  const n = stat(p, 'flow', 'n');
  const value = (m: PaneMeasurement, field: 'mean' | 'min' | 'max') =>
    has(p, m) ? decimal(stat(p, m, field)) : '0';
  return new PackedHash(METRICS_FIELDS, [
    decimal(p[PANE.count] as number),
    value('flow', 'mean'),
    value('flow', 'min'),
    value('flow', 'max'),
    // Sample standard deviation, as SQL's STDDEV.
    n >= 2 ? decimal(Math.sqrt(Math.max(0, stat(p, 'flow', 'm2')) / (n - 1))) : '0',
    value('pressure', 'mean'),
    value('pressure', 'min'),
    value('pressure', 'max'),
    // A fraction (0..1) despite its name: the dashboard compares it with 0.1.
    decimal(uptimeOf(p)),
    value('temperature', 'mean'),
    value('temperature', 'min'),
    value('temperature', 'max'),
    has(p, 'volume') ? decimal(stat(p, 'volume', 'max') - stat(p, 'volume', 'min')) : '0',
    iso(summary.bounds.start),
    iso(summary.end),
    iso(updatedAt),
  ]);
}

/** `node:{id}:metrics:{range}`. */
export function metricsHash(summary: WindowSummary, updatedAt: number): Record<string, string> {
  return packedMetrics(summary, updatedAt).toRecord();
}

/** A `latest` hash's fields, in the order of its packed values. */
export const LATEST_FIELDS: readonly string[] = [
  'timestamp',
  'flow_rate',
  'pressure',
  'temperature',
  'volume',
];

/** `node:{id}:latest`, packed (LATEST_FIELDS). */
export function packedLatest(latest: LatestValues): PackedHash {
  return new PackedHash(LATEST_FIELDS, [
    isoTime(latest.timestamp),
    decimal(latest.flow_rate ?? 0),
    decimal(latest.pressure ?? 0),
    decimal(latest.temperature ?? 0),
    decimal(latest.volume ?? 0),
  ]);
}

/** `node:{id}:latest`: the values of the reading with the newest event time. */
export function latestHash(latest: LatestValues): Record<string, string> {
  return packedLatest(latest).toRecord();
}

/**
 * `node:{id}:metadata`. A node whose readings never carried a name is named
 * by its id; unknown type and district are empty strings.
 */
export function metadataHash(nodeId: string, metadata: NodeMetadata): Record<string, string> {
  return {
    node_id: nodeId,
    node_name: metadata.node_name?.value ?? nodeId,
    node_type: metadata.node_type?.value ?? '',
    district_id: metadata.district_id?.value ?? '',
  };
}

/** `YYYY-MM-DD HH:MM:SS` in UTC, the series' timestamp format. */
export function seriesTime(ms: number): string {
  return isoTime(ms).slice(0, 19).replace('T', ' ');
}

/**
 * `node:{id}:timeseries:7d`: hourly averages, one entry per hour with a
 * reading. The same text as `JSON.stringify({ timestamps, flow_rates,
 * pressures })`, written out: JSON.stringify took about ten times as long
 * for an array of doubles as joining them (the series was most of a full
 * metrics round's time).
 */
export function timeseriesJson(points: readonly HourlyPoint[]): string {
  const text = new SeriesText();
  for (const point of points) text.add(point.at, point.flow, point.pressure);
  return text.toString();
}

/** A node's `timeseries:7d` at `at`, as `timeseriesJson(windows.hourlySeries(at))` without the points. */
export function nodeSeriesJson(windows: NodeWindows, at: number): string {
  const text = new SeriesText();
  windows.forEachSeriesHour(at, text.add);
  return text.toString();
}

class SeriesText {
  readonly #timestamps: string[] = [];
  readonly #flows: string[] = [];
  readonly #pressures: string[] = [];

  readonly add = (start: number, flow: number | undefined, pressure: number | undefined): void => {
    this.#timestamps.push(seriesTimeJson(start));
    this.#flows.push(jsonNumber(flow ?? 0));
    this.#pressures.push(jsonNumber(pressure ?? 0));
  };

  toString(): string {
    return `{"timestamps":[${this.#timestamps.join(',')}],"flow_rates":[${this.#flows.join(',')}],"pressures":[${this.#pressures.join(',')}]}`;
  }
}

// Every node's series has the same hours: format each hour once (a week is
// 169 of them), not 169 times per node written; quoted, as JSON holds it.
// Direct-mapped by hour (a Map's lookup was a tenth of the series' time).
const SERIES_TIMES = 1024;
const seriesTimeAt = new Float64Array(SERIES_TIMES).fill(Number.NaN);
const seriesTimeText = new Array<string>(SERIES_TIMES).fill('');

function seriesTimeJson(ms: number): string {
  const slot = Math.floor(ms / 3_600_000) & (SERIES_TIMES - 1);
  if (seriesTimeAt[slot] !== ms) {
    seriesTimeText[slot] = JSON.stringify(seriesTime(ms));
    seriesTimeAt[slot] = ms;
  }
  return seriesTimeText[slot] as string;
}

/** A number as JSON.stringify writes it. */
function jsonNumber(x: number): string {
  return Number.isFinite(x) ? String(x) : 'null';
}

/** What one node contributes to `system:metrics:{range}`. */
export interface NodeContribution {
  readonly avgFlow: number | undefined;
  readonly avgPressure: number | undefined;
  readonly uptime: number;
}

export function contributionOf(summary: WindowSummary): NodeContribution {
  return {
    avgFlow: meanOf(summary.pane, 'flow'),
    avgPressure: meanOf(summary.pane, 'pressure'),
    uptime: uptimeOf(summary.pane),
  };
}

/** What `system:metrics:{range}` is computed from: sums over nodes, so partial sums add up. */
export interface SystemSums {
  readonly total: number;
  readonly active: number;
  readonly flow: number;
  readonly pressureSum: number;
  readonly pressureNodes: number;
}

export const EMPTY_SUMS: SystemSums = { total: 0, active: 0, flow: 0, pressureSum: 0, pressureNodes: 0 };

export function systemSums(contributions: Iterable<NodeContribution>): SystemSums {
  const sums = { ...EMPTY_SUMS };
  for (const c of contributions) addInto(sums, c);
  return sums;
}

export function addToSums(sums: SystemSums, c: NodeContribution): SystemSums {
  const next = { ...sums };
  addInto(next, c);
  return next;
}

/**
 * Adds a node's contribution to sums in place: a pass over 100,000 nodes
 * that made an object per node took ~0.2 s, every second (the metrics rounds).
 */
export function addInto(sums: { -readonly [K in keyof SystemSums]: number }, c: NodeContribution): void {
  const { avgFlow, avgPressure } = c;
  addValuesInto(
    sums,
    avgFlow ?? 0,
    avgFlow !== undefined,
    avgPressure ?? 0,
    avgPressure !== undefined,
    c.uptime,
  );
}

/**
 * `addInto` from a contribution's values kept apart from a record, each
 * mean with whether the node has one: a number-or-undefined that is not a
 * small integer is a heap number, made anew per node and pass.
 */
export function addValuesInto(
  sums: { -readonly [K in keyof SystemSums]: number },
  avgFlow: number,
  hasFlow: boolean,
  avgPressure: number,
  hasPressure: boolean,
  uptime: number,
): void {
  sums.total += 1;
  sums.active += uptime > 0.1 ? 1 : 0;
  sums.flow += hasFlow ? avgFlow : 0;
  sums.pressureSum += hasPressure ? avgPressure : 0;
  sums.pressureNodes += hasPressure ? 1 : 0;
}

/**
 * `system:metrics:{range}`: `total_nodes` counts known nodes, `active_nodes`
 * those with uptime above 0.1, `avg_pressure` is the mean of the nodes'
 * average pressure (nodes with pressure data), `total_flow` the sum of the
 * nodes' average flow (L/s, not a volume).
 */
export function systemMetricsHash(sums: SystemSums, updatedAt: number): Record<string, string> {
  return {
    total_nodes: String(sums.total),
    active_nodes: String(sums.active),
    avg_pressure: sums.pressureNodes === 0 ? '0' : decimal(sums.pressureSum / sums.pressureNodes),
    total_flow: decimal(sums.flow),
    updated_at: iso(updatedAt),
  };
}
