import { type Clock, type GatewayLimits, loadConfig, systemClock } from '@streamgauge/core';
import { GatewayRegistry } from '@streamgauge/redis';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { type RunningIngest, startIngest } from '../src/index.ts';

export interface TestIngest extends RunningIngest {
  /** POSTs a body; `contentType` defaults to application/json. */
  post(body: string | Buffer, options?: { token?: string; contentType?: string }): Promise<Response>;
}

/** A real ingest service on a free port against the given Redis. */
export async function startTestIngest(
  redisUrl: string,
  env: Record<string, string> = {},
  clock: Clock = systemClock,
): Promise<TestIngest> {
  const config = loadConfig({ REDIS_URL: redisUrl, INGEST_HOST: '127.0.0.1', INGEST_PORT: '0', ...env });
  const ingest = await startIngest(config, pino({ level: 'silent' }), clock);
  return {
    ...ingest,
    post(body, options = {}) {
      const headers: Record<string, string> = {
        'content-type': options.contentType ?? 'application/json',
      };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      return fetch(`${ingest.url}/v1/readings`, { method: 'POST', headers, body });
    },
  };
}

/** A gateway's own rates that hold it to nothing. */
export const UNLIMITED: GatewayLimits = { readingsPerSecond: 0, requestsPerSecond: 0 };

/** Registers a gateway directly in Redis and returns its token. */
export async function issueToken(
  redisUrl: string,
  name: string,
  scope: { nodes: string[] } | { district: string },
  limits?: Partial<GatewayLimits>,
): Promise<string> {
  const redis = new Redis(redisUrl);
  try {
    const registry = new GatewayRegistry(redis, systemClock);
    const issued = await registry.add(
      name,
      'nodes' in scope
        ? { kind: 'nodes', nodes: scope.nodes }
        : { kind: 'district', district: scope.district },
      limits,
    );
    return issued.token;
  } finally {
    redis.disconnect();
  }
}
