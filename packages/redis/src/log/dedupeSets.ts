import {
  type Clock,
  identityOf,
  type Reading,
  type ReadingIdentity,
  type ShardKeys,
} from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';
import { sendBatchOrThrow } from '../batch.ts';
import type { RedisClient } from '../connection.ts';
import { runScript, type ScriptArgument } from '../scripts.ts';

/**
 * The dedupe protocol. Per shard and event-time hour, a hash
 * `seen:{tag}:<hour>`: node id → the accepted readings' millisecond offsets
 * in that hour, 4 bytes each (little-endian int32), in the order accepted.
 * It expires the horizon after its last acceptance. Ingest checks and marks
 * inside appendReadings.lua, one atomic step with the XADD (through
 * `SeenHours`); a redrive checks and marks here. The scripts share
 * `include/seenHours.lua`. Nothing else knows the layout.
 *
 * The layout before (until 2026-12-05) kept a set per node and hour,
 * `seen:{tag}:<node>:<hour>`, which cost three Redis calls per node of a
 * request. Its sets are still consulted until they have all expired: see
 * `seenBeforeUntil`.
 */
export class DedupeSets {
  readonly #redis: RedisClient;
  readonly #shard: ShardKeys;
  readonly #horizonMs: number;
  readonly #clock: Clock;

  constructor(
    redis: RedisClient,
    shard: ShardKeys,
    options: { readonly horizonMs: number; readonly clock: Clock },
  ) {
    this.#redis = redis;
    this.#shard = shard;
    this.#horizonMs = options.horizonMs;
    this.#clock = options.clock;
  }

