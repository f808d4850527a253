import {
  CHANGES_CHANNEL,
  FIELD_END,
  GrowingArena,
  NODES_ALL_MEMBERS,
  PackedHash,
  RANGES,
  type Range,
  readModelKeys,
  type SystemSums,
  systemKeys,
} from '@streamgauge/core';
import type { ChainableCommander } from 'ioredis';
import { sendBatchOrThrow } from '../batch.ts';
import type { RedisClient } from '../connection.ts';
import { encodeScriptCall, queueEncodedCall } from '../encodedScriptCall.ts';
import { isUnavailable, RedisUnavailableError } from '../errors/RedisUnavailableError.ts';
import { SpareArenas } from '../log/spareArenas.ts';
import { loadScripts, runScript, scriptSource } from '../scripts.ts';

/** A hash's value: a record, or packed (numbers and times, built without a record). */
export type HashValue = Record<string, string> | PackedHash;

/** What the aggregator writes for one node. Absent parts are left as they are. */
export interface NodeKeys {
  readonly nodeId: string;
  readonly latest?: HashValue;
  readonly metadata?: HashValue;
  readonly metrics: ReadonlyMap<Range, HashValue>;
  readonly timeseries?: string;
}

/** Payload published on CHANGES_CHANNEL (documented in docs/read-model.md). */
export type ChangeNotice =
  | {
      /** New readings, or a backfill that replaced panes (docs/warehouse.md). */
      readonly cause: 'readings' | 'reconcile';
      /**
       * `latest`: these nodes' latest (and metadata); `latest-only`: their
       * latest, their metadata as it was; `all`: all their keys and the
       * system metrics.
       */
      readonly keys: 'latest' | 'latest-only' | 'all';
      readonly at: string;
      readonly nodes: readonly string[];
    }
  | { readonly cause: 'clock'; readonly at: string; readonly ranges: readonly Range[] };

const NOTICE_CHUNK = 1000;

/**
 * Keys one `writeNodeKeys` call writes at most. Per call a pipelined client
 * pays ~10 µs whatever it holds, so nodes share calls; a call of 500 keys
 * holds Redis for a few ms, like one ingest request.
 */
const KEYS_PER_CALL = 500;

/** Room an arena of node key calls starts with (a slice of 1,000 nodes' `latest` takes ~100 KB). */
const ARENA_BYTES = 256 * 1024;

/** One queued write: how to add it to a batch. */
type Write = (batch: ChainableCommander) => void;

/**
 * Writes the dashboard's keys (DATA_MODEL.md). Every key gets the
 * CACHE_TTL_HOURS TTL on every write, so a node that is no longer written
 * disappears. Writes are queued and sent together by `flush()`.
 *
 * Keys are overwritten whatever type they had: the scripts delete a key that
 * an older writer left with another type, and write it again.
 */
export class ReadModelWriter {
  readonly #redis: RedisClient;
  readonly #ttl: number;
  #writes: Write[] = [];
  /** Node keys not yet sealed into a write: they share one script call. */
  #openKeys: string[] = [];
  #openValues: (HashValue | string)[] = [];
  #nodesAdded: string[] = [];
  #nodesRemoved: string[] = [];
  #notices: ChangeNotice[] = [];
  /** Keys of the writes queued, and of those flushed. */
  #keysQueued = 0;
  #keysWritten = 0;
  /**
   * Where the node key calls queued since the last flush are encoded
   * (encodeScriptCall), on a standalone Redis; the arenas of flushes done
   * are used again. One whose calls failed stays with them, to be sent again.
   */
  #arena: GrowingArena | undefined;
  readonly #spares = new SpareArenas(2);

  constructor(redis: RedisClient, ttlSeconds: number) {
    this.#redis = redis;
    this.#ttl = ttlSeconds;
    loadScripts(redis);
  }

