import { randomUUID } from 'node:crypto';
import {
  type LatestValues,
  type NodeMetadata,
  NodeWindows,
  PANE_WIDTH,
  type PaneRing,
  type ShardKeys,
} from '@streamgauge/core';
import type { Redis } from 'ioredis';

/**
 * Where the aggregator's state lives between batches and across restarts:
 * per node, a hash of its panes (field `p<ring>.<slot>`: the pane number and
 * the pane's doubles, little-endian) plus its latest values and metadata.
 *
 * Exactly-once effect: a batch's state changes and the XACK of its entries
 * are one MULTI/EXEC on keys of one slot (the shard's hash tag). Either both
 * happen or neither does; an unacknowledged entry is re-delivered and
 * re-applied to state that does not contain it.
 */
const PANE_BYTES = 8 + PANE_WIDTH * 8;

/** Dead letters kept per shard (approximately): the stream must not grow without bound. */
const DEAD_LETTERS_KEPT = 100_000;

export interface ShardCommit {
  /** Nodes whose panes, latest values or metadata changed. */
  readonly changed: Iterable<NodeWindows>;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly group: string;
  readonly ackIds: readonly string[];
  /** Entries that cannot be processed: moved to the dead-letter stream as they are acknowledged. */
  readonly deadLetters: readonly { readonly id: string; readonly error: string }[];
  readonly counters: Readonly<Record<string, number>>;
}

export class AggregateStore {
  readonly #redis: Redis;
  readonly #shard: ShardKeys;
  readonly #ttlSeconds: number;

  constructor(redis: Redis, shard: ShardKeys, ttlSeconds: number) {
    this.#redis = redis;
    this.#shard = shard;
    this.#ttlSeconds = ttlSeconds;
  }

  async load(aheadMs: number): Promise<Map<string, NodeWindows>> {
    const ids = await this.#redis.smembers(this.#shard.aggregateNodes);
    const nodes = new Map<string, NodeWindows>();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const pipeline = this.#redis.pipeline();
      for (const id of chunk) pipeline.hgetallBuffer(this.#shard.aggregateNode(id));
      const replies = (await pipeline.exec()) ?? [];
      chunk.forEach((id, j) => {
        const [error, hash] = replies[j] as [Error | null, Record<string, Buffer>];
        if (error) throw error;
        const node = decodeNode(id, hash, aheadMs);
        if (node !== undefined) nodes.set(id, node);
      });
    }
    return nodes;
  }

  /**
   * Encodes the commit once (clearing the nodes' change marks) and returns a
   * function that runs it as one transaction; it may be run again after a
   * failure. Each attempt is a fresh MULTI, and the transaction records its
   * own id: if an attempt was applied but its reply lost, the next attempt
   * sees the id and does nothing, so counters and dead letters are never
   * applied twice.
   */
  prepare(commit: ShardCommit): () => Promise<void> {
    const shard = this.#shard;
    const writes = [...commit.changed].map((node) => ({
      key: shard.aggregateNode(node.nodeId),
      fields: encodeChanges(node),
    }));
    const commitId = commit.ackIds[commit.ackIds.length - 1] ?? `local:${randomUUID()}`;
    return async () => {
      if ((await this.#redis.get(shard.aggregateCommit)) === commitId) return;
      const multi = this.#redis.multi();
      for (const { key, fields } of writes) {
        if (fields.length > 0) multi.hset(key, ...fields);
        multi.expire(key, this.#ttlSeconds);
      }
      if (commit.added.length > 0) multi.sadd(shard.aggregateNodes, ...commit.added);
      if (commit.removed.length > 0) {
        multi.srem(shard.aggregateNodes, ...commit.removed);
        multi.del(...commit.removed.map((id) => shard.aggregateNode(id)));
      }
      for (const [counter, by] of Object.entries(commit.counters)) {
        if (by !== 0) multi.hincrby(shard.aggregateStats, counter, by);
      }
      for (const dead of commit.deadLetters) {
        multi.xadd(
          shard.deadLetters,
          'MAXLEN',
          '~',
          DEAD_LETTERS_KEPT,
          '*',
          'stream',
          shard.stream,
          'id',
          dead.id,
          'group',
          commit.group,
          'error',
          dead.error,
        );
      }
      if (commit.ackIds.length > 0) multi.xack(shard.stream, commit.group, ...commit.ackIds);
      multi.set(shard.aggregateCommit, commitId);
      const replies = await multi.exec();
      if (replies === null) throw new Error('aggregate commit was aborted');
      const failed = replies.find(([error]) => error !== null);
      if (failed) throw failed[0];
    };
  }

  /** The group's last delivered entry on this shard's stream, if the group exists. */
  async lastDelivered(group: string): Promise<string | undefined> {
    const groups = (await this.#redis.xinfo('GROUPS', this.#shard.stream).catch(() => [])) as unknown[][];
    for (const flat of groups) {
      const info = new Map<unknown, unknown>();
      for (let i = 0; i + 1 < flat.length; i += 2) info.set(flat[i], flat[i + 1]);
      if (info.get('name') === group) return String(info.get('last-delivered-id'));
    }
    return undefined;
  }

  /** Records that every key reflects the stream up to `id`. */
  async markWritten(id: string): Promise<void> {
    await this.#redis.set(this.#shard.aggregateWritten, id);
  }

  async counters(): Promise<Record<string, number>> {
    const raw = await this.#redis.hgetall(this.#shard.aggregateStats);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }
}

/** The hash fields of a node's changed panes, latest values and metadata; clears its change marks. */
function encodeChanges(node: NodeWindows): (string | Buffer)[] {
  const fields: (string | Buffer)[] = [];
  node.rings.forEach((ring, r) => {
    const changed = node.changedPanes[r] as Set<number>;
    for (const pane of changed) {
      const at = ring.offsetOf(pane);
      if (at < 0) continue;
      fields.push(`p${r}.${at / PANE_WIDTH}`, encodePane(ring, pane, at));
    }
    changed.clear();
  });
  if (node.latestChanged) {
    fields.push('latest', JSON.stringify(node.latest ?? null), 'meta', JSON.stringify(node.metadata));
    node.latestChanged = false;
  }
  return fields;
}

function encodePane(ring: PaneRing, pane: number, at: number): Buffer {
  const buffer = Buffer.allocUnsafe(PANE_BYTES);
  buffer.writeDoubleLE(pane, 0);
  Buffer.from(ring.data.buffer, ring.data.byteOffset + at * 8, PANE_WIDTH * 8).copy(buffer, 8);
  return buffer;
}

function decodeNode(nodeId: string, hash: Record<string, Buffer>, aheadMs: number): NodeWindows | undefined {
  const fields = Object.entries(hash);
  if (fields.length === 0) return undefined;
  const node = new NodeWindows(nodeId, aheadMs);
  const content = new Float64Array(PANE_WIDTH);
  for (const [field, value] of fields) {
    if (field === 'latest') {
      node.latest = (JSON.parse(value.toString('utf8')) ?? undefined) as LatestValues | undefined;
    } else if (field === 'meta') {
      node.metadata = JSON.parse(value.toString('utf8')) as NodeMetadata;
    } else if (field.startsWith('p') && value.length === PANE_BYTES) {
      const ring = Number(field.slice(1, field.indexOf('.')));
      for (let i = 0; i < PANE_WIDTH; i++) content[i] = value.readDoubleLE(8 + i * 8);
      node.restorePane(ring, value.readDoubleLE(0), content);
    }
  }
  return node;
}
