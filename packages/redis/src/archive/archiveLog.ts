import type { ShardKeys } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';
import { type GroupCommit, lastErrors, prepareCommit } from '../log/groupCommit.ts';
import { runScript } from '../scripts.ts';

/**
 * The archiver's bookkeeping on one shard: its acknowledgements, dead
 * letters, failed entries and counters, committed together (commitShard.lua,
 * without a lease: the warehouse skips rows it holds, so two archivers
 * writing the same entry is harmless), and the archive watermark.
 */
export class ArchiveLog {
  readonly #redis: RedisClient;
  readonly shard: ShardKeys;

  constructor(redis: RedisClient, shard: ShardKeys) {
    this.#redis = redis;
    this.shard = shard;
  }

  prepare(commit: Omit<GroupCommit, 'writes' | 'added' | 'removed'>): () => Promise<void> {
    const { shard } = this;
    const run = prepareCommit(
      this.#redis,
      {
        lease: shard.lease,
        commit: shard.archive.commit,
        stream: shard.stream,
        nodes: shard.archive.stats,
        stats: shard.archive.stats,
        deadLetters: shard.deadLetters,
        errors: shard.archive.errors,
      },
      commit,
      { token: '', ttlSeconds: 0 },
    );
    return async () => {
      await run();
    };
  }

  lastErrors(ids: readonly string[]): Promise<Map<string, string>> {
    return lastErrors(this.#redis, this.shard.archive.errors, ids);
  }

  /** Moves the watermark to `id` if nothing before it is still pending; returns the watermark. */
  async advanceWatermark(group: string, id: string): Promise<string | undefined> {
    const keys = [this.shard.stream, this.shard.archive.watermark];
    return (
      ((await runScript(this.#redis, 'archiveWatermark', keys, [group, id])) as string | null) ?? undefined
    );
  }

  async watermark(): Promise<string | undefined> {
    return (await this.#redis.get(this.shard.archive.watermark)) ?? undefined;
  }

  async counters(): Promise<Record<string, number>> {
    const raw = await this.#redis.hgetall(this.shard.archive.stats);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }
}
