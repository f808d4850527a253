import { type NodeWindows, RINGS, type ShardKeys } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';
import { decodeNode } from './aggregateStore.ts';

/**
 * The hash fields that hold a node's windows, latest values and metadata
 * (not its detectors): its head, rings and rings' recent panes, and format 2's fields the head
 * replaced (a node not committed since the upgrade still has them).
 */
const WINDOW_FIELDS = ['h', ...RINGS.flatMap((_, r) => [`r${r}`, `t${r}`, `c${r}`]), 'latest', 'meta'];

/** Nodes whose persisted windows are read in one transaction. */
export const PERSISTED_CHUNK = 200;

/**
 * The aggregator's persisted windows, read without a lease (the backfill
 * compares them with the warehouse). What a replica would load on restart:
 * equal to its live windows as of the last entry it committed.
 */
export class PersistedWindows {
  readonly #redis: RedisClient;
  readonly #shard: ShardKeys;

  constructor(redis: RedisClient, shard: ShardKeys) {
    this.#redis = redis;
    this.#shard = shard;
  }

  /** Every node the shard's state holds. */
  nodeIds(): Promise<string[]> {
    return this.#redis.smembers(this.#shard.aggregateNodes);
  }

  /**
   * The windows of `ids` (absent: nothing persisted) and the highest entry
   * the state holds, in one transaction: the aggregator commits a batch's
   * state and that mark in one script, so the two agree.
   */
  async read(
    ids: readonly string[],
    aheadMs: number,
  ): Promise<{ applied: string | undefined; windows: Map<string, NodeWindows> }> {
    const transaction = this.#redis.multi();
    for (const id of ids) transaction.hmgetBuffer(this.#shard.aggregateNode(id), ...WINDOW_FIELDS);
    transaction.get(this.#shard.aggregateApplied);
    const replies = (await transaction.exec()) ?? [];
    const windows = new Map<string, NodeWindows>();
    ids.forEach((id, i) => {
      const [error, values] = replies[i] as [Error | null, (Buffer | null)[]];
      if (error) throw error;
      const hash: Record<string, Buffer> = {};
      values.forEach((value, f) => {
        if (value !== null) hash[WINDOW_FIELDS[f] as string] = value;
      });
      const node = decodeNode(id, hash, aheadMs);
      if (node !== undefined) windows.set(id, node.windows);
    });
    const [error, applied] = replies[ids.length] as [Error | null, string | null];
    if (error) throw error;
    return { applied: applied ?? undefined, windows };
  }
}
