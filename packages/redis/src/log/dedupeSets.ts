import {
  type Clock,
  IDENTITY_BUCKET_MS,
  IDENTITY_SLOT_MS,
  identityOf,
  identitySlotOf,
  type Reading,
  type ShardKeys,
} from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';
import { sendBatchOrThrow } from '../batch.ts';
import type { RedisClient } from '../connection.ts';
import { runScript, type ScriptArgument } from '../scripts.ts';

/**
 * The dedupe protocol. Per shard and 20-minute slot of event time, a hash
 * `seen:{tag}:s<slot>`: node id → the accepted readings' millisecond
 * offsets in that slot, 3 bytes each (little-endian), in the order
 * accepted; past 256 of them the list is sealed into a field of its own
 * and the node's field starts over (`include/seenSlots.lua`). It expires
 * the horizon after its last acceptance. Ingest checks
 * and marks inside appendReadings.lua, one atomic step with the XADD
 * (through `SeenSlots`); a redrive checks and marks here. The scripts share
 * `include/seenSlots.lua`. Nothing else knows the layout.
 *
 * Two layouts before are still consulted, and written, while they may hold
 * identities (`olderLayouts`): the hour layout, a hash per hour,
 * `seen:{tag}:<hour>` (node → 4-byte offsets in the hour), whose lists a
 * request copied whole (twice the script's work of a slot's at one reading
 * per 10 s); and before it the set layout, a set per node and hour,
 * `seen:{tag}:<node>:<hour>`, three Redis calls per node of a request.
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
    const { hours, sets } = await this.#olderLayouts();
    const replies = await sendBatchOrThrow(this.#redis, (batch) => {
      for (const reading of readings) {
        batch.hgetBuffer(this.#shard.seen(identitySlotOf(reading.timestamp).slot), reading.node_id);
        const identity = identityOf(reading);
        if (hours) batch.hgetBuffer(this.#shard.seenHour(identity.bucket), reading.node_id);
        if (sets) batch.sismember(this.#shard.seenBefore(identity), String(identity.offset));
      }
    });
    const step = 1 + Number(hours) + Number(sets);
    const held = readings.map((reading, i) => {
      const at = i * step;
      const inHour = identityOf(reading).offset;
      return (
        holdsOffset(replies[at] as Buffer | null, identitySlotOf(reading.timestamp).offset, 3) ||
        (hours && holdsOffset(replies[at + 1] as Buffer | null, inHour, 4)) ||
        (sets && replies[at + step - 1] === 1)
      );
    });
    // A reading at or below what its node's sealed lists hold is looked for there too.
    const sealedAsked: { index: number; lists: number }[] = [];
    for (const [i, reading] of readings.entries()) {
      const { sealed, top } = sealedOf(replies[i * step] as Buffer | null);
      if (!held[i] && sealed > 0 && identitySlotOf(reading.timestamp).offset <= top)
        sealedAsked.push({ index: i, lists: sealed });
    }
    if (sealedAsked.length > 0) {
      const lists = await sendBatchOrThrow(this.#redis, (batch) => {
        for (const { index, lists } of sealedAsked) {
          const reading = readings[index] as Reading;
          const fields = Array.from({ length: lists }, (_, n) => `${reading.node_id}\n${n + 1}`);
          batch.hmgetBuffer(this.#shard.seen(identitySlotOf(reading.timestamp).slot), ...fields);
        }
      });
      for (const [k, { index }] of sealedAsked.entries()) {
        const parts = (lists[k] as (Buffer | null)[]).filter((part) => part !== null);
        const offset = identitySlotOf((readings[index] as Reading).timestamp).offset;
        held[index] = holdsOffset(Buffer.concat(parts), offset, 3);
      }
    }
    return readings.filter((_, i) => held[i]);
  }

  /** Marks readings as accepted, as ingest does, so a gateway resending one is told it is a duplicate. */
  async mark(readings: readonly Reading[]): Promise<void> {
    if (readings.length === 0) return;
    const { hours } = await this.#olderLayouts();
    const slots = new SeenSlots(this.#shard);
    for (const [position, reading] of readings.entries()) slots.add(reading, position + 1);
    await runScript(this.#redis, 'markSeen', hours ? slots.keys().concat(slots.hourKeys()) : slots.keys(), [
      Math.ceil(this.#horizonMs / 1000),
      hours ? '1' : '0',
      ...slots.slotArgs(false),
    ]);
  }

  async #olderLayouts(): Promise<OlderLayouts> {
    return olderLayouts(this.#redis, this.#shard, this.#horizonMs, this.#clock);
  }
}

/** A slot field's first entry is this plus its count of sealed lists when it has any (`include/seenSlots.lua`). */
const SEALED_MARK = 0xc00000;

