export type {
  AnomalyEvent,
  AnomalyRecord,
  AnomalyRule,
  AnomalySettings,
  AnomalyType,
  Bounds,
  Breach,
  DetectionRun,
  DetectorCheckpoint,
  DetectorState,
  Observation,
  PersistedDetectorState,
  ScoredReading,
  Severity,
  ThresholdRule,
  Thresholds,
} from './anomaly/index.ts';
export {
  ANOMALY_TYPES,
  AnomalyLifecycle,
  boundsFor,
  checkpointPhase,
  DEFAULT_ANOMALY_SETTINGS,
  decodeDetectorState,
  decodeEncodedState,
  encodeDetectorState,
  NodeDetector,
  runDetectors,
  SEVERITY,
  SEVERITY_RANK,
  scoreSeries,
  thresholdsProblem,
  VALUE_SCORE_BYTES,
  ValueScore,
} from './anomaly/index.ts';
export { backoffMs, sleep } from './backoff.ts';
export type { BatchRules, CheckedBatch, Rejection } from './batch/checkBatch.ts';
export { BatchError, checkBatch } from './batch/checkBatch.ts';
export type { BatchFormat, DecodedBatch } from './batch/decodeBatch.ts';
export { decodeBatch, formatOf } from './batch/decodeBatch.ts';
export type { Item } from './batch/items.ts';
export type { Clock } from './clock.ts';
export { ManualClock, systemClock } from './clock.ts';
export type {
  AggregatorConfig,
  AnomalyConfig,
  ArchiverConfig,
  BackfillConfig,
  BigQueryConfig,
  Config,
  DashboardConfig,
  Env,
  IngestConfig,
  LogFormat,
  MetricsConfig,
  RedisConfig,
  StreamConfig,
} from './config.ts';
export { DEFAULT_METRICS_PORTS, liveAheadMs, loadConfig, metricsPort, redactUrl } from './config.ts';
export { csvRecord, csvTimestamp, splitCsvLine } from './csv.ts';
export { ConfigError } from './errors/ConfigError.ts';
export { TimeoutError } from './errors/TimeoutError.ts';
export { fieldMap, fieldRecord } from './flatFields.ts';
export type { GatewayLimits, GatewayRecord, GatewayScope, NodeOwnership } from './gateway.ts';
export {
  checkOwnership,
  checkScope,
  describeScope,
  districtToClaim,
  GATEWAY_NAME,
  limitsOf,
} from './gateway.ts';
export type { ReadingIdentity } from './identity.ts';
export {
  IDENTITY_BUCKET_MS,
  IDENTITY_SLOT_MS,
  identityLabel,
  identityOf,
  identitySlotOf,
} from './identity.ts';
export type { ShardKeys } from './keys.ts';
export {
  AGGREGATOR_REPLICAS,
  allShardKeys,
  anomalyKeys,
  CATCHUP,
  CHANGES_CHANNEL,
  catchupLaneOf,
  catchupLanesOf,
  GROUPS,
  gatewayKeys,
  isStreamgaugeKey,
  NODES_ALL_MEMBERS,
  opsKeys,
  rateKeys,
  readModelKeys,
  reconcileKeys,
  STREAM_BASE,
  shardKeys,
  systemKeys,
  viewerKeys,
} from './keys.ts';
export { unlessNaN } from './missing.ts';
export { seededRandom } from './random.ts';
export type { Range } from './ranges.ts';
export { RANGE_MS, RANGES } from './ranges.ts';
export type { CheckedReading, Measurement, Reading, ValidationPolicy } from './reading.ts';
export { checkReading, isNodeId, KNOWN_NODE_TYPES, MEASUREMENTS, NODE_ID_RULE } from './reading.ts';
export type { NodeContribution, SystemSums } from './readModel.ts';
export {
  addInto,
  addToSums,
  addValuesInto,
  contributionOf,
  decimal,
  EMPTY_SUMS,
  FIELD_END,
  LATEST_FIELDS,
  latestHash,
  METRICS_FIELDS,
  meanOf,
  metadataHash,
  metricsHash,
  nodeSeriesJson,
  PackedHash,
  packedLatest,
  packedMetrics,
  seriesTime,
  systemMetricsHash,
  systemSums,
  timeseriesJson,
  uptimeOf,
} from './readModel.ts';
export { assignShards, shardOf } from './shard.ts';
export type { BatchEntry } from './streamEntry.ts';
export { compareEntryIds, decodeEntry, ENTRY_FIELDS, encodeReading } from './streamEntry.ts';
export { withTimeout } from './timeout.ts';
export { isoTime, MIN_EPOCH_MS, parseTimestamp } from './timestamp.ts';
export { decodeNodeHead, encodeNodeHead } from './window/nodeHead.ts';
export type {
  AddOutcome,
  HourlyPoint,
  LatestValues,
  MetadataKey,
  NodeMetadata,
  WindowSummary,
} from './window/nodeWindows.ts';
export { METADATA_KEYS, NodeWindows } from './window/nodeWindows.ts';
export type { PaneLayout, PaneMeasurement, StatName } from './window/pane.ts';
export {
  addToPane,
  clearPane,
  emptyPane,
  hasMeasurement,
  mergePane,
  PANE,
  PANE_MEASUREMENTS,
  PANE_WIDTH,
  SERIES,
  SERIES_WIDTH,
  STAT_AT,
} from './window/pane.ts';
export { ByteArena, decodePanes, encodePanes, firstPaneOf, GrowingArena } from './window/paneCodec.ts';
export { NO_PANE, PaneRing } from './window/paneRing.ts';
export type { NodeBackfill, NodeReconcile } from './window/reconcile.ts';
export { BACKFILL_PANE_WIDTH, reconcileNode, truthOf, windowsFromPanes } from './window/reconcile.ts';
export type { WindowBounds } from './window/windows.ts';
export {
  horizonStart,
  PANE_MS,
  PANE_SIZES,
  RING_OF_RANGE,
  RINGS,
  SERIES_RING,
  windowBounds,
} from './window/windows.ts';
