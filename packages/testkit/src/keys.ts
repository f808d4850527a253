import type { Redis } from 'ioredis';

/** Every key of the database that matches `match` (all by default), a SCAN page of 1000 at a time. */
export async function scanKeys(redis: Redis, match = '*'): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, page] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    keys.push(...page);
  } while (cursor !== '0');
  return keys;
}
