import { reconcileKeys } from '@streamgauge/core';
import { Cluster } from 'ioredis';
import type { RedisClient } from '../connection.ts';

export type CacheState = 'empty' | 'initializing' | 'ok' | 'stale' | 'error';

/**
 * The old system's `get_cache_stats`, honest: the time of the last refresh
 * that completed (not of the last attempt), the last error (never
 * swallowed), and "initialized" only once a backfill's panes are in place.
 */
export interface CacheStats {
  readonly keys: number;
  readonly memoryUsed: string;
  readonly memoryUsedBytes: number;
  readonly initialized: boolean;
  readonly initializedAt?: string;
  readonly lastRefresh?: string;
  readonly lastRefreshRun?: string;
  readonly refreshingSince?: string;
  readonly lastError?: string;
  readonly lastErrorAt?: string;
  /** empty: never filled; initializing: the first fill is running; stale: no refresh for 2 intervals; error: the last run failed. */
  readonly status: CacheState;
}

/** Reads and records the cache's refresh history (`cache:status`). */
export class CacheStatus {
  readonly #redis: RedisClient;

  constructor(redis: RedisClient) {
    this.#redis = redis;
  }

  async started(run: string, at: number): Promise<void> {
    await this.#redis.hset(reconcileKeys.cacheStatus, {
      refreshing_since: new Date(at).toISOString(),
      refreshing_run: run,
    });
  }

  /** A run completed: every shard applied its panes. The first one marks the cache initialized. */
  async refreshed(run: string, at: number): Promise<void> {
    const iso = new Date(at).toISOString();
    await this.#redis.hsetnx(reconcileKeys.cacheStatus, 'initialized_at', iso);
    await this.#redis.hset(reconcileKeys.cacheStatus, { last_refresh_at: iso, last_refresh_run: run });
    await this.#redis.hdel(reconcileKeys.cacheStatus, 'refreshing_since', 'refreshing_run');
  }

  async failed(error: unknown, at: number): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    await this.#redis.hset(reconcileKeys.cacheStatus, {
      last_error: message,
      last_error_at: new Date(at).toISOString(),
    });
    await this.#redis.hdel(reconcileKeys.cacheStatus, 'refreshing_since', 'refreshing_run');
  }

  /** When the last complete refresh finished (ms), or undefined when none did. */
  async lastRefreshAt(): Promise<number | undefined> {
    const iso = await this.#redis.hget(reconcileKeys.cacheStatus, 'last_refresh_at');
    return iso === null ? undefined : Date.parse(iso);
  }

  /** Whether a refresh ever completed. */
  async initialized(): Promise<boolean> {
    return (await this.#redis.hexists(reconcileKeys.cacheStatus, 'initialized_at')) === 1;
  }

  async read(refreshMs: number, now: number): Promise<CacheStats> {
    const raw = await this.#redis.hgetall(reconcileKeys.cacheStatus);
    const { keys, bytes, human } = await usage(this.#redis);
    const lastRefresh = raw.last_refresh_at;
    const lastErrorAt = raw.last_error_at;
    let status: CacheState;
    if (lastErrorAt !== undefined && (lastRefresh === undefined || lastErrorAt > lastRefresh))
      status = 'error';
    else if (raw.initialized_at === undefined) status = raw.refreshing_since ? 'initializing' : 'empty';
    else if (lastRefresh === undefined || now - Date.parse(lastRefresh) > 2 * refreshMs) status = 'stale';
    else status = 'ok';
    return {
      keys,
      memoryUsed: human,
      memoryUsedBytes: bytes,
      initialized: raw.initialized_at !== undefined,
      ...(raw.initialized_at && { initializedAt: raw.initialized_at }),
      ...(lastRefresh && { lastRefresh }),
      ...(raw.last_refresh_run && { lastRefreshRun: raw.last_refresh_run }),
      ...(raw.refreshing_since && { refreshingSince: raw.refreshing_since }),
      ...(raw.last_error && { lastError: raw.last_error }),
      ...(lastErrorAt && { lastErrorAt }),
      status,
    };
  }
}

/** Keys and memory of the whole database: summed over the masters on a cluster. */
async function usage(redis: RedisClient): Promise<{ keys: number; bytes: number; human: string }> {
  const servers = redis instanceof Cluster ? redis.nodes('master') : [redis];
  let keys = 0;
  let bytes = 0;
  for (const server of servers) {
    keys += await server.dbsize();
    const info = await server.info('memory');
    bytes += Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
  }
  return { keys, bytes, human: humanBytes(bytes) };
}

function humanBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 2)}${units[unit]}`;
}
