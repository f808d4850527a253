import { decodeEntry, GROUPS, type Reading, type RedisConfig, type ShardKeys } from '@streamgauge/core';
import { type ConnectionLogger, connectRedis, type RedisClient } from '../connection.ts';
import { runScript } from '../scripts.ts';

export type DeliveredEntry =
  | {
      readonly id: string;
      readonly deliveries: number;
      readonly source: string;
      readonly readings: Reading[];
      /** Moved from the shard's catch-up lane (admitCatchup.lua). */
      readonly fromLane?: true;
    }
  | { readonly id: string; readonly deliveries: number; readonly error: string };

/**
 * Longest a read blocks while the caller holds its catch-up lane back: the
 * lane is taken again as soon as the caller has room, however quiet the stream.
 */
const HELD_LANE_BLOCK_MS = 20;

export interface DeliveredBatch {
  readonly shard: ShardKeys;
  readonly entries: DeliveredEntry[];
}

export interface StreamConsumerOptions {
  readonly group: string;
  readonly consumer: string;
  /** Entries per read or claim. */
  readonly count: number;
  /** Longest a read blocks, ms: bounded so a stop or a dead connection is noticed. */
  readonly blockMs: number;
  /**
   * The aggregator's: before each read, move the shard's catch-up lane into
   * its stream, this many readings at a time, while the group has fewer
   * than `count` entries left to read (`admit`).
   */
  readonly catchup?: { readonly readings: number };
}

type Row = [id: string, fields: string[] | null];
type XReadGroupReply = [stream: string, rows: Row[]][] | null;
type XAutoClaimReply = [next: string, rows: Row[], deleted?: string[]];
type XPendingRow = [id: string, consumer: string, idleMs: number, deliveries: number];

/** Deliveries of an entry that vanished from the stream: it can never be processed. */
const GONE = Number.POSITIVE_INFINITY;

/**
 * A consumer in a group over the readings stream shards. Each shard is read
 * on its own connection (a blocking XREADGROUP holds a connection, and in a
 * Redis Cluster two shards may live on different masters); claims and
 * delivery counts go over the shared connection.
 */
export class StreamConsumer {
  readonly #redis: RedisClient;
  readonly #connectBlocking: (shard: ShardKeys) => RedisClient;
  readonly #blocking = new Map<string, RedisClient>();
  readonly #options: StreamConsumerOptions;
  #closed = false;

  constructor(
    redis: RedisClient,
    connectBlocking: (shard: ShardKeys) => RedisClient,
    options: StreamConsumerOptions,
  ) {
    this.#redis = redis;
    this.#connectBlocking = connectBlocking;
    this.#options = options;
  }

  get consumer(): string {
    return this.#options.consumer;
  }

  /** Creates the group on the shard's stream (from its start) if it is missing. */
  async ensureGroup(shard: ShardKeys): Promise<void> {
    try {
      await this.#redis.xgroup('CREATE', shard.stream, this.#options.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!(error as Error).message.startsWith('BUSYGROUP')) throw error;
    }
  }

  /**
   * New entries of the shard (blocking up to `blockMs`); none after a quiet
   * block. With a `catchup` option, first the next chunk of the shard's
   * catch-up lane is moved into the stream when it may be (`admit`), so the
   * read finds it behind what the group had left; with `lane: 'held'`, the
   * lane is left alone and the read blocks at most HELD_LANE_BLOCK_MS.
   */
  async read(shard: ShardKeys, options: { readonly lane?: 'admit' | 'held' } = {}): Promise<DeliveredBatch> {
    const { group, consumer, count } = this.#options;
    const held = options.lane === 'held';
    const blockMs = held ? Math.min(HELD_LANE_BLOCK_MS, this.#options.blockMs) : this.#options.blockMs;
    const connection = this.#connection(shard);
    // Sent together, in this order on one connection: the read runs right
    // after the move, without a round trip of its own in between (each
    // waited behind whatever script Redis was running, tens of ms under load).
    const admitted = held ? Promise.resolve(0) : this.#admit(connection, shard);
    const read = connection.call(
      'XREADGROUP',
      'GROUP',
      group,
      consumer,
      'COUNT',
      count,
      'BLOCK',
      blockMs,
      'STREAMS',
      shard.stream,
      '>',
    ) as Promise<XReadGroupReply>;
    // A failed move fails the read; what the read delivered meanwhile is
    // pending, and the shard's scan of pending entries applies it.
    const [, reply] = await Promise.all([admitted, read]);
    const rows = reply?.[0]?.[1] ?? [];
    return { shard, entries: rows.map((row) => decodeRow(row, 1)) };
  }

  /**
   * Moves the next chunk of the shard's catch-up lane into its stream while
   * the aggregator's group has fewer than `count` entries of it left to
   * read (admitCatchup.lua): the next read takes those, then the chunk.
   * Returns the readings moved (0 without a `catchup` option, with an empty
   * lane, or while the group is further behind).
   */
  admit(shard: ShardKeys): Promise<number> {
    return this.#admit(this.#connection(shard), shard);
  }

  // On the shard's read connection: not queued behind the commits and key
  // writes of the shared one, which the next read must not wait for.
  async #admit(connection: RedisClient, shard: ShardKeys): Promise<number> {
    const { catchup, count } = this.#options;
    if (catchup === undefined) return 0;
    const [moved] = (await runScript(
      connection,
      'admitCatchup',
      [shard.stream, ...shard.catchupLanes, shard.catchupNodes],
      [GROUPS.aggregator, count, catchup.readings],
    )) as [number, number];
    return moved;
  }

