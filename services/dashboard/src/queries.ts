import { RANGES, type Range, SEVERITY_RANK, type Severity } from '@streamgauge/core';
import {
  type AnomalyView,
  type Latest,
  type Metrics,
  minimumNightFlow,
  NODE_STATUSES,
  type NodeStatus,
  nodeStatus,
  type Series,
  type SystemMetrics,
  systemOf,
} from './model.ts';
import type { NodeEntry, ReadModelView } from './view.ts';

/** What the API's answers are computed with, besides the view. */
export interface QuerySettings {
  readonly staleAfterMs: number;
  readonly offlineAfterMs: number;
  /** The leak rule's night, UTC hours [start, end). */
  readonly nightHours: readonly [number, number];
}

/** A parameter the client got wrong: answered 400 with its name. */
export class BadParameter extends Error {
  override readonly name = 'BadParameter';
  readonly parameter: string;
  constructor(parameter: string, message: string) {
    super(`${parameter}: ${message}`);
    this.parameter = parameter;
  }
}

export const NODE_SORTS = [
  'node_id',
  'node_name',
  'district_id',
  'status',
  'age',
  'flow_rate',
  'pressure',
  'avg_flow',
  'avg_pressure',
  'uptime_percentage',
  'reading_count',
  'open_anomalies',
] as const;
export type NodeSort = (typeof NODE_SORTS)[number];

export interface NodeQuery {
  readonly range: Range;
  readonly district?: string;
  readonly status?: NodeStatus;
  readonly q?: string;
  readonly sort: NodeSort;
  readonly order: 'asc' | 'desc';
  readonly offset: number;
  readonly limit: number;
}

export interface LatestView extends Latest {
  readonly age_seconds: number;
}

