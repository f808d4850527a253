// The Redis launcher is the product's own (streamgauge start uses it); tests reuse it.
export type { RedisServerOptions } from '@streamgauge/redis-server';
export { freePort, RedisServer, redisServerOnPath } from '@streamgauge/redis-server';
export type { Dataset, DatasetOptions } from './dataset.ts';
export { generateDataset } from './dataset.ts';
export { waitForAggregator, waitForDrain } from './drain.ts';
export { scanKeys } from './keys.ts';
export type { MetricSample } from './metricsText.ts';
export { metricSamples, metricValue, parseMetrics, scrapeMetrics } from './metricsText.ts';
export type { OracleMetrics, OracleSeries, OracleSystem } from './oracle.ts';
export {
  closeEnough,
  compareFields,
  inWindow,
  oracleLatest,
  oracleMetadata,
  oracleMetrics,
  oracleSeries,
  oracleSystem,
  oracleWindow,
} from './oracle.ts';
export type { PubSubEmulatorOptions } from './pubsubEmulator.ts';
export {
  PubSubEmulator,
  pubsubEmulatorAvailable,
  pubsubEmulatorUnavailableReason,
} from './pubsubEmulator.ts';
export type { ReadModelCheckOptions } from './readModelCheck.ts';
export { checkReadModel } from './readModelCheck.ts';
export type { RedisClusterOptions } from './redisCluster.ts';
export { RedisCluster } from './redisCluster.ts';
export type { TestRedis } from './testRedis.ts';
export { testRedis } from './testRedis.ts';
export type { RedisFixture } from './useRedis.ts';
export { useRedis } from './useRedis.ts';
