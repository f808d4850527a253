import { compareEntryIds, ENTRY_FIELDS, fieldMap, type ShardKeys } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';

/** Replayed entries wait under a consumer `replay-<run>` until a live consumer of the group claims them. */
export const REPLAY_CONSUMER_PREFIX = 'replay-';

/** Entries read, and claimed, per round trip. */
const PAGE = 1_000;

export interface ReplayRange {
  readonly group: string;
  /** Stream positions (XRANGE bounds: an id, `<ms>`, `-` or `+`), inclusive. */
  readonly from: string;
  readonly to: string;
  /**
   * The group's applied mark on this shard, for a consumer that keeps one
   * (the aggregator): entries after it are left out, since one before them
   * is still being processed and replaying them now would count them twice.
   */
  readonly appliedThrough?: string;
}

/** What a replay counts: the entries in range, and which of them go back to the group. */
export interface ReplayCounts {
  /** Entries of the stream in the range. */
  readonly entries: number;
  /** Entries delivered to the group again, and the readings they carry. */
  readonly replayed: number;
  readonly readings: number;
  /** Left out: still pending in the group (it will deliver them anyway). */
  readonly pending: number;
  /** Left out: after the group's position (not yet delivered: it will be). */
  readonly undelivered: number;
  /** Left out: the group dead-lettered them (`streamgauge dlq redrive` sends those back). */
  readonly deadLettered: number;
  /** Left out: after the group's applied mark (an earlier entry is still being processed). */
  readonly unsettled: number;
}

const REPLAY_COUNTS = [
  'entries',
  'replayed',
  'readings',
  'pending',
  'undelivered',
  'deadLettered',
  'unsettled',
] as const satisfies readonly (keyof ReplayCounts)[];

/** The counts of several shards' replays added up. */
export function replayTotals(shards: readonly ReplayCounts[]): ReplayCounts {
  const totals = Object.fromEntries(REPLAY_COUNTS.map((k) => [k, 0])) as Record<keyof ReplayCounts, number>;
  for (const shard of shards) for (const k of REPLAY_COUNTS) totals[k] += shard[k];
  return totals;
}

/** What a replay does to one shard. */
export interface ShardReplay extends ReplayCounts {
  readonly stream: string;
  readonly first?: string;
  readonly last?: string;
}

export class ReplayGroupMissingError extends Error {
  constructor(stream: string, group: string) {
    super(
      `${stream} has no consumer group ${JSON.stringify(group)} (groups are created when their consumer first runs)`,
    );
    this.name = 'ReplayGroupMissingError';
  }
}

/**
 * Delivers a range of a shard's stream to a consumer group again: each
 * entry the group had acknowledged is put back into the group's pending
 * list (XCLAIM … FORCE) under a consumer of its own (`replay-<run>`), idle long enough that
 * the group's live consumers claim it at their next scan of pending entries
 * and process it as any redelivery. So a replay needs no cooperation beyond
 * what crash recovery already does, and works for any group.
 *
 * Safe to run twice: the archiver's warehouse keeps one row per reading,
 * and the aggregator does not apply an entry its state already holds (the
 * applied mark, commitShard.lua); it rewrites those nodes' keys instead.
 * Entries after the mark are left out (`appliedThrough`).
 */
export class StreamReplay {
  readonly #redis: RedisClient;
  readonly #shard: ShardKeys;
  readonly #range: ReplayRange;
  readonly #consumer: string;
  /** The entries handed back by `run`, until the group has processed them. */
  readonly #handedBack = new Set<string>();

  constructor(redis: RedisClient, shard: ShardKeys, range: ReplayRange, run: string) {
    this.#redis = redis;
    this.#shard = shard;
    this.#range = range;
    this.#consumer = `${REPLAY_CONSUMER_PREFIX}${run}`;
  }

  /** What `run` would do, without doing it. */
  plan(): Promise<ShardReplay> {
    return this.#walk(async () => {});
  }