export function rangeOf(value: unknown, fallback: Range = '24h'): Range {
  if (value === undefined || value === '') return fallback;
  if (!(RANGES as readonly unknown[]).includes(value)) {
    throw new BadParameter('range', `expected one of ${RANGES.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as Range;
}

export function choiceOf<T extends string>(
  name: string,
  value: unknown,
  choices: readonly T[],
  fallback?: T,
): T | undefined {
  if (value === undefined || value === '') return fallback;
  if (!(choices as readonly unknown[]).includes(value)) {
    throw new BadParameter(name, `expected one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

export function integerOf(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new BadParameter(name, `expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** The node list, overview and anomaly list answers, cached per view version and second. */
export class Queries {
  readonly #view: ReadModelView;
  readonly #settings: QuerySettings;
  readonly #cache = new Map<string, unknown>();
  #cacheKey = '';

  constructor(view: ReadModelView, settings: QuerySettings) {
    this.#view = view;
    this.#settings = settings;
  }

  /** Answers depend on the view and on the clock (ages, statuses): cached for the second. */
  #cached<T>(key: string, now: number, compute: () => T): T {
    const generation = `${this.#view.version}:${Math.floor(now / 1000)}`;
    if (generation !== this.#cacheKey) {
      this.#cache.clear();
      this.#cacheKey = generation;
    }
    let value = this.#cache.get(key) as T | undefined;
    if (value === undefined) {
      // Bounded: a client cycling through every filter cannot grow it.
      if (this.#cache.size >= 256) this.#cache.clear();
      value = compute();
      this.#cache.set(key, value);
    }
    return value;
  }

  status(node: NodeEntry, now: number): NodeStatus {
    return nodeStatus(node.latestAt, node.open.length, now, this.#settings);
  }

  #districts: { membership: number; list: string[] } | undefined;

  /** Recomputed only when a node joins, leaves or changes its metadata (not per version). */
  districts(): string[] {
    const membership = this.#view.membership;
    if (this.#districts?.membership !== membership) {
      const all = new Set<string>();
      for (const node of this.#view.nodes.values())
        if (node.metadata.district_id) all.add(node.metadata.district_id);
      this.#districts = { membership, list: [...all].sort() };
    }
    return this.#districts.list;
  }

  overview(range: Range, district: string | undefined, now: number) {
    return this.#cached(`overview:${range}:${district ?? ''}`, now, () => {
      const nodes = this.#inDistrict(district);
      const status: Record<NodeStatus, number> = { ok: 0, stale: 0, offline: 0, anomaly: 0 };
      const open: Record<Severity, number> = { critical: 0, warning: 0, info: 0 };
      let newest: number | undefined;
      for (const node of nodes) {
        status[this.status(node, now)]++;
        for (const a of node.open) open[a.severity]++;
        const t = node.latestAt;
        if (Number.isFinite(t) && (newest === undefined || t > newest)) newest = t;
      }
      const system: SystemMetrics | null =
        district === undefined
          ? (this.#view.system[range] ?? null)
          : systemOf(
              nodes.map((n) => n.metrics[range]),
              now,
            );
      const ageSeconds = newest === undefined ? null : Math.max(0, (now - newest) / 1000);
      return {
        range,
        district: district ?? null,
        generatedAt: new Date(now).toISOString(),
        system,
        status,
        anomalies: { open, openTotal: open.critical + open.warning + open.info },
        freshness: {
          newestReadingAt: newest === undefined ? null : new Date(newest).toISOString(),
          newestReadingAgeSeconds: ageSeconds,
          lag: { aggregator: this.#view.lag.aggregator ?? 0, archiver: this.#view.lag.archiver ?? 0 },
          stale: ageSeconds === null || ageSeconds * 1000 > this.#settings.staleAfterMs,
        },
        districts: this.districts(),
      };
    });
  }

  /** The nodes matching the filter, sorted: computed once per query and second, then paged. */
  nodes(query: NodeQuery, now: number): { total: number; items: NodeEntry[] } {
    const { range, district, status, q, sort, order } = query;
    // The default list needs no filtering or sorting per change: the view keeps it by id.
    if (district === undefined && status === undefined && q === undefined && sort === 'node_id') {
      const all = this.#view.byId();
      const end = Math.max(0, all.length - query.offset);
      const items =
        order === 'asc'
          ? all.slice(query.offset, query.offset + query.limit)
          : all.slice(Math.max(0, end - query.limit), end).reverse();
      return { total: all.length, items };
    }
    const matching = this.#cached(
      `nodes:${range}:${district ?? ''}:${status ?? ''}:${q ?? ''}:${sort}:${order}`,
      now,
      () => {
        const needle = q?.toLowerCase();
        const rows = this.#inDistrict(district).filter(
          (n) =>
            (status === undefined || this.status(n, now) === status) &&
            (needle === undefined ||
              n.id.toLowerCase().includes(needle) ||
              n.metadata.node_name.toLowerCase().includes(needle)),
        );
        const key = sortKey(sort, range, (n) => this.status(n, now), now);
        const direction = order === 'asc' ? 1 : -1;
        const keyed = rows.map((n) => ({ n, k: key(n) }));
        keyed.sort(
          (a, b) => direction * compare(a.k, b.k) || (a.n.id < b.n.id ? -1 : a.n.id > b.n.id ? 1 : 0),
        );
        return keyed.map((x) => x.n);
      },
    );
    return { total: matching.length, items: matching.slice(query.offset, query.offset + query.limit) };
  }

  latestView(node: NodeEntry, now: number): LatestView | null {
    if (node.latest === null) return null;
    return { ...node.latest, age_seconds: Math.max(0, (now - node.latestAt) / 1000) };
  }

  /** `series` null: it could not be read now (Redis away); the rest still answers. */
  summary(node: NodeEntry, range: Range, now: number, series: Series | null) {
    return {
      node_id: node.id,
      ...node.metadata,
      status: this.status(node, now),
      latest: this.latestView(node, now),
      metrics: node.metrics[range] ?? null,
      open_anomalies: node.open.length,
      sparkline: series === null ? null : lastDay(series, now),
    };
  }

  detail(node: NodeEntry, now: number, series: Series) {
    const metrics: Partial<Record<Range, Metrics | null>> = {};
    for (const r of RANGES) metrics[r] = node.metrics[r] ?? null;
    const anomalies = this.anomalies({ node: node.id, limit: 100 });
    return {
      node_id: node.id,
      ...node.metadata,
      status: this.status(node, now),
      latest: this.latestView(node, now),
      metrics,
      series,
      minimumNightFlow: minimumNightFlow(series, this.#settings.nightHours),
      anomalies,
    };
  }

  anomalies(filter: {
    type?: string;
    severity?: string;
    district?: string;
    node?: string;
    limit: number;
    state?: 'open' | 'recent' | 'all';
  }): { open: AnomalyView[]; recent: AnomalyView[] } {
    const keep = (a: AnomalyView) =>
      (filter.type === undefined || a.type === filter.type) &&
      (filter.severity === undefined || a.severity === filter.severity) &&
      (filter.district === undefined || a.district_id === filter.district) &&
      (filter.node === undefined || a.node_id === filter.node);
    const state = filter.state ?? 'all';
    const open =
      state === 'recent'
        ? []
        : this.#cached('open-anomalies', Date.now(), () =>
            this.#view
              .openAnomalies()
              .sort(
                (a, b) =>
                  SEVERITY_RANK[b.severity as Severity] - SEVERITY_RANK[a.severity as Severity] ||
                  (a.opened_at < b.opened_at ? 1 : -1),
              ),
          )
            .filter(keep)
            .slice(0, filter.limit);
    const recent =
      state === 'open'
        ? []
        : this.#cached('recent-anomalies', Date.now(), () => this.#view.recentAnomalies())
            .filter(keep)
            .slice(0, filter.limit);
    return { open, recent };
  }

  /** Every node (the view's list by id, not a copy), or a district's. */
  #inDistrict(district: string | undefined): readonly NodeEntry[] {
    const all = this.#view.byId();
    if (district === undefined) return all;
    return this.#cached(`district:${district}`, Date.now(), () =>
      all.filter((n) => n.metadata.district_id === district),
    );
  }
}

/** The hourly mean flow of the series' hours that overlap the last 24 hours (an hour with no reading has no entry). */
function lastDay(series: Series, now: number): number[] {
  // An hour starting after now − 25 h ends after now − 24 h.
  const since = new Date(now - 25 * 3_600_000).toISOString();
  const first = series.timestamps.findIndex((t) => t > since);
  return first < 0 ? [] : series.flow_rates.slice(first);
}

type Key = number | string;

function compare(a: Key, b: Key): number {
  if (typeof a === 'number' && typeof b === 'number') {
    // Missing values (NaN) go last whichever the order.
    if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
    if (Number.isNaN(b)) return -1;
    return a - b;
  }
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

const STATUS_RANK: Record<NodeStatus, number> = { anomaly: 0, offline: 1, stale: 2, ok: 3 };

function sortKey(
  sort: NodeSort,
  range: Range,
  status: (n: NodeEntry) => NodeStatus,
  now: number,
): (n: NodeEntry) => Key {
  const metric = (field: string) => (n: NodeEntry) => {
    const value = n.metrics[range]?.[field];
    return value === undefined ? Number.NaN : Number(value);
  };
  switch (sort) {
    case 'node_id':
      return (n) => n.id;
    case 'node_name':
      return (n) => n.metadata.node_name.toLowerCase();
    case 'district_id':
      return (n) => n.metadata.district_id;
    case 'status':
      return (n) => STATUS_RANK[status(n)];
    case 'age':
      return (n) => now - n.latestAt;
    case 'flow_rate':
      return (n) => n.latest?.flow_rate ?? Number.NaN;
    case 'pressure':
      return (n) => n.latest?.pressure ?? Number.NaN;
    case 'open_anomalies':
      return (n) => n.open.length;
    default:
      return metric(sort);
  }
}

export { NODE_STATUSES };
