import {
  allShardKeys,
  CATCHUP,
  type Clock,
  catchupLaneOf,
  encodeReading,
  GROUPS,
  type Reading,
  type ShardKeys,
  shardOf,
} from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';
import { isUnavailable, RedisUnavailableError } from '../errors/RedisUnavailableError.ts';
import { StreamFullError } from '../errors/StreamFullError.ts';
import { runScript, type ScriptArgument, ScriptRefusal } from '../scripts.ts';
import { type OlderLayouts, olderLayouts, SeenSlots } from './dedupeSets.ts';

export interface ReadingLogOptions {
  readonly shards: number;
  readonly retentionMs: number;
  readonly dedupeHorizonMs: number;
  /** Each shard's stream is bounded to this many bytes (STREAM_MAX_MB); absent or 0: no bound. */
  readonly maxBytes?: number;
  /**
   * How late a reading must arrive to be eligible for the shard's catch-up
   * lane (CATCHUP_AFTER_MINUTES; default CATCHUP.lateMs; 0: never).
   */
  readonly catchupAfterMs?: number;
  readonly clock: Clock;
  /** Called for each stream entry appended (metrics: one call per shard per append, not per reading). */
  readonly onAppend?: (stream: string) => void;
}

export interface AppendResult {
  readonly accepted: number;
  readonly duplicates: number;
}

/**
 * The readings log: validated readings go in, deduplicated by identity, one
 * stream entry per shard per call. Each shard's append is one atomic script
 * call; calls for several shards are sent together in one round trip.
 */
export class ReadingLog {
  readonly #redis: Redis | Cluster;
  readonly #shards: readonly ShardKeys[];
  readonly #retentionMs: number;
  readonly #dedupeSeconds: string;
  readonly #dedupeHorizonMs: number;
  readonly #maxBytes: number;
  readonly #catchupAfterMs: number;
  readonly #clock: Clock;
  readonly #onAppend: ((stream: string) => void) | undefined;

  constructor(redis: Redis | Cluster, options: ReadingLogOptions) {
    this.#redis = redis;
    this.#shards = allShardKeys(options.shards);
    this.#retentionMs = options.retentionMs;
    this.#dedupeSeconds = String(Math.ceil(options.dedupeHorizonMs / 1000));
    this.#dedupeHorizonMs = options.dedupeHorizonMs;
    this.#maxBytes = Math.max(0, Math.floor(options.maxBytes ?? 0));
    this.#catchupAfterMs = options.catchupAfterMs ?? CATCHUP.lateMs;
    this.#clock = options.clock;
    this.#onAppend = options.onAppend;
  }

