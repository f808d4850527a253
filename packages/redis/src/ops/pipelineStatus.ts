import { allShardKeys, fieldMap, GROUPS, type ShardKeys } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';
import { ReconcileControl } from '../control/reconcileControl.ts';
import { catchupBacklog } from '../log/catchupBacklog.ts';
import { countAfter } from '../log/streamPosition.ts';
import { type CacheStats, CacheStatus } from './cacheStatus.ts';

export interface ConsumerStatus {
  readonly name: string;
  readonly pending: number;
  /** Since it last read or claimed, ms. */
  readonly idleMs: number;
}

export interface GroupStatus {
  readonly name: string;
  /** Entries not yet delivered to the group. */
  readonly lag: number;
  readonly pending: number;
  /** Age of the oldest pending entry (its id's time), ms. */
  readonly oldestPendingAgeMs?: number;
  readonly lastDelivered: string;
  readonly consumers: ConsumerStatus[];
}

export interface ShardStatus {
  readonly stream: string;
  readonly length: number;
  readonly firstEntryAt?: string;
  readonly lastEntryAt?: string;
  readonly groups: GroupStatus[];
  readonly deadLetters: number;
  /** Every entry up to it is in the warehouse. */
  readonly archiveWatermark?: string;
  /** Entries of late readings waiting in the shard's catch-up lane for the aggregator to take them in. */
  readonly catchup: number;
  /** When the oldest of them arrived. */
  readonly catchupSince?: string;
}

type Flat = unknown[];

function timeOf(id: string | undefined): string | undefined {
  if (id === undefined) return undefined;
  return new Date(Number(id.slice(0, id.indexOf('-')))).toISOString();
}

/** One consumer group of a stream, as XINFO GROUPS tells it (one command per stream). */
export interface GroupCounts {
  readonly name: string;
  /** Entries not yet delivered; undefined when Redis cannot tell (after deletions, or an AOF load). */
  readonly lag: number | undefined;
  readonly pending: number;
  readonly lastDelivered: string;
}

/** The stream's consumer groups (none when the stream does not exist). */
export async function groupsOf(redis: RedisClient, stream: string): Promise<GroupCounts[]> {
  const raw = (await redis.xinfo('GROUPS', stream).catch((error: Error) => {
    if (/no such key/i.test(error.message)) return [];
    throw error;
  })) as Flat[];
  return raw.map((flat) => {
    const group = fieldMap(flat);
    const lag = group.get('lag');
    return {
      name: String(group.get('name')),
      lag: lag === null || lag === undefined ? undefined : Number(lag),
      pending: Number(group.get('pending')),
      lastDelivered: String(group.get('last-delivered-id')),
    };
  });
}

/**
 * What `streamgauge status` shows of one stream shard: its entries, each
 * consumer group's lag and pending entries, the consumers, the dead
 * letters and the archive watermark. Read with XINFO and XPENDING only.
 */
export async function shardStatus(redis: RedisClient, shard: ShardKeys, now: number): Promise<ShardStatus> {
  const info = fieldMap(
    (await redis.xinfo('STREAM', shard.stream).catch((error: Error) => {
      if (/no such key/i.test(error.message)) return [];
      throw error;
    })) as Flat,
  );
  const first = (info.get('first-entry') as Flat | null | undefined)?.[0] as string | undefined;
  const last = (info.get('last-entry') as Flat | null | undefined)?.[0] as string | undefined;
  const groups: GroupStatus[] = [];
  const counts = info.size === 0 ? [] : await groupsOf(redis, shard.stream);
  for (const { name, lastDelivered, pending, lag: reported } of counts) {
    // Redis 7 reports the lag, except when it cannot tell (after deletions, or an AOF load): count then.
    const lag = reported ?? (await countAfter(redis, shard.stream, lastDelivered));
    let oldestPendingAgeMs: number | undefined;
    if (pending > 0) {
      const summary = (await redis.xpending(shard.stream, name)) as [
        number,
        string | null,
        string | null,
        unknown,
      ];
      const oldest = summary[1];
      if (oldest) oldestPendingAgeMs = Math.max(0, now - Number(oldest.slice(0, oldest.indexOf('-'))));
    }
    const consumers = ((await redis.xinfo('CONSUMERS', shard.stream, name)) as Flat[]).map((c) => {
      const consumer = fieldMap(c);
      return {
        name: String(consumer.get('name')),
        pending: Number(consumer.get('pending')),
        idleMs: Number(consumer.get('idle')),
      };
    });
    groups.push({
      name,
      lag,
      pending,
      ...(oldestPendingAgeMs !== undefined && { oldestPendingAgeMs }),
      lastDelivered,
      consumers,
    });
  }
  const [deadLetters, archiveWatermark, backlog] = await Promise.all([
    redis.xlen(shard.deadLetters),
    redis.get(shard.archive.watermark),
    catchupBacklog(redis, shard, true),
  ]);
  const catchup = backlog.entries;
  const catchupSince = timeOf(backlog.oldestId);
  const firstEntryAt = timeOf(first);
  const lastEntryAt = timeOf(last);
  return {
    stream: shard.stream,
    length: Number(info.get('length') ?? 0),
    ...(firstEntryAt && { firstEntryAt }),
    ...(lastEntryAt && { lastEntryAt }),
    groups: groups.sort((a, b) => a.name.localeCompare(b.name)),
    deadLetters,
    ...(archiveWatermark !== null && { archiveWatermark }),
    catchup,
    ...(catchupSince && { catchupSince }),
  };
}