/** A node's slot field's sealed lists, and the highest offset they hold (see `include/seenSlots.lua`). */
function sealedOf(held: Buffer | null): { readonly sealed: number; readonly top: number } {
  if (held === null || held.length < 6) return { sealed: 0, top: -1 };
  const mark = held.readUIntLE(0, 3);
  return mark < SEALED_MARK
    ? { sealed: 0, top: -1 }
    : { sealed: mark - SEALED_MARK, top: held.readUIntLE(3, 3) };
}

/** Whether packed offsets (as a hash holds them, `width` bytes each) hold `offset`. */
function holdsOffset(held: Buffer | null, offset: number, width: 3 | 4): boolean {
  if (held === null) return false;
  for (let i = 0; i + width <= held.length; i += width) if (held.readUIntLE(i, width) === offset) return true;
  return false;
}

/**
 * One request's readings of a shard, grouped as the dedupe hashes hold
 * them: by slot, then node, each reading's offset and its position
 * (1-based) in the request. Packed for the scripts a few arguments a slot,
 * not a few a node (`include/seenSlots.lua` unpacks them): a script
 * argument costs ioredis, Redis' parser and Lua each an object.
 */
export class SeenSlots {
  readonly #shard: ShardKeys;
  readonly #slots = new Map<number, SlotReadings>();

  constructor(shard: ShardKeys) {
    this.#shard = shard;
  }

  add(reading: Pick<Reading, 'node_id' | 'timestamp'>, position: number): void {
    const { slot, offset } = identitySlotOf(reading.timestamp);
    let readings = this.#slots.get(slot);
    if (readings === undefined) {
      readings = new SlotReadings();
      this.#slots.set(slot, readings);
    }
    readings.add(reading.node_id, offset, position);
  }

  get slotCount(): number {
    return this.#slots.size;
  }