  /** The shard's own connection for blocking reads, opened on first use. */
  #connection(shard: ShardKeys): RedisClient {
    let connection = this.#blocking.get(shard.stream);
    if (connection === undefined) {
      // A loop's step still in flight when the consumer closed must not open a connection nobody closes.
      if (this.#closed) throw new Error(`the stream consumer is closed: not reading ${shard.stream}`);
      connection = this.#connectBlocking(shard);
      this.#blocking.set(shard.stream, connection);
    }
    return connection;
  }

  /**
   * Claims up to `count` entries pending (on any consumer of the group) for
   * at least `minIdleMs`, from `cursor` on, with how often each has now been
   * delivered. Entries trimmed from the stream while pending come back as
   * errors that can never succeed. `next` is '0-0' once the scan is complete.
   */
  async claim(
    shard: ShardKeys,
    minIdleMs: number,
    cursor = '0-0',
  ): Promise<{ batch: DeliveredBatch; next: string }> {
    const { group, consumer, count } = this.#options;
    const [next, rows, deleted = []] = (await this.#redis.call(
      'XAUTOCLAIM',
      shard.stream,
      group,
      consumer,
      minIdleMs,
      cursor,
      'COUNT',
      count,
    )) as XAutoClaimReply;
    const deliveries = await this.#deliveries(shard, rows);
    // Not found (should not happen): the claim itself was at least a second delivery.
    const entries = rows.map((row) => decodeRow(row, deliveries.get(row[0]) ?? 2));
    for (const id of deleted) {
      entries.push({
        id,
        deliveries: GONE,
        error: 'entry was trimmed from the stream before it was processed',
      });
    }
    return { batch: { shard, entries }, next };
  }

  /**
   * Removes the group's other consumers that have nothing pending and have
   * been idle at least `minIdleMs` (forgetIdleConsumers.lua); returns their names.
   */
  async forgetIdle(shard: ShardKeys, minIdleMs: number): Promise<string[]> {
    const { group, consumer } = this.#options;
    return (await runScript(
      this.#redis,
      'forgetIdleConsumers',
      [shard.stream],
      [group, minIdleMs, consumer],
    )) as string[];
  }

  /** Stops reading the shard: closes its connection (a read in flight is abandoned; its entries stay pending). */
  release(shard: ShardKeys): void {
    this.#blocking.get(shard.stream)?.disconnect();
    this.#blocking.delete(shard.stream);
  }

  close(): void {
    this.#closed = true;
    for (const connection of this.#blocking.values()) connection.disconnect();
    this.#blocking.clear();
  }

  async #deliveries(shard: ShardKeys, rows: readonly Row[]): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const first = rows[0]?.[0];
    const last = rows[rows.length - 1]?.[0];
    if (first === undefined || last === undefined) return counts;
    // One range query over this consumer's entries (the claimed ones, and
    // any others of its own still pending in that range).
    const pending = (await this.#redis.call(
      'XPENDING',
      shard.stream,
      this.#options.group,
      first,
      last,
      rows.length + 10_000,
      this.#options.consumer,
    )) as XPendingRow[];
    for (const [id, , , times] of pending) counts.set(id, Number(times));
    return counts;
  }
}

/**
 * Each shard's blocking reads on a connection of their own, named
 * `<name>:<shard>`, with a watchdog `marginMs` beyond the BLOCK: a read
 * whose reply was lost to a cut connection ends in an error, not a hang.
 * A read in flight when the connection drops is sent again once it is back;
 * what the lost one delivered is pending, and the shard's reader scans it
 * after the reconnection.
 */
export function blockingConnections(
  config: RedisConfig,
  options: {
    readonly name: string;
    readonly blockMs: number;
    readonly marginMs: number;
    readonly logger: ConnectionLogger;
  },
): (shard: ShardKeys) => RedisClient {
  const { logger } = options;
  return (shard) =>
    connectRedis(config, {
      name: `${options.name}:${shard.shard}`,
      commandTimeoutMs: options.blockMs + options.marginMs,
      logger: { warn: (fields, message) => logger.warn({ ...fields, stream: shard.stream }, message) },
    });
}

/**
 * Redis answers a read, claim or pending query on a group it does not hold
 * (lost to a restart without persistence, a flush, XGROUP DESTROY) with a
 * NOGROUP error.
 */
export function isGroupMissing(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOGROUP');
}

function decodeRow([id, fields]: Row, deliveries: number): DeliveredEntry {
  // A pending entry whose data was trimmed comes back without fields.
  if (fields === null) {
    return { id, deliveries: GONE, error: 'entry was trimmed from the stream before it was processed' };
  }
  try {
    const entry = decodeEntry(id, fields);
    return entry.fromLane
      ? { id, deliveries, source: entry.source, readings: entry.readings, fromLane: true }
      : { id, deliveries, source: entry.source, readings: entry.readings };
  } catch (error) {
    return { id, deliveries, error: (error as Error).message };
  }
}
