import { type Config, ConfigError, loadConfig, redactUrl } from '@streamgauge/core';
import { connectRedis, type RedisClient, whenReady } from '@streamgauge/redis';
import { CommandError, EXIT } from './exitCodes.ts';

export function configFromEnv(overrides: Record<string, string | undefined> = {}): Config {
  try {
    return loadConfig({ ...process.env, ...stripUndefined(overrides) });
  } catch (error) {
    if (error instanceof ConfigError) throw new CommandError(EXIT.config, error.message);
    throw error;
  }
}

/** A connection for a short ops command: fails with exit code 4 when Redis does not answer. */
export async function opsRedis(config: Config): Promise<RedisClient> {
  const redis = connectRedis(config.redis, { name: 'cli' });
  redis.on('error', () => {});
  try {
    await whenReady(redis, 3_000);
  } catch {
    redis.disconnect();
    throw new CommandError(EXIT.unavailable, `cannot reach Redis at ${redactUrl(config.redis.url)}`);
  }
  return redis;
}

/** Runs a short ops task on its own connection, closed afterwards. */
export async function withOpsRedis<T>(work: (redis: RedisClient) => Promise<T>): Promise<T> {
  const redis = await opsRedis(configFromEnv());
  try {
    return await work(redis);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

function stripUndefined(values: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
}
