export type { MetricsServer, ReadinessCheck } from './metricsServer.ts';
export { serveMetrics } from './metricsServer.ts';
export type { ProcessMetricsOptions, SeriesSource } from './processMetrics.ts';
export { ProcessMetrics } from './processMetrics.ts';
export { ConsumerGroupGauges, OpenAnomalyGauge, ReconcileGauges, RedisMemoryGauges } from './redisGauges.ts';
export type { ScrapeSampleOptions } from './scrapeSample.ts';
export { ScrapeSample } from './scrapeSample.ts';
export type {
  AppliedReadings,
  ConsumedBatch,
  PubSubMessageRecorder,
  PubSubOutcome,
  ReadingCounter,
  ReadingCounts,
  ReadingSource,
  ReconcileStatus,
} from './series.ts';
export {
  AggregatorSeries,
  ArchiverSeries,
  BackfillSeries,
  ConsumerSeries,
  IngestSeries,
  MESSAGING_SYSTEM,
  PubSubSeries,
} from './series.ts';