  /** Which of these readings were accepted already (within the horizon): sending them again would count them twice. */
  async accepted(readings: readonly Reading[]): Promise<Reading[]> {
    if (readings.length === 0) return [];
    const before =
      this.#clock.now() < (await seenBeforeUntil(this.#redis, this.#shard, this.#horizonMs, this.#clock));
    const identities = readings.map(identityOf);
    const replies = await sendBatchOrThrow(this.#redis, (batch) => {
      for (const identity of identities) {
        batch.hgetBuffer(this.#shard.seen(identity.bucket), identity.nodeId);
        if (before) batch.sismember(this.#shard.seenBefore(identity), String(identity.offset));
      }
    });
    const step = before ? 2 : 1;
    return readings.filter((_, i) => {
      const { offset } = identities[i] as ReadingIdentity;
      return (
        holdsOffset(replies[i * step] as Buffer | null, offset) || (before && replies[i * step + 1] === 1)
      );
    });
  }

  /** Marks readings as accepted, as ingest does, so a gateway resending one is told it is a duplicate. */
  async mark(readings: readonly Reading[]): Promise<void> {
    if (readings.length === 0) return;
    const hours = new SeenHours(this.#shard);
    for (const [position, reading] of readings.entries()) hours.add(reading, position + 1);
    await runScript(this.#redis, 'markSeen', hours.keys(), [
      Math.ceil(this.#horizonMs / 1000),
      ...hours.hourArgs(false),
    ]);
  }
}

/** Whether packed offsets (as the hash holds them) hold `offset`. */
function holdsOffset(held: Buffer | null, offset: number): boolean {
  if (held === null) return false;
  for (let i = 0; i + 4 <= held.length; i += 4) if (held.readInt32LE(i) === offset) return true;
  return false;
}

/**
 * One request's readings of a shard, grouped as the dedupe hashes hold
 * them: by event-time hour, then node, each reading's offset and its
 * position (1-based) in the request. Packed for the scripts a few arguments
 * an hour, not a few a node (`include/seenHours.lua` unpacks them): a
 * script argument costs ioredis, Redis' parser and Lua each an object.
 */
export class SeenHours {
  readonly #shard: ShardKeys;
  readonly #hours = new Map<number, HourReadings>();

  constructor(shard: ShardKeys) {
    this.#shard = shard;
  }

  add(reading: Pick<Reading, 'node_id' | 'timestamp'>, position: number): void {
    const { bucket, offset } = identityOf(reading);
    let hour = this.#hours.get(bucket);
    if (hour === undefined) {
      hour = new HourReadings();
      this.#hours.set(bucket, hour);
    }
    hour.add(reading.node_id, offset, position);
  }

  get hourCount(): number {
    return this.#hours.size;
  }

  /** The hashes, one per hour, in the order of `hourArgs`. */
  keys(): string[] {
    return [...this.#hours.keys()].map((bucket) => this.#shard.seen(bucket));
  }

  /** The sets of the layout before, one per node and hour, in the order of `hourArgs`. */
  keysBefore(): string[] {
    const keys: string[] = [];
    for (const [bucket, hour] of this.#hours) {
      for (const node of hour.nodes) keys.push(this.#shard.seenBefore({ nodeId: node, bucket, offset: 0 }));
    }
    return keys;
  }

  /**
   * Per hour, three arguments: its node ids joined by a line feed (an id
   * never holds one: see `isNodeId`); each node's count of readings (packed
   * int32), or an empty string when every node has one; their offsets,
   * grouped by node in that order (packed int32). With `positions`, a
   * fourth: the readings' positions, in the order of the offsets.
   */
  hourArgs(positions: boolean): ScriptArgument[] {
    const args: ScriptArgument[] = [];
    for (const hour of this.#hours.values()) hour.pushArgs(args, positions);
    return args;
  }
}

/** One hour's readings of a request, as `SeenHours.hourArgs` packs them. */
class HourReadings {
  readonly nodes: string[] = [];
  readonly #slots = new Map<string, number>();
  readonly #counts: number[] = [];
  /** Per reading, in the order added: its node's slot, offset and position. */
  readonly #slotOf: number[] = [];
  readonly #offsets: number[] = [];
  readonly #positions: number[] = [];

  add(node: string, offset: number, position: number): void {
    let slot = this.#slots.get(node);
    if (slot === undefined) {
      if (node.includes('\n')) throw new Error(`node id ${JSON.stringify(node)} holds a line feed`);
      slot = this.nodes.length;
      this.#slots.set(node, slot);
      this.nodes.push(node);
      this.#counts.push(0);
    }
    this.#counts[slot] = (this.#counts[slot] as number) + 1;
    this.#slotOf.push(slot);
    this.#offsets.push(offset);
    this.#positions.push(position);
  }

  pushArgs(args: ScriptArgument[], withPositions: boolean): void {
    const n = this.#offsets.length;
    const offsets = Buffer.allocUnsafe(4 * n);
    const positions = withPositions ? Buffer.allocUnsafe(4 * n) : undefined;
    let counts: ScriptArgument = '';
    if (this.nodes.length === n) {
      // One reading a node (a gateway's usual request): already grouped.
      for (let i = 0; i < n; i++) {
        offsets.writeInt32LE(this.#offsets[i] as number, 4 * i);
        positions?.writeInt32LE(this.#positions[i] as number, 4 * i);
      }
    } else {
      counts = packInt32(this.#counts);
      // Where each node's readings start, then each reading in its place (a stable counting sort).
      const next = new Array<number>(this.nodes.length);
      let at = 0;
      for (let slot = 0; slot < this.nodes.length; slot++) {
        next[slot] = at;
        at += this.#counts[slot] as number;
      }
      for (let i = 0; i < n; i++) {
        const slot = this.#slotOf[i] as number;
        const to = next[slot] as number;
        next[slot] = to + 1;
        offsets.writeInt32LE(this.#offsets[i] as number, 4 * to);
        positions?.writeInt32LE(this.#positions[i] as number, 4 * to);
      }
    }
    args.push(this.nodes.join('\n'), counts, offsets);
    if (positions !== undefined) args.push(positions);
  }
}

function packInt32(values: readonly number[]): Buffer {
  const packed = Buffer.allocUnsafe(values.length * 4);
  for (let i = 0; i < values.length; i++) packed.writeInt32LE(values[i] as number, i * 4);
  return packed;
}

/** How long old ingest replicas may still be running after the first new one starts. */
const ROLLOUT_MARGIN_MS = 3_600_000;
/** Every shard's sets of the layout before (seen:{tag}:<node>:<hour>); the hashes have one colon fewer. */
const SEEN_BEFORE_PATTERN = 'seen:{*}:*:*';

const known = new WeakMap<object, Map<string, Promise<number>>>();
const scanned = new WeakMap<object, Promise<boolean>>();

/**
 * Until when (epoch ms) sets of the layout before may hold identities on
 * this shard: 0 when none exist. The first process of this version to ask
 * looks for one (a SCAN of the keyspace that stops at the first, shared by
 * every shard), and records the answer in `seenBeforeUntil` for the others:
 * if one exists, the horizon from now plus an hour for old replicas still
 * running. Until then, appends consult those sets and write what they
 * accept into them too (for old replicas, and a rollback). The record
 * expires once no set can be left (the horizon after `until`), or after a
 * horizon when none was found, so a later downgrade and upgrade is seen.
 * Asked once per process and shard.
 */
export function seenBeforeUntil(
  redis: RedisClient,
  shard: ShardKeys,
  horizonMs: number,
  clock: Clock,
): Promise<number> {
  let shards = known.get(redis);
  if (shards === undefined) {
    shards = new Map();
    known.set(redis, shards);
  }
  let until = shards.get(shard.seenBeforeUntil);
  if (until === undefined) {
    until = lookUpSeenBefore(redis, shard, horizonMs, clock);
    shards.set(shard.seenBeforeUntil, until);
    // A failed look-up (Redis down) is asked again next time.
    until.catch(() => shards?.delete(shard.seenBeforeUntil));
  }
  return until;
}

async function lookUpSeenBefore(
  redis: RedisClient,
  shard: ShardKeys,
  horizonMs: number,
  clock: Clock,
): Promise<number> {
  const recorded = await redis.get(shard.seenBeforeUntil);
  if (recorded !== null) return Number(recorded);
  let found = scanned.get(redis);
  if (found === undefined) {
    found = anyKey(redis, SEEN_BEFORE_PATTERN);
    scanned.set(redis, found);
    found.catch(() => scanned.delete(redis));
  }
  const now = clock.now();
  const until = (await found) ? now + horizonMs + ROLLOUT_MARGIN_MS : 0;
  // Relative: `now` is this process' clock (a test's may be far from Redis').
  const ttlMs = until === 0 ? horizonMs : until + horizonMs - now;
  await redis.set(shard.seenBeforeUntil, String(until), 'PX', ttlMs, 'NX');
  return Number((await redis.get(shard.seenBeforeUntil)) ?? until);
}

/** Whether any key matches `pattern`, on every master of a cluster. */
async function anyKey(redis: RedisClient, pattern: string): Promise<boolean> {
  const servers: Redis[] = redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
  for (const server of servers) {
    let cursor = '0';
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) return true;
      cursor = next;
    } while (cursor !== '0');
  }
  return false;
}
