import { RedisServer, redisServerOnPath } from '@streamgauge/redis-server';
import { Redis } from 'ioredis';

export interface TestRedis {
  readonly url: string;
  /** Present when the test owns the server (and may stop or kill it). */
  readonly server: RedisServer | undefined;
  readonly source: 'REDIS_URL' | 'redis-server' | 'testcontainers';
  /** Empties the database: every test starts from nothing. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real Redis for a test file, found the way DESIGN.md says: REDIS_URL when
 * set (its database is flushed: point it at a scratch instance), else a
 * throw-away redis-server from PATH, else a testcontainers Redis where a
 * Docker engine answers.
 */
export async function testRedis(): Promise<TestRedis> {
  const url = process.env.REDIS_URL;
  if (url) return wrap(url, undefined, 'REDIS_URL', async () => {});
  if (redisServerOnPath()) {
    const server = await RedisServer.start();
    return wrap(server.url, server, 'redis-server', () => server.dispose());
  }
  return fromContainer();
}

async function fromContainer(): Promise<TestRedis> {
  const moduleName = 'testcontainers';
  let containers: typeof import('testcontainers');
  try {
    containers = (await import(moduleName)) as typeof import('testcontainers');
  } catch {
    throw new Error(
      'no Redis for tests: set REDIS_URL, put redis-server on PATH, or install testcontainers with Docker',
    );
  }
  const container = await new containers.GenericContainer('redis:7.0').withExposedPorts(6379).start();
  const url = `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
  return wrap(url, undefined, 'testcontainers', async () => {
    await container.stop();
  });
}

function wrap(
  url: string,
  server: RedisServer | undefined,
  source: TestRedis['source'],
  dispose: () => Promise<void>,
): TestRedis {
  return {
    url,
    server,
    source,
    async flush() {
      const client = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
        await client.flushdb();
      } finally {
        client.disconnect();
      }
    },
    close: dispose,
  };
}
