export type { DetectorCheckpoint, DetectorState, Observation, PersistedDetectorState } from './detector.ts';
export {
  checkpointPhase,
  decodeDetectorState,
  decodeEncodedState,
  encodeDetectorState,
  NodeDetector,
} from './detector.ts';
export { AnomalyLifecycle } from './lifecycle.ts';
export type { DetectionRun, ScoredReading } from './offline.ts';
export { runDetectors, scoreSeries } from './offline.ts';
export type { AnomalySettings, Bounds, ThresholdRule, Thresholds } from './settings.ts';
export { boundsFor, DEFAULT_ANOMALY_SETTINGS, thresholdsProblem } from './settings.ts';
export type {
  AnomalyEvent,
  AnomalyRecord,
  AnomalyRule,
  AnomalyType,
  Breach,
  PendingAnomaly,
  Severity,
} from './types.ts';
export { ANOMALY_TYPES, SEVERITY, SEVERITY_RANK } from './types.ts';
export { VALUE_SCORE_BYTES, ValueScore } from './valueScore.ts';
