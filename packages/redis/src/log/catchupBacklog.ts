import { compareEntryIds, type ShardKeys } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';

/** What waits in a shard's catch-up lanes: entries, and the oldest one's id (with `oldest`). */
export interface CatchupBacklog {
  readonly entries: number;
  readonly oldestId?: string;
}

/** Entries waiting in every catch-up lane of `shard` (and, with `oldest`, the oldest entry's id). */
export async function catchupBacklog(
  redis: RedisClient,
  shard: ShardKeys,
  oldest = false,
): Promise<CatchupBacklog> {
  const lanes = shard.catchupLanes;
  const [lengths, firsts] = await Promise.all([
    Promise.all(lanes.map((lane) => redis.xlen(lane))),
    oldest ? Promise.all(lanes.map((lane) => redis.xrange(lane, '-', '+', 'COUNT', 1))) : [],
  ]);
  const entries = lengths.reduce((sum, n) => sum + n, 0);
  let oldestId: string | undefined;
  for (const [first] of firsts) {
    if (first !== undefined && (oldestId === undefined || compareEntryIds(first[0], oldestId) < 0)) {
      oldestId = first[0];
    }
  }
  return { entries, ...(oldestId !== undefined && { oldestId }) };
}
