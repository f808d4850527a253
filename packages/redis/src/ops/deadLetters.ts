import {
  allShardKeys,
  encodeReading,
  fieldMap,
  GROUPS,
  type Reading,
  type ShardKeys,
} from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';
import { DeadLetterGoneError, type RedriveLink } from '../errors/DeadLetterGoneError.ts';
import { type RedriveRefusal, RedriveRefusedError } from '../errors/RedriveRefusedError.ts';
import { runScript, ScriptRefusal } from '../scripts.ts';

/**
 * A handle that cannot name a dead letter (malformed): a RangeError, as the
 * other ways of naming one wrongly are. It carries the form expected, so
 * that a caller can add where handles are shown.
 */
export class DeadLetterHandleError extends RangeError {
  readonly handle: string;
  readonly expected: string;
  readonly example: string;

  constructor(handle: string) {
    const expected = '<shard>:<id>';
    const example = '0:1718000000000-0';
    super(`${JSON.stringify(handle)} is not a dead letter: expected ${expected} (e.g. ${example})`);
    this.name = 'DeadLetterHandleError';
    this.handle = handle;
    this.expected = expected;
    this.example = example;
  }
}

/** Dead letters read per round trip. */
const PAGE = 1_000;

/**
 * Groups that may be handed an entry they applied already: the archiver's
 * warehouse keeps one row per reading identity. The aggregator counts every
 * reading it is given, so it must never get a copy of an entry it applied.
 */
export const IDEMPOTENT_GROUPS: readonly string[] = [GROUPS.archiver];

/** One dead letter: an entry of a shard's `{tag}:dead` stream, written by commitShard.lua. */
export interface DeadLetterRecord {
  /** `<shard>:<dead-letter id>`: how commands name it. */
  readonly handle: string;
  readonly shard: number;
  /** Its id in the dead-letter stream (also when it was written). */
  readonly deadId: string;
  /** The stream and id of the entry given up on. */
  readonly stream: string;
  readonly entry: string;
  /** The consumer group that gave up on it. */
  readonly group: string;
  readonly error: string;
  readonly deliveries: number;
  /**
   * The original entry's fields as XRANGE returns them (name, value, ...),
   * or null when it is no longer in the stream (trimmed); undefined when not
   * looked up.
   */
  readonly original?: string[] | null;
}

export interface DeadLetterPage {
  readonly letters: DeadLetterRecord[];
  /** Pass as `after` for the next page; absent on the last page. */
  readonly next?: string;
}

export interface ListOptions {
  /** Only this group's dead letters. */
  readonly group?: string;
  /** Start after this dead-letter id. */
  readonly after?: string;
  readonly limit?: number;
  /** Look up each original entry (default true). */
  readonly originals?: boolean;
}

export interface RedriveOptions {
  /** Where the readings come from: the original entry, or a file of repaired ones. */
  readonly from: 'original' | 'file';
  /**
   * The readings to append if a new entry is needed: validated, all of the
   * dead letter's shard. Absent when there are none (the original is gone,
   * does not decode, or is invalid): then only a re-delivery is possible.
   */
  readonly readings?: readonly Reading[];
  /** The new entry's `src` (default: `dlq-redrive`). */
  readonly source?: string;
  /** Per group, the consumer a re-delivered entry is assigned to (its live consumer's name). */
  readonly consumers: Readonly<Record<string, string>>;
  /** The groups' claim threshold (AGGREGATOR_CLAIM_IDLE_MS): a re-delivered entry is that idle at once. */
  readonly claimIdleMs: number;
  /** Decide and report, change nothing. */
  readonly dryRun?: boolean;
  readonly now?: number;
}

