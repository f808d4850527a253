import type { Reading, ShardKeys } from '@streamgauge/core';
import { decodeEntry, fieldMap } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';

/** What XINFO STREAM says of a stream's history; zeros for a stream that does not exist. */
export interface StreamHistory {
  readonly lastGeneratedId: string;
  /** Every entry ever appended (Redis 7: `entries-added`), trimmed ones included. */
  readonly entriesAdded: number;
}

export async function streamHistory(redis: RedisClient, stream: string): Promise<StreamHistory> {
  const info = (await redis.xinfo('STREAM', stream).catch((error: Error) => {
    if (/no such key/i.test(error.message)) return [];
    throw error;
  })) as unknown[];
  const fields = fieldMap(info);
  return {
    lastGeneratedId: String(fields.get('last-generated-id') ?? '0-0'),
    entriesAdded: Number(fields.get('entries-added') ?? 0),
  };
}

/** Entries of the stream after `id`, counted a page at a time. */
export async function countAfter(redis: RedisClient, stream: string, id: string): Promise<number> {
  let count = 0;
  let from = `(${id}`;
  for (;;) {
    const rows = (await redis.xrange(stream, from, '+', 'COUNT', 10_000)) as [string, unknown][];
    count += rows.length;
    const last = rows[rows.length - 1];
    if (rows.length < 10_000 || last === undefined) return count;
    from = `(${last[0]}`;
  }
}

/**
 * The stream's entries after a cut, as a count that survives trimming
 * being noticed: trimming removes entries (oldest first) without touching
 * `entries-added`, so entries after the cut were lost iff fewer remain than
 * were there at the cut plus those appended since, less those deleted on
 * purpose since (a redrive replaces its original: `streamRemoved`).
 */
export interface CutMark {
  readonly cut: string;
  /** `entries-added` when the cut was taken. */
  readonly added: number;
  /** Entries after the cut present then. */
  readonly after: number;
  /** Entries deleted on purpose until then (absent in offers of earlier versions: 0). */
  readonly removed?: number;
}

export async function markCut(redis: RedisClient, shard: ShardKeys, cut: string): Promise<CutMark> {
  // Counted before `entries-added` is read: an entry appended in between is
  // then in `added` but not in `after`, which can hide a loss of one entry
  // but never report one that did not happen (the other order would). The
  // deletions are read first for the same reason.
  const removed = await removedFrom(redis, shard);
  const after = await countAfter(redis, shard.stream, cut);
  const { entriesAdded } = await streamHistory(redis, shard.stream);
  return { cut, added: entriesAdded, after, removed };
}

/**
 * Whether entries after the cut have gone from the stream since it was
 * marked (`entries-added` read first, the deletions last, for the same
 * reason). A deletion before the cut can hide a loss of one entry after it.
 */
export async function lostSince(redis: RedisClient, shard: ShardKeys, mark: CutMark): Promise<boolean> {
  const { entriesAdded } = await streamHistory(redis, shard.stream);
  const remaining = await countAfter(redis, shard.stream, mark.cut);
  const removed = (await removedFrom(redis, shard)) - (mark.removed ?? 0);
  return remaining < mark.after + (entriesAdded - mark.added) - removed;
}

async function removedFrom(redis: RedisClient, shard: ShardKeys): Promise<number> {
  return Number((await redis.get(shard.streamRemoved)) ?? 0);
}

/**
 * The readings of a stream's entries after `after` up to `upTo`
 * (inclusive), a page at a time. Entries that do not decode are skipped:
 * the aggregator dead-lettered them instead of applying them.
 */
export async function* readingsBetween(
  redis: RedisClient,
  stream: string,
  after: string,
  upTo: string,
): AsyncGenerator<{ id: string; readings: Reading[] }> {
  let from = `(${after}`;
  for (;;) {
    const rows = (await redis.xrange(stream, from, upTo, 'COUNT', 1000)) as [string, string[]][];
    for (const [id, fields] of rows) {
      try {
        yield { id, readings: decodeEntry(id, fields).readings };
      } catch {
        // Not an entry the aggregator could apply.
      }
    }
    const last = rows[rows.length - 1];
    if (rows.length < 1000 || last === undefined) return;
    from = `(${last[0]}`;
  }
}
