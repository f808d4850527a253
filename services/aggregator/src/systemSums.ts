import {
  contributionOf,
  EMPTY_SUMS,
  type Range,
  type SystemSums as Sums,
  systemMetricsHash,
  type WindowSummary,
} from '@streamgauge/core';
import type { LiveState } from './liveState.ts';

/**
 * The system metrics: sums over every node of every replica, from each
 * node's contribution as last evaluated.
 */
export class SystemSums {
  readonly #live: LiveState;

  constructor(live: LiveState) {
    this.#live = live;
  }

  /** Records what a node's window, just evaluated, adds to the sums. */
  contribute(id: string, range: Range, summary: WindowSummary): void {
    const shard = this.#live.nodes.get(id)?.shard.shard.shard;
    if (shard === undefined) return;
    this.#live.contributions.set(id, shard, range, contributionOf(summary));
  }

  /** Per shard held and range, the sums over the shard's nodes (EMPTY_SUMS for a shard with none). */
  partials(ranges: readonly Range[]): Map<number, Map<Range, Sums>> {
    const partials = new Map<number, Map<Range, Sums>>();
    for (const state of this.#live.shards.values()) partials.set(state.shard.shard, new Map());
    for (const range of ranges) {
      // Added in place, node by node in the same order: the same sums, no object per node.
      const sums = new Map<number, { -readonly [K in keyof Sums]: number }>();
      for (const shard of partials.keys()) sums.set(shard, { ...EMPTY_SUMS });
      // A node's contribution goes when the node does (LiveState.forget), and
      // a node never changes shard: the shard stored with it is the node's.
      this.#live.contributions.addTo(range, sums);
      for (const [shard, byRange] of partials) byRange.set(range, sums.get(shard) ?? EMPTY_SUMS);
    }
    return partials;
  }

  /**
   * The system metrics are sums over every node of every replica: this
   * replica's shards' partial sums are merged with the others' in Redis,
   * and the totals written unless a newer total is already there.
   */
  async write(ranges: readonly Range[], now: number, sums = this.partials(ranges)): Promise<void> {
    const { writer, options } = this.#live;
    await this.#live.persist(async () => {
      const { version, totals } = await writer.mergeSystemPartials(options.shardCount, sums);
      for (const range of ranges) {
        writer.writeSystem(range, systemMetricsHash(totals.get(range) ?? EMPTY_SUMS, now), version);
      }
      await writer.flush();
    }, 'system metrics');
  }
}
