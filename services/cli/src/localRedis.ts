import { join } from 'node:path';
import { type Config, isStreamgaugeKey, redactUrl } from '@streamgauge/core';
import { connectRedis, whenReady } from '@streamgauge/redis';
import { RedisServer, redisServerOnPath } from '@streamgauge/redis-server';
import type { Logger } from 'pino';
import { CommandError, EXIT } from './exitCodes.ts';

export interface RedisForStart {
  readonly config: Config;
  /** Present when streamgauge started the server itself (and must stop it). */
  readonly server: RedisServer | undefined;
}

/**
 * The Redis `streamgauge start` uses: the configured one if it answers;
 * otherwise, when it is a local address and `redis-server` is on PATH, one
 * started here on that port with its files under DATA_DIR/redis (AOF on).
 * With REDIS_CLUSTER_NODES set, the cluster must answer.
 */
export async function redisForStart(
  config: Config,
  logger: Logger,
  options: { allowForeignKeys: boolean } = { allowForeignKeys: false },
): Promise<RedisForStart> {
  if (await answers(config)) {
    if (!options.allowForeignKeys && config.redis.clusterNodes === undefined) await refuseForeignKeys(config);
    return { config, server: undefined };
  }
  if (config.redis.clusterNodes !== undefined) {
    // A cluster is never stood in for by a local standalone server.
    const nodes = config.redis.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',');
    throw new CommandError(EXIT.unavailable, `cannot reach the Redis Cluster at ${nodes}`);
  }
  const url = new URL(config.redis.url);
  const local = ['localhost', '127.0.0.1', '[::1]', ''].includes(url.hostname);
  if (!local || !redisServerOnPath()) {
    throw new CommandError(
      EXIT.unavailable,
      `cannot reach Redis at ${redactUrl(config.redis.url)}` +
        (local ? ' and redis-server is not on PATH to start one' : ''),
    );
  }
  const dir = join(config.dataDir, 'redis');
  const server = await RedisServer.start({ port: Number(url.port || 6379), dir, appendfsync: 'everysec' });
  logger.warn({ port: server.port, dir }, 'no Redis answered: started redis-server');
  const db = url.pathname.replace('/', '') || '0';
  return {
    config: { ...config, redis: { url: `redis://127.0.0.1:${server.port}/${db}`, explicit: true } },
    server,
  };
}

/** Keys looked at before deciding a database is streamgauge's alone: a bounded SCAN, whatever its size. */
const KEYS_LOOKED_AT = 10_000;

/**
 * Refuses a Redis database that holds keys of another application: `start`
 * would mix its keys (and its TTLs, its memory) into it, and `rebuild` or a
 * test flushing it would take the other application's data with it.
 */
async function refuseForeignKeys(config: Config): Promise<void> {
  const redis = connectRedis(config.redis, { name: 'start-check', failFast: true });
  redis.on('error', () => {});
  try {
    await whenReady(redis, 1_500);
    const foreign: string[] = [];
    let looked = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'COUNT', 1_000);
      cursor = next;
      looked += keys.length;
      for (const key of keys) if (!isStreamgaugeKey(key)) foreign.push(key);
    } while (cursor !== '0' && looked < KEYS_LOOKED_AT && foreign.length < 5);
    if (foreign.length === 0) return;
    const examples = foreign
      .slice(0, 3)
      .map((key) => JSON.stringify(key))
      .join(', ');
    throw new CommandError(
      EXIT.usage,
      `Redis at ${redactUrl(config.redis.url)} holds keys that are not streamgauge's (${examples}${foreign.length > 3 ? ', …' : ''}): ` +
        'start writes its keys there. Point it at a database of its own (REDIS_DB=1, or REDIS_URL), ' +
        'or pass --allow-foreign-keys to share this one.',
    );
  } finally {
    redis.disconnect();
  }
}

async function answers(config: Config): Promise<boolean> {
  const probe = connectRedis(config.redis, { name: 'probe', failFast: true });
  probe.on('error', () => {});
  try {
    await whenReady(probe, 1_500);
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}
