/**
 * The JSON the page reads, as docs/dashboard.md describes it. Fields the
 * server may leave out (absent keys, older records) are optional or
 * nullable so that every use has to handle them.
 */

export const RANGES: readonly string[] = ['1h', '6h', '24h', '3d', '7d', '30d'];
export const DEFAULT_RANGE = '24h';

export const NODE_STATUSES = ['ok', 'stale', 'offline', 'anomaly'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

export const SEVERITIES = ['critical', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The detector's types (docs/anomalies.md); the filter also offers any other type it sees. */
export const ANOMALY_TYPES: readonly string[] = [
  'low_pressure',
  'high_pressure',
  'high_flow',
  'low_flow',
  'no_flow',
  'offline',
  'stuck_sensor',
  'gradual_leak',
];

export interface DashboardConfig {
  readonly timeZone: string;
  readonly ranges: readonly string[];
  readonly staleAfterSeconds: number;
  readonly offlineAfterSeconds: number;
  readonly authRequired: boolean;
}

export interface SystemMetrics {
  readonly total_nodes?: number | null;
  readonly active_nodes?: number | null;
  readonly avg_pressure?: number | null;
  readonly total_flow?: number | null;
  readonly updated_at?: string | null;
}

export interface Overview {
  readonly range: string;
  readonly district: string | null;
  readonly generatedAt: string;
  readonly system: SystemMetrics | null;
  readonly status: Partial<Record<NodeStatus, number>>;
  readonly anomalies: { readonly open: Partial<Record<Severity, number>>; readonly openTotal: number };
  readonly freshness: {
    readonly newestReadingAt: string | null;
    readonly newestReadingAgeSeconds: number | null;
    readonly lag: Readonly<Record<string, number>>;
    readonly stale: boolean;
  };
  readonly districts: readonly string[];
}

export interface Latest {
  readonly timestamp: string;
  readonly age_seconds: number;
  readonly flow_rate?: number | null;
  readonly pressure?: number | null;
  readonly temperature?: number | null;
  readonly volume?: number | null;
}

export interface Metrics {
  readonly reading_count?: number | null;
  readonly avg_flow?: number | null;
  readonly min_flow?: number | null;
  readonly max_flow?: number | null;
  readonly stddev_flow?: number | null;
  readonly avg_pressure?: number | null;
  readonly min_pressure?: number | null;
  readonly max_pressure?: number | null;
  readonly uptime_percentage?: number | null;
  readonly avg_temperature?: number | null;
  readonly min_temperature?: number | null;
  readonly max_temperature?: number | null;
  readonly volume_delta?: number | null;
  readonly window_start?: string | null;
  readonly window_end?: string | null;
  readonly updated_at?: string | null;
}

export interface NodeSummary {
  readonly node_id: string;
  readonly node_name: string;
  readonly node_type: string;
  readonly district_id: string;
  readonly status: NodeStatus;
  readonly latest: Latest | null;
  readonly metrics: Metrics | null;
  readonly open_anomalies: number;
  readonly sparkline?: readonly number[] | null;
}

export interface NodePage {
  readonly range: string;
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly items: readonly NodeSummary[];
}

export interface Anomaly {
  readonly id: string;
  readonly node_id: string;
  readonly district_id?: string | null;
  readonly type: string;
  readonly severity: string;
  readonly opened_at?: string | null;
  readonly last_at?: string | null;
  readonly closed_at?: string | null;
  readonly value?: number | null;
  readonly expected_low?: number | null;
  readonly expected_high?: number | null;
  readonly deviation?: number | null;
  readonly unit?: string | null;
  readonly flow_rate?: number | null;
  readonly pressure?: number | null;
  readonly rules?: readonly string[] | null;
}

export interface AnomalyLists {
  readonly open?: readonly Anomaly[];
  readonly recent?: readonly Anomaly[];
}

export interface Series {
  readonly timestamps: readonly string[];
  readonly flow_rates: readonly (number | null)[];
  readonly pressures: readonly (number | null)[];
}

export interface MinimumNightFlow {
  readonly hours?: readonly number[] | null;
  readonly nights?: readonly { readonly date: string; readonly flow: number | null }[] | null;
  readonly last?: number | null;
}

export interface NodeDetail {
  readonly node_id: string;
  readonly node_name: string;
  readonly node_type: string;
  readonly district_id: string;
  readonly status: NodeStatus;
  readonly latest: Latest | null;
  readonly metrics: Readonly<Record<string, Metrics | null>> | null;
  readonly series: Series | null;
  readonly minimumNightFlow: MinimumNightFlow | null;
  readonly anomalies: AnomalyLists | null;
}

/** The data of a `change` event (the aggregator's notice). */
export interface ChangeEvent {
  readonly cause?: string;
  readonly keys?: string;
  readonly nodes?: readonly string[];
  readonly ranges?: readonly string[];
  readonly at?: string;
}

/** What a view is told when the server says something changed. */
export type LiveEvent =
  | { readonly kind: 'change'; readonly change: ChangeEvent }
  | { readonly kind: 'anomalies' };
