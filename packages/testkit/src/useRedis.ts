import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { type TestRedis, testRedis } from './testRedis.ts';

export interface RedisFixture {
  /** The test file's Redis. */
  readonly redis: TestRedis;
  /** A client on it, for arranging and asserting. */
  readonly client: Redis;
  readonly url: string;
}

/**
 * Gives a test file its own Redis (see `testRedis`) and a client, for the
 * file's whole run; with `flushEach`, every test starts from an empty one.
 * Call at the top level of the file (it registers vitest hooks).
 */
export function useRedis(options: { flushEach?: boolean } = {}): RedisFixture {
  let redis: TestRedis | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    redis = await testRedis();
    await redis.flush();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.close();
  });
  if (options.flushEach) beforeEach(() => redis?.flush());
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useRedis: Redis is only available inside tests and hooks');
    return value;
  };
  return {
    get redis() {
      return ready(redis);
    },
    get client() {
      return ready(client);
    },
    get url() {
      return ready(redis).url;
    },
  };
}
