import { AGGREGATOR_REPLICAS, type ShardKeys } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';
import { runScript } from '../scripts.ts';

/**
 * Which aggregator replica processes which shard. A replica announces itself
 * in the replica set and holds a lease per shard it processes; both expire
 * unless renewed, so a dead replica's shards are free again within `leaseMs`.
 * Commits are fenced by the lease (commitShard.lua), so even a replica that
 * stalls past its lease cannot apply a batch its successor also applies.
 *
 * Each acquisition holds the lease under its own token (the replica's token
 * and a sequence number): work left over from an earlier acquisition of the
 * same shard by the same replica is fenced off too.
 */
export class ShardLeases {
  readonly #redis: RedisClient;
  readonly token: string;
  readonly leaseMs: number;
  #acquisitions = 0;

  constructor(redis: RedisClient, options: { token: string; leaseMs: number }) {
    this.#redis = redis;
    this.token = options.token;
    this.leaseMs = options.leaseMs;
  }

  /** Renews this replica's membership; returns every live replica's token. */
  async members(): Promise<string[]> {
    return (await this.#replicas('join')) as string[];
  }

  async leave(): Promise<void> {
    await this.#replicas('leave');
  }

  /** Takes the shard's lease if it is free; returns the acquisition's token, or undefined. */
  async acquire(shard: ShardKeys): Promise<string | undefined> {
    const token = `${this.token}#${++this.#acquisitions}`;
    return (await this.#lease(shard, 'acquire', token)) ? token : undefined;
  }

  /** Extends the lease; false when it is no longer held under `token`. */
  renew(shard: ShardKeys, token: string): Promise<boolean> {
    return this.#lease(shard, 'renew', token);
  }

  release(shard: ShardKeys, token: string): Promise<boolean> {
    return this.#lease(shard, 'release', token);
  }

  /** The token holding the shard's lease, if any. */
  async holder(shard: ShardKeys): Promise<string | undefined> {
    return (await this.#redis.get(shard.lease)) ?? undefined;
  }

  async #lease(shard: ShardKeys, mode: 'acquire' | 'renew' | 'release', token: string): Promise<boolean> {
    return (await runScript(this.#redis, 'lease', [shard.lease], [mode, token, this.leaseMs])) === 1;
  }

  #replicas(mode: 'join' | 'leave'): Promise<unknown> {
    return runScript(this.#redis, 'replicas', [AGGREGATOR_REPLICAS], [mode, this.token, this.leaseMs]);
  }
}

/** The shards whose lease an aggregator replica holds now (a live replica renews its leases). */
export async function heldShards(redis: RedisClient, shards: readonly ShardKeys[]): Promise<ShardKeys[]> {
  const holders = await Promise.all(shards.map((shard) => redis.get(shard.lease)));
  return shards.filter((_, i) => holders[i] !== null);
}