  /**
   * Puts the range back into the group's pending list, `idleMs` idle (the
   * group's claim threshold, so the next scan takes it). Returns what it did.
   */
  run(idleMs: number): Promise<ShardReplay> {
    const { stream } = this.#shard;
    const { group } = this.#range;
    return this.#walk(async (ids) => {
      for (const id of ids) this.#handedBack.add(id);
      await this.#redis.call(
        'XCLAIM',
        stream,
        group,
        this.#consumer,
        0,
        ...ids,
        'IDLE',
        idleMs,
        'RETRYCOUNT',
        0,
        'FORCE',
        'JUSTID',
      );
    });
  }

  /** How many of the entries handed back are still pending in the group (waiting, or being processed). */
  async remaining(done: ShardReplay): Promise<number> {
    if (this.#handedBack.size === 0 || done.first === undefined || done.last === undefined) return 0;
    let from = done.first;
    const still = new Set<string>();
    for (;;) {
      const rows = (await this.#redis.xpending(
        this.#shard.stream,
        this.#range.group,
        from,
        done.last,
        PAGE,
      )) as [string, ...unknown[]][];
      for (const [id] of rows) if (this.#handedBack.has(id)) still.add(id);
      const last = rows[rows.length - 1];
      if (rows.length < PAGE || last === undefined) break;
      from = `(${last[0]}`;
    }
    for (const id of this.#handedBack) if (!still.has(id)) this.#handedBack.delete(id);
    return still.size;
  }

  /** Removes this run's consumer from the group once nothing waits under it (it is this run's alone). */
  async cleanUp(): Promise<void> {
    const consumers = (await this.#redis
      .xinfo('CONSUMERS', this.#shard.stream, this.#range.group)
      .catch(() => [])) as unknown[][];
    for (const flat of consumers) {
      if (flat[flat.indexOf('name') + 1] !== this.#consumer) continue;
      if (Number(flat[flat.indexOf('pending') + 1]) === 0) {
        await this.#redis.xgroup('DELCONSUMER', this.#shard.stream, this.#range.group, this.#consumer);
      }
    }
  }

  /** Pages through the range, sorting entries, and hands each page's replayable ids to `act`. */
  async #walk(act: (ids: string[]) => Promise<void>): Promise<ShardReplay> {
    const { stream } = this.#shard;
    const { from, to, appliedThrough: mark } = this.#range;
    const delivered = await this.#lastDelivered();
    const dead = await this.#deadLettered();
    const result = {
      stream,
      ...(replayTotals([]) as Record<keyof ReplayCounts, number>),
      first: undefined as string | undefined,
      last: undefined as string | undefined,
    };
    let start = from;
    for (;;) {
      const rows = (await this.#redis.xrange(stream, start, to, 'COUNT', PAGE)) as [string, string[]][];
      if (rows.length === 0) break;
      const pending = await this.#pendingBetween(
        rows[0]?.[0] as string,
        rows[rows.length - 1]?.[0] as string,
      );
      const ids: string[] = [];
      for (const [id, fields] of rows) {
        result.entries++;
        if (compareEntryIds(id, delivered) > 0) result.undelivered++;
        else if (pending.has(id)) result.pending++;
        else if (dead.has(id)) result.deadLettered++;
        else if (mark !== undefined && compareEntryIds(id, mark) > 0) result.unsettled++;
        else {
          ids.push(id);
          result.readings += readingCount(fields);
        }
      }
      if (ids.length > 0) {
        await act(ids);
        result.replayed += ids.length;
        result.first ??= ids[0];
        result.last = ids[ids.length - 1];
      }
      if (rows.length < PAGE) break;
      start = `(${rows[rows.length - 1]?.[0]}`;
    }
    const { first, last, ...counts } = result;
    return { ...counts, ...(first !== undefined && { first }), ...(last !== undefined && { last }) };
  }

  async #lastDelivered(): Promise<string> {
    const { stream } = this.#shard;
    const groups = (await this.#redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
    for (const flat of groups) {
      if (flat[flat.indexOf('name') + 1] === this.#range.group) {
        return String(flat[flat.indexOf('last-delivered-id') + 1]);
      }
    }
    throw new ReplayGroupMissingError(stream, this.#range.group);
  }

  async #pendingBetween(first: string, last: string): Promise<Set<string>> {
    const ids = new Set<string>();
    let from = first;
    for (;;) {
      const rows = (await this.#redis.xpending(this.#shard.stream, this.#range.group, from, last, PAGE)) as [
        string,
        ...unknown[],
      ][];
      for (const [id] of rows) ids.add(id);
      const tail = rows[rows.length - 1];
      if (rows.length < PAGE || tail === undefined) return ids;
      from = `(${tail[0]}`;
    }
  }

  /** The entries of this stream the group gave up on (the dead-letter stream is capped, so this is bounded). */
  async #deadLettered(): Promise<Set<string>> {
    const ids = new Set<string>();
    let start = '-';
    for (;;) {
      const rows = (await this.#redis.xrange(this.#shard.deadLetters, start, '+', 'COUNT', PAGE)) as [
        string,
        string[],
      ][];
      for (const [, fields] of rows) {
        const record = fieldMap(fields);
        if (record.get('group') === this.#range.group && record.get('stream') === this.#shard.stream) {
          ids.add(record.get('id') as string);
        }
      }
      if (rows.length < PAGE) return ids;
      start = `(${rows[rows.length - 1]?.[0]}`;
    }
  }
}

/** The entry's reading count (field `n`), without decoding its readings. */
function readingCount(fields: readonly string[]): number {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === ENTRY_FIELDS.count) return Number(fields[i + 1]) || 0;
  }
  return 0;
}
