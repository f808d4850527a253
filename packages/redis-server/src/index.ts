export { freePort } from './freePort.ts';
export type { RedisServerOptions } from './redisServer.ts';
export { RedisServer, redisServerOnPath } from './redisServer.ts';
