import { CHANGES_CHANNEL, NODES_ALL_MEMBERS, type Range, readModelKeys } from '@streamgauge/core';
import type { ChainableCommander, Redis } from 'ioredis';
import { isUnavailable, RedisUnavailableError } from './errors/RedisUnavailableError.ts';
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
/** One queued write: how to add it to a pipeline, and the hash it writes (for WRONGTYPE repair). */
interface Write {
  readonly queue: (batch: ChainableCommander) => void;
  readonly commands: number;
  readonly hash?: readonly [key: string, fields: Record<string, string>];
}

export class ReadModelWriter {
  readonly #redis: Redis;
  readonly #ttl: number;
  #writes: Write[] = [];
  #nodesAdded: string[] = [];
  #nodesRemoved: string[] = [];
  #notices: ChangeNotice[] = [];

  constructor(redis: Redis, ttlSeconds: number) {
    this.#redis = redis;
    this.#ttl = ttlSeconds;
    loadScripts(redis);
  }

  /**
   * One script call per node writes all its keys, their values in one JSON
   * argument: a pipelined client's cost is per argument, and this sends 11
   * per node instead of about 230 (17 commands). The script repairs a key
   * of the wrong type itself.
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
    const args = [this.#ttl, JSON.stringify(values)];
    this.#writes.push({ queue: (batch) => queueScript(batch, 'writeNodeKeys', keys, args), commands: 1 });
  }

  writeSystem(range: Range, fields: Record<string, string>): void {
    const key = readModelKeys.systemMetrics(range);
    this.#writes.push({
      queue: (batch) => batch.hset(key, fields).expire(key, this.#ttl),
      commands: 2,
      hash: [key, fields],
    });
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

  /** Writes queued for the next flush. */
  get pending(): number {
    return this.#writes.length;
  }

  /**
   * Sends everything queued in one pipeline. On failure nothing is dropped:
   * the writes stay queued (ahead of newer ones) for the next flush, and the
   * error is thrown: a RedisUnavailableError when a retry can succeed.
   */
  async flush(): Promise<void> {
    const writes = this.#writes.splice(0);
    const added = this.#nodesAdded.splice(0);
    const removed = this.#nodesRemoved.splice(0);
    const notices = this.#notices.splice(0);
    try {
      const batch = this.#redis.pipeline();
      const owners: (Write | undefined)[] = [];
      for (const write of writes) {
        write.queue(batch);
        for (let i = 0; i < write.commands; i++) owners.push(write);
      }
      const listKeys = [readModelKeys.nodesAll, NODES_ALL_MEMBERS];
      // Always renew the list's TTL, even when no node is new.
      queueScript(batch, 'addNodes', listKeys, [this.#ttl, ...added]);
      if (removed.length > 0) queueScript(batch, 'removeNodes', listKeys, removed);
      const replies = (await batch.exec()) ?? [];

      const repairs: Write[] = [];
      for (const [index, [error]] of replies.entries()) {
        if (error === null) continue;
        if (isUnavailable(error)) throw new RedisUnavailableError(error);
        const owner = owners[index];
        if (!error.message.startsWith('WRONGTYPE') || owner?.hash === undefined) throw error;
        if (!repairs.includes(owner)) repairs.push(owner);
      }
      if (repairs.length > 0) {
        const repair = this.#redis.pipeline();
        for (const { hash } of repairs) {
          if (hash) repair.del(hash[0]).hset(hash[0], hash[1]).expire(hash[0], this.#ttl);
        }
        const failed = ((await repair.exec()) ?? []).find(([error]) => error !== null);
        if (failed?.[0]) throw isUnavailable(failed[0]) ? new RedisUnavailableError(failed[0]) : failed[0];
      }
    } catch (error) {
      this.#writes.unshift(...writes);
      this.#nodesAdded.unshift(...added);
      this.#nodesRemoved.unshift(...removed);
      this.#notices.unshift(...notices);
      throw error instanceof Error && isUnavailable(error) && !(error instanceof RedisUnavailableError)
        ? new RedisUnavailableError(error)
        : error;
    }
    for (const notice of notices) {
      for (const payload of chunked(notice)) {
        // A notice is a hint: losing one must not stop the keys from being written.
        await this.#redis.publish(CHANGES_CHANNEL, payload).catch(() => {});
      }
    }
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
