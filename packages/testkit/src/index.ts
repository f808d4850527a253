export type { Dataset, DatasetOptions } from './dataset.ts';
export { generateDataset } from './dataset.ts';
export { waitForDrain } from './drain.ts';
export { freePort } from './freePort.ts';
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
export { seededRandom } from './random.ts';
export type { ReadModelCheckOptions } from './readModelCheck.ts';
export { checkReadModel } from './readModelCheck.ts';
export type { RedisServerOptions } from './redisServer.ts';
export { RedisServer, redisServerOnPath } from './redisServer.ts';
export type { TestRedis } from './testRedis.ts';
export { testRedis } from './testRedis.ts';
