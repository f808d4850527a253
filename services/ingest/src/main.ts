import { type Clock, type Config, redactUrl, systemClock } from '@streamgauge/core';
import {
  connectRedis,
  GatewayRegistry,
  loadScripts,
  NodeDistricts,
  ReadingLog,
  whenReady,
} from '@streamgauge/redis';
import type { Logger } from 'pino';
import { buildIngestApp } from './app.ts';
import { Authenticator } from './authenticator.ts';

export interface RunningIngest {
  /** `http://host:port` the server listens on. */
  readonly url: string;
  /** Stops accepting, finishes in-flight requests, closes Redis. */
  close(): Promise<void>;
}

/**
 * A request must be answered even when Redis hangs rather than refuses (a
 * stopped Redis refuses at once). The bound is generous: a full 10,000-reading
 * request holds Redis for ~45 ms, so dozens queued behind each other are normal
 * under load and must not be cut off. A write that times out may still land:
 * the 503 then says so, and the retry reports those readings as duplicates.
 */
const STARTUP_WAIT_MS = 5_000;

export async function startIngest(
  config: Config,
  logger: Logger,
  clock: Clock = systemClock,
): Promise<RunningIngest> {
  const redis = connectRedis(config.redis, {
    name: 'ingest',
    failFast: true,
    commandTimeoutMs: config.ingest.redisTimeoutMs,
  });
  redis.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  loadScripts(redis);
  // Give Redis a moment so the first requests are not refused while it
  // connects; without it the service still starts, answering 503 until it can.
  await whenReady(redis, STARTUP_WAIT_MS).catch(() =>
    logger.warn({ redis: redactUrl(config.redis.url) }, 'Redis not reachable yet; answering 503 until it is'),
  );
  const readingLog = new ReadingLog(redis, { ...config.stream, clock });
  let authenticator: Authenticator | undefined;
  if (config.ingest.auth) {
    authenticator = new Authenticator(new GatewayRegistry(redis, clock), config.ingest.authCacheMs, () =>
      clock.now(),
    );
  } else {
    logger.warn('INGEST_AUTH=off: any client can write readings for any node');
  }
  const nodeDistricts = config.ingest.auth ? new NodeDistricts(redis) : undefined;
  const app = buildIngestApp({
    config: config.ingest,
    readingLog,
    redis,
    authenticator,
    nodeDistricts,
    clock,
    logger,
  });
  const url = await app.listen({ host: config.ingest.host, port: config.ingest.port });
  logger.info({ url, streams: readingLog.streams, auth: config.ingest.auth }, 'ingest listening');
  return {
    url,
    async close() {
      await app.close();
      await redis.quit().catch(() => redis.disconnect());
      logger.info('ingest stopped');
    },
  };
}