  /**
   * Learns, per shard, whether the dedupe layouts before may still
   * hold identities (one look-up per process; DedupeSets). An append asks
   * for it anyway; asking at startup keeps it out of the first request.
   */
  async prepare(): Promise<void> {
    await Promise.all(this.#shards.map((shard) => this.#olderLayouts(shard)));
  }

  get streams(): readonly string[] {
    return this.#shards.map((s) => s.stream);
  }

  /**
   * Appends the readings that are new, each to its shard's stream, or to
   * the shard's catch-up lane when it arrived late while the aggregator is
   * behind (see CATCHUP). With one shard the call is all or nothing; with
   * several, a failure may leave some shards appended, which a retry of the
   * same request completes without duplicating anything.
   *
   * @throws RedisUnavailableError when Redis could not take the write;
   *   StreamFullError (one) when a shard's stream is over its bound with
   *   entries the consumers still need.
   */
  async append(readings: readonly Reading[], source: string): Promise<AppendResult> {
    if (readings.length === 0) return { accepted: 0, duplicates: 0 };
    const now = this.#clock.now();
    const minId = String(Math.max(0, now - this.#retentionMs));
    const lateBefore = this.#catchupAfterMs > 0 ? now - this.#catchupAfterMs : Number.NEGATIVE_INFINITY;
    const groups = this.#group(readings, lateBefore);
    const calls = groups.map(async (group) => {
      const older = await this.#olderLayouts(group.shard);
      return runScript(this.#redis, 'appendReadings', group.keys(older), [
        minId,
        this.#dedupeSeconds,
        source,
        this.#maxBytes,
        ...group.args(older),
      ]);
    });
    const settled = await Promise.allSettled(calls);
    const failure = settled.find((outcome) => outcome.status === 'rejected');
    if (failure !== undefined) {
      const partial = settled.some((outcome) => outcome.status === 'fulfilled');
      const full = settled.findIndex(
        (o) =>
          o.status === 'rejected' && o.reason instanceof ScriptRefusal && o.reason.code === 'STREAM_FULL',
      );
      if (full >= 0) {
        const [held = 0, bound = 0, inLane = 0] = (
          (settled[full] as PromiseRejectedResult).reason as ScriptRefusal
        ).detail
          .split(' ')
          .map(Number);
        const stored = partial ? 'partial' : 'none';
        throw new StreamFullError((groups[full] as ShardBatch).stream, held, bound, stored, inLane);
      }
      if (!isUnavailable(failure.reason)) throw failure.reason;
      throw new RedisUnavailableError(failure.reason, partial ? 'partial' : undefined);
    }
    let accepted = 0;
    let duplicates = 0;
    for (let i = 0; i < settled.length; i++) {
      const [added, dups] = (settled[i] as PromiseFulfilledResult<[number, number, string | null]>).value;
      accepted += added;
      duplicates += dups;
      // The script appends an entry exactly when something was new.
      if (added > 0) this.#onAppend?.((groups[i] as ShardBatch).stream);
    }
    return { accepted, duplicates };
  }

  #olderLayouts(shard: ShardKeys): Promise<OlderLayouts> {
    return olderLayouts(this.#redis, shard, this.#dedupeHorizonMs, this.#clock);
  }

  #group(readings: readonly Reading[], lateBefore: number): ShardBatch[] {
    const shardCount = this.#shards.length;
    const batches = new Map<number, ShardBatch>();
    for (const reading of readings) {
      const shard = shardOf(reading.node_id, shardCount);
      let batch = batches.get(shard);
      if (batch === undefined) {
        batch = new ShardBatch(this.#shards[shard] as ShardKeys, lateBefore);
        batches.set(shard, batch);
      }
      batch.add(reading);
    }
    return [...batches.values()];
  }
}

class ShardBatch {
  readonly #shard: ShardKeys;
  readonly #slots: SeenSlots;
  readonly #json: string[] = [];
  readonly #lateBefore: number;
  /** Per reading, '1' when it may go to the catch-up lane; undefined while none may. */
  #late: string[] | undefined;
  /** Per reading, its node's catch-up lane as a character code ('0' + the lane). */
  readonly #lanes: number[] = [];

  constructor(shard: ShardKeys, lateBefore: number) {
    this.#shard = shard;
    this.#slots = new SeenSlots(shard);
    this.#lateBefore = lateBefore;
  }

  add(reading: Reading): void {
    this.#json.push(encodeReading(reading));
    this.#slots.add(reading, this.#json.length);
    this.#lanes.push(48 + catchupLaneOf(reading.node_id));
    if (reading.timestamp < this.#lateBefore) {
      this.#late ??= Array.from({ length: this.#json.length - 1 }, () => '0');
      this.#late.push('1');
    } else {
      this.#late?.push('0');
    }
  }

  get stream(): string {
    return this.#shard.stream;
  }

  get shard(): ShardKeys {
    return this.#shard;
  }

  /** The script's keys: the stream, the slots' hashes, those of the older layouts consulted, the lanes and their nodes. */
  keys(older: OlderLayouts): string[] {
    let keys = [this.#shard.stream, ...this.#slots.keys()];
    if (older.hours) keys = keys.concat(this.#slots.hourKeys());
    if (older.sets) keys = keys.concat(this.#slots.setKeys());
    keys.push(...this.#shard.catchupLanes, this.#shard.catchupNodes);
    return keys;
  }

  /** The script's arguments from ARGV[5] on (appendReadings.lua). */
  args(older: OlderLayouts): ScriptArgument[] {
    const json = this.#json;
    const text = `[${json.join(',')}]`;
    // Encoded here, once: ioredis would count a string's UTF-8 bytes, join
    // it into the command's text and encode that again.
    const payload = Buffer.from(text);
    // Where each reading starts in the array, in bytes (Lua's strings are
    // bytes), 1-based. Characters are bytes when the whole array is ASCII
    // (the usual case: ids are, numbers are), which its length tells.
    const ascii = payload.length === text.length;
    const starts = Buffer.allocUnsafe((json.length + 1) * 4);
    let at = 2;
    for (let i = 0; i < json.length; i++) {
      starts.writeInt32LE(at, i * 4);
      const reading = json[i] as string;
      at += (ascii ? reading.length : Buffer.byteLength(reading)) + 1;
    }
    starts.writeInt32LE(at, json.length * 4);
    return [
      json.length,
      payload,
      starts,
      this.#slots.slotCount,
      older.hours ? '1' : '0',
      older.sets ? '1' : '0',
      this.#late?.join('') ?? '',
      GROUPS.aggregator,
      CATCHUP.gateEntries,
      CATCHUP.lanes,
      Buffer.from(this.#lanes).toString('latin1'),
      ...this.#slots.slotArgs(true),
    ];
  }
}