  /** The slots' hashes, in the order of `slotArgs`. */
  keys(): string[] {
    return [...this.#slots.keys()].map((slot) => this.#shard.seen(slot));
  }

  /** Each slot's hour hash of the layout before, in the order of `slotArgs` (an hour's two slots name it twice). */
  hourKeys(): string[] {
    return [...this.#slots.keys()].map((slot) => this.#shard.seenHour(hourOf(slot)));
  }

  /** The sets of the layout before that, one per node and slot, in the order of `slotArgs`. */
  setKeys(): string[] {
    const keys: string[] = [];
    for (const [slot, readings] of this.#slots) {
      const bucket = hourOf(slot);
      for (const node of readings.nodes)
        keys.push(this.#shard.seenBefore({ nodeId: node, bucket, offset: 0 }));
    }
    return keys;
  }

  /**
   * Per slot: its node ids joined by a line feed (an id never holds one:
   * see `isNodeId`); each node's count of readings (packed int32), or an
   * empty string when every node has one; their offsets, grouped by node in
   * that order (3 bytes each); with `positions`, the readings' positions in
   * the order of the offsets (packed int32); and how many ms after its
   * hour's start the slot starts.
   */
  slotArgs(positions: boolean): ScriptArgument[] {
    const args: ScriptArgument[] = [];
    for (const [slot, readings] of this.#slots) {
      readings.pushArgs(args, positions);
      args.push(slot * IDENTITY_SLOT_MS - hourOf(slot));
    }
    return args;
  }
}

/** The start (epoch ms) of the hour a slot is in. */
function hourOf(slot: number): number {
  const start = slot * IDENTITY_SLOT_MS;
  return start - (start % IDENTITY_BUCKET_MS);
}

/** One slot's readings of a request, as `SeenSlots.slotArgs` packs them. */
class SlotReadings {
  readonly #nodes: string[] = [];
  /** Node id → its index in `nodes`. */
  readonly #indexes = new Map<string, number>();
  readonly #counts: number[] = [];
  /** Per reading, in the order added: its node's index, offset and position. */
  readonly #indexOf: number[] = [];
  readonly #offsets: number[] = [];
  readonly #positions: number[] = [];

  get nodes(): readonly string[] {
    return this.#nodes;
  }

  add(node: string, offset: number, position: number): void {
    let index = this.#indexes.get(node);
    if (index === undefined) {
      if (node.includes('\n')) throw new Error(`node id ${JSON.stringify(node)} holds a line feed`);
      index = this.#nodes.length;
      this.#indexes.set(node, index);
      this.#nodes.push(node);
      this.#counts.push(0);
    }
    this.#counts[index] = (this.#counts[index] as number) + 1;
    this.#indexOf.push(index);
    this.#offsets.push(offset);
    this.#positions.push(position);
  }

  pushArgs(args: ScriptArgument[], withPositions: boolean): void {
    const n = this.#offsets.length;
    const offsets = Buffer.allocUnsafe(3 * n);
    const positions = withPositions ? Buffer.allocUnsafe(4 * n) : undefined;
    let counts: ScriptArgument = '';
    if (this.#nodes.length === n) {
      // One reading a node (a gateway's usual request): already grouped.
      for (let i = 0; i < n; i++) {
        offsets.writeUIntLE(this.#offsets[i] as number, 3 * i, 3);
        positions?.writeInt32LE(this.#positions[i] as number, 4 * i);
      }
    } else {
      counts = packInt32(this.#counts);
      // Where each node's readings start, then each reading in its place (a stable counting sort).
      const next = new Array<number>(this.#nodes.length);
      let at = 0;
      for (let index = 0; index < this.#nodes.length; index++) {
        next[index] = at;
        at += this.#counts[index] as number;
      }
      for (let i = 0; i < n; i++) {
        const index = this.#indexOf[i] as number;
        const to = next[index] as number;
        next[index] = to + 1;
        offsets.writeUIntLE(this.#offsets[i] as number, 3 * to, 3);
        positions?.writeInt32LE(this.#positions[i] as number, 4 * to);
      }
    }
    args.push(this.#nodes.join('\n'), counts, offsets);
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

/** A dedupe layout before this one: where a shard records until when it may hold identities, and how its keys look. */
interface OlderLayout {
  readonly record: (shard: ShardKeys) => string;
  /** Matches its keys (and may match others of the layouts before it), never this layout's. */
  readonly pattern: string;
}

/** The hour hashes (seen:{tag}:<hour>; the sets before them, with a digit first, match too). */
const HOUR_HASHES: OlderLayout = { record: (shard) => shard.seenHoursUntil, pattern: 'seen:{*}:[0-9]*' };
/** The sets per node and hour (seen:{tag}:<node>:<hour>): one colon more than any hash. */
const NODE_SETS: OlderLayout = { record: (shard) => shard.seenBeforeUntil, pattern: 'seen:{*}:*:*' };

export interface OlderLayouts {
  /** Whether the hour hashes may hold identities: appends consult and write them. */
  readonly hours: boolean;
  /** Whether the sets per node and hour may. */
  readonly sets: boolean;
}

/**
 * Which layouts before this one may hold identities on this shard now. See
 * `layoutUntil`; asked of Redis once per process, shard and layout.
 */
export async function olderLayouts(
  redis: RedisClient,
  shard: ShardKeys,
  horizonMs: number,
  clock: Clock,
): Promise<OlderLayouts> {
  const [hours, sets] = await Promise.all([
    layoutUntil(redis, shard, HOUR_HASHES, horizonMs, clock),
    layoutUntil(redis, shard, NODE_SETS, horizonMs, clock),
  ]);
  const now = clock.now();
  return { hours: now < hours, sets: now < sets };
}

const known = new WeakMap<object, Map<string, Promise<number>>>();
const scanned = new WeakMap<object, Map<string, Promise<boolean>>>();

/**
 * Until when (epoch ms) keys of an older layout may hold identities on this
 * shard: 0 when none exist. The first process of this version to ask looks
 * for one (a SCAN of the keyspace that stops at the first, shared by every
 * shard), and records the answer for the others: if one exists, the horizon
 * from now plus an hour for old replicas still running. Until then, appends
 * consult that layout and write what they accept into it too (for old
 * replicas, and a rollback). The record expires once nothing of it can be
 * left (the horizon after `until`), or after a horizon when none was found,
 * so a later downgrade and upgrade is seen. Asked once per process and shard.
 */
function layoutUntil(
  redis: RedisClient,
  shard: ShardKeys,
  layout: OlderLayout,
  horizonMs: number,
  clock: Clock,
): Promise<number> {
  let records = known.get(redis);
  if (records === undefined) {
    records = new Map();
    known.set(redis, records);
  }
  const record = layout.record(shard);
  let until = records.get(record);
  if (until === undefined) {
    until = lookUpLayout(redis, record, layout.pattern, horizonMs, clock);
    records.set(record, until);
    // A failed look-up (Redis down) is asked again next time.
    until.catch(() => records?.delete(record));
  }
  return until;
}

async function lookUpLayout(
  redis: RedisClient,
  record: string,
  pattern: string,
  horizonMs: number,
  clock: Clock,
): Promise<number> {
  const recorded = await redis.get(record);
  if (recorded !== null) return Number(recorded);
  let patterns = scanned.get(redis);
  if (patterns === undefined) {
    patterns = new Map();
    scanned.set(redis, patterns);
  }
  let found = patterns.get(pattern);
  if (found === undefined) {
    found = anyKey(redis, pattern);
    patterns.set(pattern, found);
    found.catch(() => patterns?.delete(pattern));
  }
  const now = clock.now();
  const until = (await found) ? now + horizonMs + ROLLOUT_MARGIN_MS : 0;
  // Relative: `now` is this process' clock (a test's may be far from Redis').
  const ttlMs = until === 0 ? horizonMs : until + horizonMs - now;
  await redis.set(record, String(until), 'PX', ttlMs, 'NX');
  return Number((await redis.get(record)) ?? until);
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
