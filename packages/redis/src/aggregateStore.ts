import { randomUUID } from 'node:crypto';
import {
  type LatestValues,
  type NodeMetadata,
  NodeWindows,
  PANE_WIDTH,
  type PaneRing,
  type ShardKeys,
} from '@streamgauge/core';
import type { RedisClient } from './connection.ts';
import { LeaseLostError } from './errors/LeaseLostError.ts';
import { runScript } from './scripts.ts';

/**
 * Where the aggregator's state lives between batches and across restarts:
 * per node, a hash of its panes (field `p<ring>.<slot>`: the pane number and
 * the pane's doubles, little-endian) plus its latest values and metadata.
 *
 * Exactly-once effect: a batch's state changes and the XACK of its entries
 * are one script on keys of one slot (the shard's hash tag). Either both
 * happen or neither does; an unacknowledged entry is re-delivered and
 * re-applied to state that does not contain it. The script commits only for
 * the holder of the shard's lease, so a replica that lost the shard (paused
 * past its lease) cannot overwrite what its successor committed.
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
  /** Entries given up on: moved to the dead-letter stream as they are acknowledged. */
  readonly deadLetters: readonly DeadLetter[];
  /** Entries that failed and stay pending (to be delivered again): their last error. */
  readonly failures: readonly { readonly id: string; readonly error: string }[];
  readonly counters: Readonly<Record<string, number>>;
}

export interface DeadLetter {
  readonly id: string;
  readonly error: string;
  readonly deliveries: number;
}

export class AggregateStore {
  readonly #redis: RedisClient;
  readonly #shard: ShardKeys;
  readonly #ttlSeconds: number;
  /** This replica's lease token: commits are refused unless it holds the shard's lease. */
  readonly #token: string;

  constructor(redis: RedisClient, shard: ShardKeys, options: { ttlSeconds: number; token: string }) {
    this.#redis = redis;
    this.#shard = shard;
    this.#ttlSeconds = options.ttlSeconds;
    this.#token = options.token;
  }

  get shard(): ShardKeys {
    return this.#shard;
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
   * function that runs it as one script call; it may be run again after a
   * failure. The script records the commit's id: if an attempt was applied
   * but its reply lost, the next attempt does nothing, so counters and dead
   * letters are never applied twice. Throws LeaseLostError when another
   * replica holds the shard.
   */
  prepare(commit: ShardCommit): () => Promise<void> {
    const shard = this.#shard;
    const keys = [
      shard.lease,
      shard.aggregateCommit,
      shard.stream,
      shard.aggregateNodes,
      shard.aggregateStats,
      shard.deadLetters,
      shard.errors,
    ];
    const commitId = commit.ackIds[commit.ackIds.length - 1] ?? `local:${randomUUID()}`;
    const args: (string | number | Buffer)[] = [
      this.#token,
      commitId,
      this.#ttlSeconds,
      commit.group,
      DEAD_LETTERS_KEPT,
    ];
    const changed = [...commit.changed];
    args.push(changed.length);
    for (const node of changed) {
      keys.push(shard.aggregateNode(node.nodeId));
      const fields = encodeChanges(node);
      args.push(fields.length / 2);
      for (const field of fields) args.push(field);
    }
    pushList(args, commit.added);
    pushList(args, commit.removed);
    for (const id of commit.removed) keys.push(shard.aggregateNode(id));
    const counters = Object.entries(commit.counters).filter(([, by]) => by !== 0);
    args.push(counters.length);
    for (const [name, by] of counters) args.push(name, by);
    args.push(commit.deadLetters.length);
    for (const dead of commit.deadLetters) args.push(dead.id, dead.error, dead.deliveries);
    args.push(commit.failures.length);
    for (const failure of commit.failures) args.push(failure.id, failure.error);
    pushList(args, commit.ackIds);
    return async () => {
      try {
        await runScript(this.#redis, 'commitShard', keys, args as (string | number)[]);
      } catch (error) {
        if ((error as Error).message?.startsWith('LEASE_LOST')) throw new LeaseLostError(shard.stream);
        throw error;
      }
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

  /** Records that every key reflects the stream up to `id` (only while holding the lease). */
  async markWritten(id: string): Promise<void> {
    await runScript(
      this.#redis,
      'markWritten',
      [this.#shard.lease, this.#shard.aggregateWritten],
      [this.#token, id],
    );
  }

  /** The last error of each given entry that failed before (entries that never failed are absent). */
  async lastErrors(ids: readonly string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const values = await this.#redis.hmget(this.#shard.errors, ...ids);
    const errors = new Map<string, string>();
    ids.forEach((id, i) => {
      const value = values[i];
      if (typeof value === 'string') errors.set(id, value);
    });
    return errors;
  }

  async counters(): Promise<Record<string, number>> {
    const raw = await this.#redis.hgetall(this.#shard.aggregateStats);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }
}

function pushList(args: (string | number | Buffer)[], items: readonly string[]): void {
  args.push(items.length);
  for (const item of items) args.push(item);
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
