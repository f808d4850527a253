/** An allowed range; a value outside it breaches. */
export interface Bounds {
  readonly min?: number;
  readonly max?: number;
}

/** Absolute limits for one node, one node type, or every node. */
export interface ThresholdRule {
  readonly flow_rate?: Bounds;
  readonly pressure?: Bounds;
}

/**
 * Keys: `*` (every node), `type:<node_type>`, `node:<node_id>`; the most
 * specific rule that names a measurement wins for it.
 */
export type Thresholds = Readonly<Record<string, ThresholdRule>>;

export interface AnomalySettings {
  /** The dashboard's σ rule: the previous N readings plus the current one. */
  readonly windowReadings: number;
  readonly sigma: number;
  /**
   * A σ breach must also differ from the window's mean by this much: at
   * night, when flow barely moves, 3σ is a few hundredths of a L/s.
   */
  readonly minDeviation: { readonly flow_rate: number; readonly pressure: number };
  /** `high_flow` against the same hour of previous days: deviations, and relative rise, beyond the hour's mean. */
  readonly diurnalSigma: number;
  readonly diurnalRise: number;
  /** Days of history an hour needs before it is judged. */
  readonly diurnalDays: number;
  /** `no_flow`: flow is 0 while the window's mean flow exceeds this (L/s). */
  readonly noFlowMean: number;
  readonly thresholds: Thresholds;
  /** `stuck_sensor`: the same non-zero value for this long, over at least `stuckReadings` readings. */
  readonly stuckMs: number;
  readonly stuckReadings: number;
  /** `offline`: silent for this many usual intervals, and at least `offlineMinMs`. */
  readonly offlineFactor: number;
  readonly offlineMinMs: number;
  /** Hysteresis: an anomaly closes once its condition has been clear this long. */
  readonly clearMs: number;
  /**
   * The calibrated score (0..1, see ValueScore) from which a reading starts
   * an anomalous event; `detect --as value` names such readings
   * `high_value` or `low_value`.
   */
  readonly alarmScore: number;
  /**
   * A reading is unlikely for its node when its tail probability (level 1
   * of the score, corrected for the number of views) is below this. A
   * statistical rule's breach (σ, same hour, no flow) opens an anomaly only
   * if a reading of its run was unlikely.
   */
  readonly unlikelyProbability: number;
  /**
   * A node's detector state (scores included) is persisted once per this
   * many readings (its lifecycle with every commit while it has an anomaly
   * open or pending), and not more often than once per `checkpointMs` of
   * the caller's time: a crash costs a node at most this many readings of
   * learning, or those of the last `checkpointMs` when it read faster.
   */
  readonly checkpointReadings: number;
  /**
   * At most one checkpoint of a node's learning (state, scores) this often
   * (NodeDetector.checkpoint's `now`): a node catching up after an outage,
   * or read back by a replay, reads its 64 readings in seconds, and each
   * checkpoint is ~10 KB (docs/anomalies.md).
   */
  readonly checkpointMs: number;
  /** Nor when it is within this many of its time of day's usual deviations from the daily profile. */
  readonly timeOfDayDeviations: number;
  /** Breaching readings in a row that confirm a condition (rules that are not persistence by construction). */
  readonly confirmReadings: number;
  /** `gradual_leak`: the night, in UTC hours [start, end), when demand is lowest. */
  readonly nightStartHour: number;
  readonly nightEndHour: number;
  /** Nights of baseline before a night is judged. */
  readonly leakBaselineNights: number;
  /** Consecutive nights above the baseline that open it. */
  readonly leakNights: number;
  /** Above means above baseline + max(rise × baseline, minRise, 3σ of the baseline). */
  readonly leakRise: number;
  readonly leakMinRise: number;
}

export const DEFAULT_ANOMALY_SETTINGS: AnomalySettings = {
  windowReadings: 48,
  sigma: 3,
  minDeviation: { flow_rate: 1, pressure: 0.2 },
  diurnalSigma: 5,
  diurnalRise: 0.5,
  diurnalDays: 3,
  noFlowMean: 5,
  thresholds: { '*': { pressure: { min: 1.5 } } },
  stuckMs: 3 * 3_600_000,
  stuckReadings: 8,
  offlineFactor: 4,
  offlineMinMs: 30 * 60_000,
  clearMs: 30 * 60_000,
  alarmScore: 0.77,
  unlikelyProbability: 0.01,
  timeOfDayDeviations: 3,
  checkpointReadings: 64,
  checkpointMs: 60_000,
  confirmReadings: 2,
  nightStartHour: 2,
  nightEndHour: 5,
  leakBaselineNights: 5,
  leakNights: 3,
  leakRise: 0.3,
  leakMinRise: 0.5,
};

/** The limits for one node and measurement: its own, its type's, or everyone's. */
export function boundsFor(
  thresholds: Thresholds,
  nodeId: string,
  nodeType: string | undefined,
  measurement: keyof ThresholdRule,
): Bounds | undefined {
  return (
    thresholds[`node:${nodeId}`]?.[measurement] ??
    (nodeType === undefined ? undefined : thresholds[`type:${nodeType}`]?.[measurement]) ??
    thresholds['*']?.[measurement]
  );
}

/** Checks ANOMALY_THRESHOLDS (JSON); returns the problem, or undefined. */
export function thresholdsProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected a JSON object';
  for (const [key, rule] of Object.entries(value)) {
    if (key !== '*' && !/^(type|node):.+/.test(key))
      return `key ${JSON.stringify(key)}: expected "*", "type:<node_type>" or "node:<node_id>"`;
    if (typeof rule !== 'object' || rule === null) return `${key}: expected an object`;
    for (const [measurement, bounds] of Object.entries(rule)) {
      if (measurement !== 'flow_rate' && measurement !== 'pressure')
        return `${key}: unknown measurement ${JSON.stringify(measurement)}`;
      for (const [side, limit] of Object.entries(bounds as object)) {
        if ((side !== 'min' && side !== 'max') || typeof limit !== 'number' || !Number.isFinite(limit)) {
          return `${key}.${measurement}: expected {"min": number, "max": number}`;
        }
      }
    }
  }
  return undefined;
}