  /**
   * Queues a node's keys. Consecutive nodes' keys are written by one script
   * call (up to KEYS_PER_CALL keys), the hashes' values joined in one
   * argument (see writeNodeKeys.lua): a pipelined client's cost is per
   * command and per argument, and this sends one argument per key instead
   * of about 20, and one command per 500 keys instead of two per key. The
   * script repairs a key of the wrong type itself. On a standalone Redis a
   * call is encoded whole into the writer's arena as it is sealed
   * (encodeScriptCall), not framed by ioredis. On a cluster the keys lie in
   * different slots, so there it is one call per key, as ioredis frames it.
   */
  writeNode(node: NodeKeys): void {
    const before = this.#openKeys.length;
    const keys = this.#openKeys;
    const values = this.#openValues;
    // A hash without fields writes nothing (an HSET of no fields is an
    // error, which would fail the whole call and every retry of it).
    if (node.latest && hasFields(node.latest)) {
      keys.push(readModelKeys.nodeLatest(node.nodeId));
      values.push(node.latest);
    }
    if (node.metadata && hasFields(node.metadata)) {
      keys.push(readModelKeys.nodeMetadata(node.nodeId));
      values.push(node.metadata);
    }
    for (const [range, fields] of node.metrics) {
      if (!hasFields(fields)) continue;
      keys.push(readModelKeys.nodeMetrics(node.nodeId, range));
      values.push(fields);
    }
    if (node.timeseries !== undefined) {
      keys.push(readModelKeys.nodeTimeseries7d(node.nodeId));
      values.push(node.timeseries);
    }
    this.#keysQueued += keys.length - before;
    if (this.#redis.isCluster || keys.length >= KEYS_PER_CALL) this.#seal();
  }

  /** Turns the open node keys into queued writes (one call, or one per key on a cluster). */
  #seal(): void {
    const keys = this.#openKeys;
    const values = this.#openValues;
    if (keys.length === 0) return;
    this.#openKeys = [];
    this.#openValues = [];
    if (this.#redis.isCluster) {
      keys.forEach((key, i) => {
        const args = scriptArguments(this.#ttl, [values[i] as HashValue | string]);
        this.#writes.push((batch) => queueScript(batch, 'writeNodeKeys', [key], args));
      });
      return;
    }
    const args = scriptArguments(this.#ttl, values);
    if (this.#arena === undefined) {
      this.#arena = this.#spares.take() ?? new GrowingArena(ARENA_BYTES);
      this.#arena.reset(ARENA_BYTES);
    }
    const call = encodeScriptCall(this.#arena, WRITE_NODE_KEYS, keys, args);
    this.#writes.push((batch) => queueEncodedCall(batch, call));
  }

  /**
   * Stores this replica's partial sums (per shard and range) and returns the
   * totals over every shard, stamped with a version (mergeSystemPartials.lua).
   */
  async mergeSystemPartials(
    shards: number,
    partials: ReadonlyMap<number, ReadonlyMap<Range, SystemSums>>,
  ): Promise<{ version: string; totals: Map<Range, SystemSums> }> {
    const args: (string | number)[] = [shards, this.#ttl];
    for (const [shard, byRange] of partials) {
      for (const [range, s] of byRange) {
        args.push(`${shard}/${range}`, [s.total, s.active, s.flow, s.pressureSum, s.pressureNodes].join(','));
      }
    }
    const reply = (await runScript(
      this.#redis,
      'mergeSystemPartials',
      [systemKeys.partials],
      args,
    )) as string[];
    const totals = new Map<Range, SystemSums>();
    for (let i = 1; i + 5 < reply.length; i += 6) {
      const [total, active, flow, pressureSum, pressureNodes] = reply.slice(i + 1, i + 6).map(Number);
      const range = reply[i] as Range;
      if (RANGES.includes(range)) {
        totals.set(range, {
          total: total ?? 0,
          active: active ?? 0,
          flow: flow ?? 0,
          pressureSum: pressureSum ?? 0,
          pressureNodes: pressureNodes ?? 0,
        });
      }
    }
    return { version: String(reply[0]), totals };
  }

  /** `system:metrics:{range}`, unless a newer version of it is there already. */
  writeSystem(range: Range, fields: Record<string, string>, version: string): void {
    const keys = [readModelKeys.systemMetrics(range), systemKeys.version(range)];
    this.#keysQueued += 1;
    this.#seal();
    const args: (string | number)[] = [version, this.#ttl];
    for (const [field, value] of Object.entries(fields)) args.push(field, value);
    this.#writes.push((batch) => queueScript(batch, 'writeSystemMetrics', keys, args));
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

  /** Read-model keys written so far (a key written twice counts twice). */
  get keysWritten(): number {
    return this.#keysWritten;
  }

  /** Keys queued for the next flush. */
  get pending(): number {
    return this.#keysQueued;
  }

  /**
   * Sends everything queued in one pipeline. On failure nothing is dropped:
   * the writes stay queued (ahead of newer ones) for the next flush, and the
   * error is thrown: a RedisUnavailableError when a retry can succeed.
   *
   * A flush called while another is in flight goes once that one is done,
   * taking what it put back: two flushes failing together (a dropped
   * connection) would otherwise put their writes back in the wrong order,
   * and an older value could land last.
   */
  flush(): Promise<void> {
    const sent = this.#flushing.then(
      () => this.#send(),
      () => this.#send(),
    );
    this.#flushing = sent;
    return sent;
  }

  /** The last flush, settled or not. */
  #flushing: Promise<void> = Promise.resolve();

  async #send(): Promise<void> {
    this.#seal();
    const arena = this.#arena;
    this.#arena = undefined;
    const writes = this.#writes.splice(0);
    const added = this.#nodesAdded.splice(0);
    const removed = this.#nodesRemoved.splice(0);
    const notices = this.#notices.splice(0);
    const keys = this.#keysQueued;
    this.#keysQueued = 0;
    try {
      await sendBatchOrThrow(this.#redis, (batch) => {
        for (const write of writes) write(batch);
        const listKeys = [readModelKeys.nodesAll, NODES_ALL_MEMBERS];
        // Always renew the list's TTL, even when no node is new.
        queueScript(batch, 'addNodes', listKeys, [this.#ttl, ...added]);
        if (removed.length > 0) queueScript(batch, 'removeNodes', listKeys, removed);
      });
    } catch (error) {
      this.#writes.unshift(...writes);
      this.#nodesAdded.unshift(...added);
      this.#nodesRemoved.unshift(...removed);
      this.#notices.unshift(...notices);
      this.#keysQueued += keys;
      throw error instanceof Error && isUnavailable(error) && !(error instanceof RedisUnavailableError)
        ? new RedisUnavailableError(error)
        : error;
    }
    this.#keysWritten += keys;
    // Every call's reply came: its bytes are done with.
    if (arena !== undefined) this.#spares.give(arena);
    // Together, not one round trip each: the next flush waits for these.
    // A notice is a hint: losing one must not stop the keys from being written.
    await Promise.all(
      notices.flatMap((notice) =>
        chunked(notice).map((payload) => this.#redis.publish(CHANGES_CHANNEL, payload).catch(() => {})),
      ),
    );
  }
}

function hasFields(hash: HashValue): boolean {
  if (hash instanceof PackedHash) return hash.fields.length > 0;
  for (const _ in hash) return true;
  return false;
}

function queueScript(
  batch: ChainableCommander,
  name: 'addNodes' | 'removeNodes' | 'writeNodeKeys' | 'writeSystemMetrics',
  keys: string[],
  args: (string | number)[],
): void {
  const call = (batch as unknown as Record<string, (...a: (string | number)[]) => void>)[name];
  if (call === undefined) throw new Error(`script ${name} is not loaded`);
  call.call(batch, keys.length, ...keys, ...args);
}

const WRITE_NODE_KEYS = scriptSource('writeNodeKeys');

/**
 * writeNodeKeys' marks for a key (see the script): a string, or a hash sent
 * as JSON; between them, a field list's number. ASCII, one byte a mark.
 */
const STRING_KEY = 0;
const JSON_HASH = 127;
/** The field lists one call can name (the marks between the two above). */
const MAX_FIELD_LISTS = 126;
/** What follows each hash value in the joined argument. */
const SEPARATOR = FIELD_END;

/**
 * writeNodeKeys' arguments: the TTL, the field lists, a mark per key, the
 * hashes' values joined, then each string value (and each hash sent as JSON)
 * as an argument of its own.
 */
function scriptArguments(ttl: number, values: readonly (HashValue | string)[]): (string | number)[] {
  const lists: (readonly string[])[] = [];
  const marks: number[] = new Array(values.length);
  const joined: string[] = [];
  const strings: string[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i] as HashValue | string;
    if (typeof value === 'string') {
      marks[i] = STRING_KEY;
      strings.push(value);
      continue;
    }
    // Packed: numbers and times, which never hold the separator.
    const packed = value instanceof PackedHash;
    const names = packed ? value.fields : Object.keys(value);
    const list = fieldList(names, lists);
    const from = joined.length;
    if (list !== undefined) {
      if (packed) for (const v of value.values) joined.push(v);
      else {
        for (const name of names) {
          const v = value[name] as string;
          if (v.includes(SEPARATOR)) break;
          joined.push(v);
        }
      }
    }
    if (list === undefined || joined.length - from < names.length) {
      joined.length = from;
      marks[i] = JSON_HASH;
      strings.push(JSON.stringify(packed ? value.toRecord() : value));
      continue;
    }
    marks[i] = list;
  }
  // One flat string (a separator after the last value too): encoded as it is.
  if (joined.length > 0) joined.push('');
  const text = joined.join(SEPARATOR);
  const kinds = String.fromCharCode(...marks);
  return [ttl, lists.map((names) => names.join(',')).join('\n'), kinds, text, ...strings];
}

/**
 * The number (1-based) of the field list `names` in `lists`, added when new;
 * undefined when it cannot be named in one. A call holds a few lists
 * (`latest`, metadata, each range's metrics), so a scan finds it at once.
 */
function fieldList(names: readonly string[], lists: (readonly string[])[]): number | undefined {
  for (let l = 0; l < lists.length; l++) {
    const list = lists[l] as readonly string[];
    // A packed hash's list is a constant: found by identity.
    if (list === names) return l + 1;
    if (list.length === names.length && list.every((name, n) => name === names[n])) return l + 1;
  }
  // No fields, or a name the script could not cut out again: sent as JSON.
  if (names.length === 0 || lists.length >= MAX_FIELD_LISTS) return undefined;
  if (names.some((name) => name === '' || name.includes(',') || name.includes('\n'))) return undefined;
  lists.push(names);
  return lists.length;
}

function chunked(notice: ChangeNotice): string[] {
  if (notice.cause === 'clock' || notice.nodes.length <= NOTICE_CHUNK) return [JSON.stringify(notice)];
  const payloads: string[] = [];
  for (let i = 0; i < notice.nodes.length; i += NOTICE_CHUNK) {
    payloads.push(JSON.stringify({ ...notice, nodes: notice.nodes.slice(i, i + NOTICE_CHUNK) }));
  }
  return payloads;
}
