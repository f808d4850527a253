import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, loadConfig } from '@streamgauge/core';
import { testRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';

export interface TestSystem {
  /** A client on the system's own throw-away Redis. */
  readonly redis: Redis;
  readonly config: Config;
  /** The environment `config` came from: for the CLI run as a child process. */
  readonly env: Record<string, string>;
}

/**
 * A throw-away Redis and data directory, and the configuration of services
 * that share them (ingest on a free port, no auth, short blocking reads).
 * `cleanup` receives what removes them again.
 */
export async function testSystem(
  name: string,
  overrides: Record<string, string>,
  cleanup: (step: () => Promise<void>) => void,
): Promise<TestSystem> {
  const server = await testRedis();
  const dataDir = mkdtempSync(join(tmpdir(), `streamgauge-${name}-`));
  const redis = new Redis(server.url);
  cleanup(async () => {
    redis.disconnect();
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const env = {
    REDIS_URL: server.url,
    DATA_DIR: dataDir,
    AGGREGATOR_BLOCK_MS: '200',
    INGEST_HOST: '127.0.0.1',
    INGEST_PORT: '0',
    INGEST_AUTH: 'off',
    ...overrides,
  };
  return { redis, config: loadConfig(env), env };
}
