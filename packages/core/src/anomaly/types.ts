/**
 * Anomaly kinds. The first five are the dashboard's (DATA_MODEL.md); the
 * rest are ours. An absolute threshold breach reports as the dashboard's
 * type it matches (pressure below its minimum is `low_pressure`), with
 * `rule: 'threshold'`, so one condition is one record whatever rule saw it.
 */
export const ANOMALY_TYPES = [
  'high_flow',
  'low_flow',
  'no_flow',
  'high_pressure',
  'low_pressure',
  'offline',
  'stuck_sensor',
  'gradual_leak',
] as const;
export type AnomalyType = (typeof ANOMALY_TYPES)[number];

export type Severity = 'critical' | 'warning' | 'info';

/**
 * DATA_MODEL.md fixes three (low pressure is critical, high flow a warning,
 * low flow information); the others follow what an operator must do: a
 * pressure surge or a flow stop is checked today, a silent or stuck
 * logger is a maintenance job, a slowly growing night flow is the costliest
 * leak there is.
 */
export const SEVERITY: Record<AnomalyType, Severity> = {
  low_pressure: 'critical',
  high_flow: 'warning',
  low_flow: 'info',
  high_pressure: 'warning',
  no_flow: 'warning',
  offline: 'warning',
  stuck_sensor: 'info',
  gradual_leak: 'warning',
};

export const SEVERITY_RANK: Record<Severity, number> = { critical: 3, warning: 2, info: 1 };

/** The severity of a breach that is material but not strong: one level below its type's. */
export const DEMOTED: Record<Severity, Severity> = { critical: 'warning', warning: 'info', info: 'info' };

/**
 * Rules whose breach is persistence by construction (hours of silence, of a
 * frozen value, nights in a row): one breach opens. The others need
 * `confirmReadings` breaching readings in a row.
 */
export const SELF_CONFIRMING: ReadonlySet<AnomalyRule> = new Set(['offline', 'stuck', 'night_flow']);

/** Which rule saw the condition. */
export type AnomalyRule = 'sigma' | 'diurnal' | 'threshold' | 'no_flow' | 'offline' | 'stuck' | 'night_flow';

/** One condition breaching at one moment: the value seen and the range expected. */
export interface Breach {
  readonly type: AnomalyType;
  readonly rule: AnomalyRule;
  /** The measured value (the night's minimum flow for a leak, the silence in ms for offline). */
  readonly value: number;
  readonly expected: { readonly low?: number; readonly high?: number };
  /** 0..1: how anomalous (the reading's calibrated score for a statistical rule; 1 for a rule breached by construction). */
  readonly score: number;
  /**
   * Beyond the rule's material deviation by a wide margin (a pressure well
   * under its limit, not a few thousandths): only a strong breach, once
   * confirmed, opens with its type's full severity; others one level lower.
   */
  readonly strong: boolean;
  /**
   * The reading was unlikely for this node (its calibrated score reached the
   * alarm level). A statistical rule's breach run opens only if one of its
   * readings was; other rules' breaches always are.
   */
  readonly unlikely: boolean;
}

/** A breach run not yet confirmed (see `AnomalySettings.confirmReadings`). */
export interface PendingAnomaly {
  readonly type: AnomalyType;
  readonly since: number;
  count: number;
  strong: boolean;
  unlikely: boolean;
  rules: AnomalyRule[];
  values: { first: number; last: number; min: number; max: number; count: number };
  reading?: { flow_rate?: number; pressure?: number };
}

/** An anomaly while it lasts: one record, from open to close. */
export interface AnomalyRecord {
  /** `node:type:opened_at`: stable, so a replayed event is recognisably the same. */
  readonly id: string;
  readonly node_id: string;
  readonly type: AnomalyType;
  readonly severity: Severity;
  readonly rules: AnomalyRule[];
  /** Event time (ms) of the reading (or tick) that opened it. */
  readonly opened_at: number;
  /** Event time of the last breach seen. */
  last_at: number;
  closed_at?: number;
  /** Values seen while open. */
  values: { first: number; last: number; min: number; max: number; count: number };
  /** The expected range at the last breach. */
  expected: { low?: number; high?: number };
  /** The reading that opened it (absent when the clock did: offline). */
  reading?: { flow_rate?: number; pressure?: number };
  /** Since when the condition has been clear (closing after the hysteresis time). */
  clear_since?: number;
}

export interface AnomalyEvent {
  readonly event: 'open' | 'close';
  readonly anomaly: AnomalyRecord;
}
