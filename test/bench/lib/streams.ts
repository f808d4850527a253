import { type Clock, ENTRY_FIELDS, type Reading } from '@streamgauge/core';
import { ReadingLog } from '@streamgauge/redis';
import type { Redis } from 'ioredis';
import { BenchFailure } from './types.ts';

/** The benches' readings log: one shard, 48 h of retention and of dedupe, on `clock`. */
export function benchLog(redis: Redis, clock: Clock): ReadingLog {
  return new ReadingLog(redis, {
    shards: 1,
    retentionMs: 48 * 3_600_000,
    dedupeHorizonMs: 48 * 3_600_000,
    clock,
  });
}

/**
 * Deletes the readings log and its dedupe sets (`seen:*`), so a case starts
 * from an empty log and Redis memory does not pile up from case to case.
 * DEL, not UNLINK: the freeing must be over before the next window starts.
 */
export async function resetLog(redis: Redis, stream: string): Promise<void> {
  await redis.del(stream);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', 'seen:*', 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** XINFO STREAM `entries-added` (Redis ≥ 7.0): every entry ever added, trimmed or not. */
export async function entriesAdded(redis: Redis, stream: string): Promise<number | undefined> {
  const info = (await redis.xinfo('STREAM', stream)) as unknown[];
  const index = info.indexOf('entries-added');
  return index >= 0 ? Number(info[index + 1]) : undefined;
}

export interface LogContents {
  readonly entries: number;
  /** Sum of the entries' `n` fields. */
  readonly readings: number;
}

/** Counts the log entries after `afterId` (all when undefined) and the readings they hold. */
export async function countLogEntries(
  redis: Redis,
  stream: string,
  afterId: string | undefined,
  source: string,
): Promise<LogContents> {
  let start = afterId === undefined ? '-' : `(${afterId}`;
  let entries = 0;
  let readings = 0;
  for (;;) {
    const page = await redis.xrange(stream, start, '+', 'COUNT', 1000);
    for (const [id, fields] of page) {
      let n: number | undefined;
      let src: string | undefined;
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i] === ENTRY_FIELDS.count) n = Number(fields[i + 1]);
        else if (fields[i] === ENTRY_FIELDS.source) src = fields[i + 1];
      }
      if (n === undefined || !Number.isInteger(n) || n <= 0) {
        throw new BenchFailure(`stream ${stream} entry ${id} has no valid "n" field`);
      }
      if (src !== source) {
        throw new BenchFailure(
          `stream ${stream} entry ${id} came from ${JSON.stringify(src)}, not ${source}`,
        );
      }
      entries++;
      readings += n;
    }
    const last = page.at(-1);
    if (last === undefined || page.length < 1000) break;
    start = `(${last[0]}`;
  }
  return { entries, readings };
}

/** Fails unless the log gained exactly `requests` entries holding `readings` readings. */
export async function expectLogGrowth(
  redis: Redis,
  stream: string,
  afterId: string | undefined,
  source: string,
  expected: { requests: number; readings: number },
  label: string,
): Promise<void> {
  const found = await countLogEntries(redis, stream, afterId, source);
  if (found.entries !== expected.requests || found.readings !== expected.readings) {
    throw new BenchFailure(
      `${label}: the stream gained ${found.entries} entries holding ${found.readings} readings; ` +
        `expected ${expected.requests} entries holding ${expected.readings}`,
    );
  }
}

/**
 * Appends `total` readings of `nodes` nodes, 1000 per entry as ingest writes
 * them, through the readings log (dedupe and shard routing included). Event
 * times start an hour before `now`, one second apart per node; `round`
 * shifts them so a second fill adds new readings for the same nodes.
 */
export async function fillLog(
  log: ReadingLog,
  /** `perEntry`: readings per stream entry (one ingest request), default 1000. */
  options: { total: number; nodes: number; now: number; round?: number; perEntry?: number },
): Promise<void> {
  const { total, nodes, now } = options;
  const perEntry = options.perEntry ?? 1000;
  const offset = (options.round ?? 0) * total;
  for (let i = 0; i < total; i += perEntry) {
    const batch: Reading[] = [];
    for (let j = i; j < Math.min(i + perEntry, total); j++) {
      const node = j % nodes;
      const k = offset + j;
      batch.push({
        node_id: `N${node}`,
        timestamp: now - 3_600_000 + Math.floor(k / nodes) * 1000 + (node % 1000),
        flow_rate: (k % 97) / 3,
        pressure: 3 + (k % 13) / 10,
        temperature: 15,
      });
    }
    await log.append(batch, 'bench');
  }
}
