import type { RedisConfig } from '@streamgauge/core';
import { backoffMs } from '@streamgauge/core';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { SCRIPT_NAMES } from './scripts.ts';

/** A standalone Redis or a Redis Cluster: every adapter works with both. */
export type RedisClient = Redis | Cluster;

export interface ConnectionOptions {
  /** Shown in CLIENT LIST, so ops can tell which process holds a connection. */
  readonly name: string;
  /**
   * Fail commands at once while disconnected instead of queueing them. A
   * request path wants this: it must answer 503 fast, not wait for Redis.
   */
  readonly failFast?: boolean;
  /** Upper bound on one command's round trip, ms. */
  readonly commandTimeoutMs?: number;
  /**
   * Where connection errors are logged (as warnings: ioredis reconnects by
   * itself). Without one the caller must listen to 'error': an 'error' event
   * nobody listens to ends the process.
   */
  readonly logger?: ConnectionLogger;
}

/** What a connection needs of a logger (pino's satisfies it). */
export interface ConnectionLogger {
  warn(fields: object, message: string): void;
}

/**
 * The one Redis connection factory. Reconnects forever with a short capped
 * backoff, so every service resumes by itself when Redis is back. With
 * REDIS_CLUSTER_NODES set it returns an ioredis Cluster: every key a command,
 * script or transaction touches together carries one hash tag, so nothing
 * crosses slots; auto-pipelining batches commands per master.
 */
export function connectRedis(config: RedisConfig, options: ConnectionOptions): RedisClient {
  const retryStrategy = (attempt: number) => backoffMs(attempt, { baseMs: 50, maxMs: 1_000 });
  const settings: RedisOptions = {
    connectionName: `streamgauge:${options.name}`,
    lazyConnect: false,
    connectTimeout: 2_000,
    maxRetriesPerRequest: options.failFast ? 0 : 20,
    enableOfflineQueue: !options.failFast,
    // Concurrent requests' commands share one write to the socket.
    enableAutoPipelining: true,
    retryStrategy,
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
    // Commands in flight when the connection drops are sent again once it is
    // back. Turned off, ioredis would leave them unsettled until the command
    // timeout; every write here is idempotent or guarded, and a re-sent read
    // only delivers entries the consumer then processes.
    autoResendUnfulfilledCommands: true,
  };
  if (options.commandTimeoutMs !== undefined) settings.commandTimeout = options.commandTimeoutMs;
  const client = open(config, settings, options);
  const { logger } = options;
  if (logger !== undefined)
    client.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  return client;
}

function open(config: RedisConfig, settings: RedisOptions, options: ConnectionOptions): RedisClient {
  const { retryStrategy } = settings;
  if (config.clusterNodes !== undefined) {
    return new Cluster(
      config.clusterNodes.map((n) => ({ host: n.host, port: n.port })),
      {
        redisOptions: settings,
        enableAutoPipelining: true,
        // ioredis groups an auto-pipelined command by its first key, but takes
        // a script's key count, or a container command's subcommand (XGROUP
        // CREATE, XINFO GROUPS), for it, and the batch lands on the wrong
        // master. Those are sent on their own (still to the master of their key).
        autoPipeliningIgnoredCommands: [...SCRIPT_NAMES, 'xgroup', 'xinfo'],
        enableOfflineQueue: !options.failFast,
        ...(retryStrategy !== undefined && { clusterRetryStrategy: retryStrategy }),
        // A slot moved or a master failed over: refresh the map and retry.
        maxRedirections: 16,
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 200,
      },
    );
  }
  return new Redis(config.url, settings);
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export function whenReady(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis did not become ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}
