import { type NodeBackfill, reconcileNode, type ShardKeys, truthOf } from '@streamgauge/core';
import { PERSISTED_CHUNK, PersistedWindows, type RedisClient, StreamTail } from '@streamgauge/redis';

/** A shard's backfill against the aggregator's persisted windows. */
export interface Comparison {
  /** What to offer: the nodes whose persisted windows differ from the warehouse's (or are not persisted). */
  readonly differing: NodeBackfill[];
  /** Nodes that matched, left out of the offer. */
  readonly matched: number;
  /** Panes compared in the nodes that matched. */
  readonly panesCompared: number;
}

const NO_PANES = new Float64Array(0);

/**
 * Leaves out of a shard's offer the nodes that need nothing: for each node,
 * the truth (the warehouse's panes, plus the stream after the cut up to the
 * last entry the persisted state holds, replayed) is compared with the
 * windows the aggregator persisted, read with that mark in one
 * transaction. A node that matches was right as of that entry, and the
 * aggregator has only applied later entries to it since; so only nodes that
 * differ are offered, and the aggregator leaves the rest as they are. With
 * no drift a run offers nothing: neither Redis memory for the payload nor
 * the aggregator's time to compare every node.
 *
 * Live nodes the warehouse knows nothing of are compared with the stream's
 * tail alone. Whatever cannot be compared (no persisted state, entries
 * after the cut trimmed) is offered, and the aggregator decides as before.
 */
export async function compareWithPersisted(
  redis: RedisClient,
  shard: ShardKeys,
  nodes: readonly NodeBackfill[],
  options: {
    readonly cut: string;
    readonly aheadMs: number;
    readonly now: number;
    /** A rebuild's scope: only these nodes, only panes from `since` on. */
    readonly wanted?: ReadonlySet<string>;
    readonly since?: number;
  },
): Promise<Comparison> {
  const persisted = new PersistedWindows(redis, shard);
  const known = new Set(nodes.map((n) => n.nodeId));
  const all = [...nodes];
  for (const id of await persisted.nodeIds()) {
    if (known.has(id) || (options.wanted !== undefined && !options.wanted.has(id))) continue;
    all.push({ nodeId: id, panes: NO_PANES, metadata: {}, readings: [] });
  }
  const tail = new StreamTail(redis, shard.stream, options.cut);
  const differing: NodeBackfill[] = [];
  let matched = 0;
  let panesCompared = 0;
  for (let from = 0; from < all.length; from += PERSISTED_CHUNK) {
    const chunk = all.slice(from, from + PERSISTED_CHUNK);
    const { applied, windows } = await persisted.read(
      chunk.map((n) => n.nodeId),
      options.aheadMs,
    );
    // No mark: the state holds no stream entry (it came from the warehouse alone).
    const upTo = applied ?? '0-0';
    await tail.readTo(upTo);
    for (const node of chunk) {
      const live = windows.get(node.nodeId);
      if (live === undefined) {
        differing.push(node);
        continue;
      }
      const truth = truthOf(node, options.aheadMs, options.now, tail.of(node.nodeId, upTo));
      const outcome = reconcileNode(live, truth, options.now, {}, options.since);
      if (outcome.changed > 0 || outcome.identityChanged) differing.push(node);
      else {
        matched++;
        panesCompared += outcome.compared;
      }
    }
  }
  return { differing, matched, panesCompared };
}
