import { CHANGES_CHANNEL, NODES_ALL_MEMBERS, type Range, readModelKeys } from '@streamgauge/core';
import type { ChainableCommander, Redis } from 'ioredis';
import { loadScripts } from './scripts.ts';

/** What the aggregator writes for one node. Absent parts are left as they are. */
export interface NodeKeys {
  readonly nodeId: string;
  readonly latest?: Record<string, string>;
  readonly metadata?: Record<string, string>;
  readonly metrics: ReadonlyMap<Range, Record<string, string>>;
  readonly timeseries?: string;
}

/** Payload published on CHANGES_CHANNEL (documented in docs/read-model.md). */
export type ChangeNotice =
  | {
      readonly cause: 'readings';
      /** `latest`: these nodes' latest (and metadata); `all`: all their keys and the system metrics. */
      readonly keys: 'latest' | 'all';
      readonly at: string;
      readonly nodes: readonly string[];
    }
  | { readonly cause: 'clock'; readonly at: string; readonly ranges: readonly Range[] };

const NOTICE_CHUNK = 1000;

/**
 * Writes the dashboard's keys (DATA_MODEL.md). Every key gets the
 * CACHE_TTL_HOURS TTL on every write, so a node that is no longer written
 * disappears. Writes are queued and sent in one pipeline by `flush()`.
 *
 * Keys are overwritten whatever type they had: a key that an older writer
 * left with another type (WRONGTYPE) is deleted and written again.
 */
export class ReadModelWriter {
  readonly #redis: Redis;
  readonly #ttl: number;
  #batch: ChainableCommander;
  /** Per queued command, the hash it writes (to rewrite it after WRONGTYPE). */
  #owners: ([key: string, fields: Record<string, string>] | undefined)[] = [];
  #nodesAdded: string[] = [];
  #nodesRemoved: string[] = [];
  #notices: ChangeNotice[] = [];

  constructor(redis: Redis, ttlSeconds: number) {
    this.#redis = redis;
    this.#ttl = ttlSeconds;
    loadScripts(redis);
    this.#batch = redis.pipeline();
  }

  /**
   * One script call per node writes all its keys, their values in one JSON
   * argument: a pipelined client's cost is per argument, and this sends 11
   * per node instead of about 230 (17 commands).
   */
  writeNode(node: NodeKeys): void {
    const keys: string[] = [];
    const values: (Record<string, string> | string)[] = [];
    if (node.latest) {
      keys.push(readModelKeys.nodeLatest(node.nodeId));
      values.push(node.latest);
    }
    if (node.metadata) {
      keys.push(readModelKeys.nodeMetadata(node.nodeId));
      values.push(node.metadata);
    }
    for (const [range, fields] of node.metrics) {
      keys.push(readModelKeys.nodeMetrics(node.nodeId, range));
      values.push(fields);
    }
    if (node.timeseries !== undefined) {
      keys.push(readModelKeys.nodeTimeseries7d(node.nodeId));
      values.push(node.timeseries);
    }
    if (keys.length === 0) return;
    queueScript(this.#batch, 'writeNodeKeys', keys, [this.#ttl, JSON.stringify(values)]);
    this.#owners.push(undefined);
  }

  writeSystem(range: Range, fields: Record<string, string>): void {
    this.#hash(readModelKeys.systemMetrics(range), fields);
  }

  /** Lists nodes in `nodes:all` (each once) and renews its TTL. */
  listNodes(nodeIds: Iterable<string>): void {
    for (const id of nodeIds) this.#nodesAdded.push(id);
  }

  unlistNodes(nodeIds: Iterable<string>): void {
    for (const id of nodeIds) this.#nodesRemoved.push(id);
  }

  notify(notice: ChangeNotice): void {
    this.#notices.push(notice);
  }

  /** Commands queued for the next flush. */
  get pending(): number {
    return this.#owners.length;
  }

  async flush(): Promise<void> {
    const batch = this.#batch;
    const owners = this.#owners;
    const added = this.#nodesAdded;
    const removed = this.#nodesRemoved;
    const notices = this.#notices;
    this.#batch = this.#redis.pipeline();
    this.#owners = [];
    this.#nodesAdded = [];
    this.#nodesRemoved = [];
    this.#notices = [];

    const listKeys = [readModelKeys.nodesAll, NODES_ALL_MEMBERS];
    // Always renew the list's TTL, even when no node is new.
    queueScript(batch, 'addNodes', listKeys, [this.#ttl, ...added]);
    if (removed.length > 0) queueScript(batch, 'removeNodes', listKeys, removed);
    const replies = (await batch.exec()) ?? [];

    const retry = this.#redis.pipeline();
    let retries = 0;
    for (const [index, [error]] of replies.entries()) {
      if (error === null) continue;
      const hash = owners[index];
      if (error.message.startsWith('WRONGTYPE') && hash !== undefined) {
        if (index > 0 && owners[index - 1] === hash) continue; // its EXPIRE, after its HSET failed
        retry.del(hash[0]).hset(hash[0], hash[1]).expire(hash[0], this.#ttl);
        retries++;
      } else {
        throw error;
      }
    }
    if (retries > 0) await retry.exec();

    for (const notice of notices) {
      for (const payload of chunked(notice)) await this.#redis.publish(CHANGES_CHANNEL, payload);
    }
  }

  #hash(key: string, fields: Record<string, string>): void {
    const hash: [string, Record<string, string>] = [key, fields];
    this.#batch.hset(key, fields).expire(key, this.#ttl);
    this.#owners.push(hash, hash);
  }
}

function queueScript(
  batch: ChainableCommander,
  name: 'addNodes' | 'removeNodes' | 'writeNodeKeys',
  keys: string[],
  args: (string | number)[],
): void {
  const call = (batch as unknown as Record<string, (...a: (string | number)[]) => void>)[name];
  if (call === undefined) throw new Error(`script ${name} is not loaded`);
  call.call(batch, keys.length, ...keys, ...args);
}

function chunked(notice: ChangeNotice): string[] {
  if (notice.cause === 'clock' || notice.nodes.length <= NOTICE_CHUNK) return [JSON.stringify(notice)];
  const payloads: string[] = [];
  for (let i = 0; i < notice.nodes.length; i += NOTICE_CHUNK) {
    payloads.push(JSON.stringify({ ...notice, nodes: notice.nodes.slice(i, i + NOTICE_CHUNK) }));
  }
  return payloads;
}