export interface RedriveOutcome {
  /** `append`: a new entry, for every group; `redeliver`: the original, to the groups that dead-lettered it only. */
  readonly mode: 'append' | 'redeliver';
  readonly handle: string;
  readonly shard: number;
  readonly stream: string;
  /** The original entry. */
  readonly entry: string;
  /** The entry appended (mode `append`, not a dry run). */
  readonly newEntry?: string;
  /** The groups that had dead-lettered the entry: it goes back to them. */
  readonly groups: string[];
  /** The groups that had applied the entry. */
  readonly applied: string[];
  /** Every dead letter resolved: this one and the same entry's of other groups. */
  readonly deadLetters: string[];
  readonly dryRun: boolean;
}

export interface DropOutcome {
  readonly dropped: DeadLetterRecord[];
  /** Handles that named no dead letter (already dropped or redriven). */
  readonly missing: string[];
}

/**
 * The dead letters of every shard: list and inspect them, send them back
 * through the pipeline (redriveDeadLetter.lua: exactly once), or drop them.
 */
export class DeadLetters {
  readonly #redis: RedisClient;
  readonly #shards: readonly ShardKeys[];

  constructor(redis: RedisClient, options: { readonly shards: number }) {
    this.#redis = redis;
    this.#shards = allShardKeys(options.shards);
  }

  get shardCount(): number {
    return this.#shards.length;
  }

  /** How many dead letters the shard holds. */
  count(shard: number): Promise<number> {
    return this.#redis.xlen(this.#keys(shard).deadLetters);
  }