/** The groups every shard is expected to have. */
export const EXPECTED_GROUPS: readonly string[] = [GROUPS.aggregator, GROUPS.archiver];

/** When the pipeline counts as unhealthy. */
export interface HealthLimits {
  /** Entries a group may be behind. */
  readonly lag: number;
  /** How long an entry may stay pending, ms. */
  readonly pendingAgeMs: number;
  /**
   * How long a group with entries waiting (lag or pending) may go without any
   * consumer reading, ms: past it, nothing is working the group off.
   */
  readonly consumerIdleMs: number;
  /** Dead letters a shard may hold; undefined: not checked. */
  readonly deadLetters?: number;
}

export const DEFAULT_HEALTH_LIMITS: HealthLimits = {
  lag: 10_000,
  pendingAgeMs: 300_000,
  consumerIdleMs: 60_000,
};

/** What the pipeline status shows of the backfill's last report. */
export interface LastReconcile {
  readonly run: string;
  readonly status: string;
  readonly finishedAt: string;
  readonly panesChanged: number;
  readonly drift?: Record<string, number>;
}

/** `streamgauge status --json` and the dashboard's `/api/v1/pipeline`. */
export interface PipelineReport {
  readonly healthy: boolean;
  readonly problems: string[];
  readonly shards: ShardStatus[];
  readonly reconcile: LastReconcile | null;
  readonly cache: CacheStats;
}

/** Every shard's status, the last reconcile, the cache, and what is wrong with them. */
export async function pipelineReport(
  redis: RedisClient,
  settings: { shards: number; cacheRefreshMs: number },
  limits: HealthLimits,
  now: number,
): Promise<PipelineReport> {
  const shards = await Promise.all(allShardKeys(settings.shards).map((s) => shardStatus(redis, s, now)));
  const reconcile = (await new ReconcileControl(redis).lastReport()) as LastReconcile | null;
  const cache = await new CacheStatus(redis).read(settings.cacheRefreshMs, now);
  const problems = [...shards.flatMap((s) => shardProblems(s, limits)), ...cacheProblems(cache.status)];
  return { healthy: problems.length === 0, problems, shards, reconcile, cache };
}

function shardProblems(shard: ShardStatus, limits: HealthLimits): string[] {
  const problems: string[] = [];
  const groups = new Map(shard.groups.map((g) => [g.name, g]));
  for (const name of EXPECTED_GROUPS) {
    const group = groups.get(name);
    if (group === undefined) {
      if (shard.length > 0)
        problems.push(`${shard.stream}: group ${name} does not exist (has its consumer ever run?)`);
      continue;
    }
    if (group.lag > limits.lag)
      problems.push(`${shard.stream}: group ${name} is ${group.lag} entries behind (limit ${limits.lag})`);
    // The aggregator is also what takes the catch-up lane in.
    const waiting = group.lag + group.pending + (name === GROUPS.aggregator ? shard.catchup : 0);
    const live = group.consumers.some((c) => c.idleMs <= limits.consumerIdleMs);
    if (waiting > 0 && !live) {
      problems.push(
        `${shard.stream}: group ${name} has ${waiting} entries waiting and no live consumer (${
          group.consumers.length === 0 ? 'it has none' : `none read for ${limits.consumerIdleMs / 1000} s`
        }; is its service running?)`,
      );
    }
    if ((group.oldestPendingAgeMs ?? 0) > limits.pendingAgeMs) {
      problems.push(
        `${shard.stream}: group ${name} has an entry pending for ${Math.round((group.oldestPendingAgeMs ?? 0) / 1000)} s (limit ${limits.pendingAgeMs / 1000} s)`,
      );
    }
  }
  if (limits.deadLetters !== undefined && shard.deadLetters > limits.deadLetters) {
    problems.push(`${shard.stream}: ${shard.deadLetters} dead letters (limit ${limits.deadLetters})`);
  }
  return problems;
}

function cacheProblems(status: string): string[] {
  return status === 'error' || status === 'stale' ? [`cache: ${status} (see streamgauge cache-stats)`] : [];
}