  /** A page of the shard's dead letters, oldest first. */
  async list(shard: number, options: ListOptions = {}): Promise<DeadLetterPage> {
    const keys = this.#keys(shard);
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be ≥ 1, got ${limit}`);
    const letters: DeadLetterRecord[] = [];
    let start = options.after === undefined ? '-' : `(${options.after}`;
    let more = false;
    scan: for (;;) {
      const rows = (await this.#redis.xrange(keys.deadLetters, start, '+', 'COUNT', PAGE)) as Row[];
      for (const row of rows) {
        const letter = recordOf(shard, row);
        if (options.group !== undefined && letter.group !== options.group) continue;
        if (letters.length === limit) {
          more = true;
          break scan;
        }
        letters.push(letter);
      }
      const last = rows[rows.length - 1];
      if (rows.length < PAGE || last === undefined) break;
      start = `(${last[0]}`;
    }
    const page = options.originals === false ? letters : await this.#withOriginals(letters);
    const tail = page[page.length - 1];
    return { letters: page, ...(more && tail !== undefined && { next: tail.deadId }) };
  }

  /**
   * One dead letter, with its original entry. A handle is `<shard>:<id>`,
   * or a bare dead-letter id (looked up in every shard).
   *
   * @throws DeadLetterHandleError when the handle is malformed.
   * @throws RangeError when a bare id is in several shards, or the shard does not exist.
   */
  async get(handle: string): Promise<DeadLetterRecord | undefined> {
    const { shards, deadId } = this.#parse(handle);
    const found: DeadLetterRecord[] = [];
    for (const shard of shards) {
      const rows = (await this.#redis.xrange(this.#keys(shard).deadLetters, deadId, deadId)) as Row[];
      const row = rows[0];
      if (row !== undefined) found.push(recordOf(shard, row));
    }
    if (found.length > 1) {
      throw new RangeError(
        `dead letter id ${deadId} exists in shards ${found.map((f) => f.shard).join(', ')}: name it as <shard>:${deadId}`,
      );
    }
    const letter = found[0];
    if (letter === undefined) return undefined;
    const [withOriginal] = await this.#withOriginals([letter]);
    return withOriginal;
  }

  /** The other dead letters of the same entry (other groups gave up on it too). */
  async siblings(letter: DeadLetterRecord): Promise<DeadLetterRecord[]> {
    return (await this.#siblings(letter)).letters;
  }

  /** What a redriven (or never existing) dead letter became, if it was redriven. */
  async link(handle: string): Promise<RedriveLink | undefined> {
    const { shards, deadId } = this.#parse(handle);
    for (const shard of shards) {
      const raw = await this.#redis.hget(this.#keys(shard).deadLettersRedriven, deadId);
      if (raw !== null) return JSON.parse(raw) as RedriveLink;
    }
    return undefined;
  }

  /**
   * Sends the dead letter's entry back through the pipeline, exactly once,
   * and resolves every group's dead letter of that entry (see
   * redriveDeadLetter.lua for who gets it again).
   *
   * @throws DeadLetterGoneError when it was redriven or dropped already.
   * @throws RedriveRefusedError when it cannot be sent back as asked.
   */
  async redrive(handle: string, options: RedriveOptions): Promise<RedriveOutcome> {
    const letter = await this.get(handle);
    if (letter === undefined) throw new DeadLetterGoneError(handle, await this.link(handle));
    const keys = this.#keys(letter.shard);
    const { letters: others, scanned } = await this.#siblings(letter);
    const readings = options.readings ?? [];
    const args: (string | number)[] = [
      letter.deadId,
      options.dryRun ? 'plan' : 'run',
      scanned,
      new Date(options.now ?? Date.now()).toISOString(),
      options.claimIdleMs,
      options.from,
      readings.length === 0 ? '' : `[${readings.map(encodeReading).join(',')}]`,
      readings.length,
      options.source ?? 'dlq-redrive',
      others.length,
    ];
    for (const other of others) args.push(other.deadId);
    args.push(IDEMPOTENT_GROUPS.length, ...IDEMPOTENT_GROUPS);
    const consumers = Object.entries(options.consumers);
    args.push(consumers.length);
    for (const [group, consumer] of consumers) args.push(group, consumer);
    let reply: string[];
    try {
      reply = (await runScript(
        this.#redis,
        'redriveDeadLetter',
        [keys.deadLetters, keys.stream, keys.deadLettersRedriven, keys.streamRemoved],
        args,
      )) as string[];
    } catch (error) {
      if (!(error instanceof ScriptRefusal)) throw error;
      if (error.code === 'GONE') throw new DeadLetterGoneError(letter.handle, await this.link(letter.handle));
      const [reason = '', ...groups] = error.detail.split(' ');
      throw new RedriveRefusedError(reason as RedriveRefusal, groups.join(' '), letter);
    }
    const [mode, newEntry, groups, applied, ...resolved] = reply as [string, string, string, string];
    return {
      mode: mode as RedriveOutcome['mode'],
      handle: letter.handle,
      shard: letter.shard,
      stream: letter.stream,
      entry: letter.entry,
      ...(newEntry !== '' && { newEntry }),
      groups: split(groups),
      applied: split(applied),
      deadLetters: resolved.map((id) => `${letter.shard}:${id}`),
      dryRun: options.dryRun === true,
    };
  }

  /** Deletes the named dead letters; reports which were there. */
  async drop(handles: readonly string[]): Promise<DropOutcome> {
    const dropped: DeadLetterRecord[] = [];
    const missing: string[] = [];
    // Every handle is resolved first: a malformed one fails the call before anything is deleted.
    const letters: DeadLetterRecord[] = [];
    for (const handle of handles) {
      const letter = await this.get(handle);
      if (letter === undefined) missing.push(handle);
      else letters.push(letter);
    }
    for (const letter of letters) {
      const [deleted] = await this.#delete(letter.shard, [letter]);
      if (deleted === undefined) missing.push(letter.handle);
      else dropped.push(deleted);
    }
    return { dropped, missing };
  }

  /** Deletes every dead letter of the shard (of one group, with `group`); returns those deleted. */
  async dropAll(shard: number, options: { readonly group?: string } = {}): Promise<DeadLetterRecord[]> {
    const dropped: DeadLetterRecord[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.list(shard, {
        ...(options.group !== undefined && { group: options.group }),
        ...(after !== undefined && { after }),
        limit: PAGE,
        originals: false,
      });
      dropped.push(...(await this.#delete(shard, page.letters)));
      if (page.next === undefined) return dropped;
      after = page.next;
    }
  }

  /** XDELs the letters one by one (one round trip), so those already gone are known. */
  async #delete(shard: number, letters: readonly DeadLetterRecord[]): Promise<DeadLetterRecord[]> {
    if (letters.length === 0) return [];
    const key = this.#keys(shard).deadLetters;
    const pipeline = this.#redis.pipeline();
    for (const letter of letters) pipeline.xdel(key, letter.deadId);
    const results = (await pipeline.exec()) ?? [];
    return letters.filter((_, i) => {
      const [error, deleted] = results[i] ?? [new Error('no reply'), 0];
      if (error) throw error;
      return deleted === 1;
    });
  }

  /** The same entry's other dead letters, and the last dead-letter id searched. */
  async #siblings(letter: DeadLetterRecord): Promise<{ letters: DeadLetterRecord[]; scanned: string }> {
    const key = this.#keys(letter.shard).deadLetters;
    const letters: DeadLetterRecord[] = [];
    let scanned = '0-0';
    // A dead letter is written after its entry was delivered, on the same
    // server clock: the search starts at the entry's time, not at the start
    // of the capped stream.
    let start = `${letter.entry.slice(0, letter.entry.indexOf('-'))}-0`;
    for (;;) {
      const rows = (await this.#redis.xrange(key, start, '+', 'COUNT', PAGE)) as Row[];
      for (const row of rows) {
        const other = recordOf(letter.shard, row);
        if (
          other.deadId !== letter.deadId &&
          other.stream === letter.stream &&
          other.entry === letter.entry
        ) {
          letters.push(other);
        }
      }
      const last = rows[rows.length - 1];
      if (last !== undefined) scanned = last[0];
      if (rows.length < PAGE || last === undefined) return { letters, scanned };
      start = `(${last[0]}`;
    }
  }

  async #withOriginals(letters: readonly DeadLetterRecord[]): Promise<DeadLetterRecord[]> {
    if (letters.length === 0) return [];
    // One round trip; the stream and the dead letters share a slot, so this works on a cluster too.
    const pipeline = this.#redis.pipeline();
    for (const letter of letters) pipeline.xrange(letter.stream, letter.entry, letter.entry);
    const results = (await pipeline.exec()) ?? [];
    return letters.map((letter, i) => {
      const [error, rows] = results[i] ?? [new Error('no reply'), []];
      if (error) throw error;
      const row = (rows as Row[])[0];
      return { ...letter, original: row === undefined ? null : row[1] };
    });
  }

  #keys(shard: number): ShardKeys {
    const keys = this.#shards[shard];
    if (keys === undefined) {
      throw new RangeError(`shard must be in 0..${this.#shards.length - 1}, got ${shard}`);
    }
    return keys;
  }

  #parse(handle: string): { shards: number[]; deadId: string } {
    const match = /^(?:(\d+):)?(\d+-\d+)$/.exec(handle.trim());
    if (match === null) throw new DeadLetterHandleError(handle);
    const deadId = match[2] as string;
    if (match[1] === undefined) return { shards: this.#shards.map((s) => s.shard), deadId };
    const shard = Number(match[1]);
    this.#keys(shard);
    return { shards: [shard], deadId };
  }
}

type Row = [id: string, fields: string[]];

function recordOf(shard: number, [deadId, flat]: Row): DeadLetterRecord {
  const fields = fieldMap(flat);
  return {
    handle: `${shard}:${deadId}`,
    shard,
    deadId,
    stream: fields.get('stream') ?? '',
    entry: fields.get('id') ?? '',
    group: fields.get('group') ?? '',
    error: fields.get('error') ?? '',
    deliveries: Number(fields.get('deliveries') ?? 0),
  };
}

function split(csv: string): string[] {
  return csv === '' ? [] : csv.split(',');
}
