import {
  BatchError,
  type BatchRules,
  type Config,
  checkBatch,
  type DecodedBatch,
  decodeBatch,
  decodeEntry,
  GROUPS,
  identityLabel,
  type Reading,
  shardKeys,
  shardOf,
  systemClock,
} from '@streamgauge/core';
import {
  DeadLetterGoneError,
  type DeadLetterRecord,
  type DeadLetters,
  DedupeSets,
  type RedriveOptions,
  type RedriveOutcome,
  RedriveRefusedError,
} from '@streamgauge/redis';
import { recordAction, type Session } from './session.ts';

export type RedriveSource = RedriveOptions['from'];

/** What a dead letter's entry holds, and whether it can go back as it is. */
export interface Content {
  /** Valid readings, all of the dead letter's shard: what a new entry would carry. */
  readonly readings?: Reading[];
  readonly source: string;
  /** The original entry, decoded (it may still hold invalid readings). */
  readonly decoded?: { readonly source: string; readonly readings: unknown[] };
  /** Why there are no readings to send (a sentence fragment about the entry or the file). */
  readonly problem?: string;
}

export interface RedriveRequest {
  readonly handle: string;
  /** Repaired readings, as JSON text; without them, the original entry goes back. */
  readonly repaired?: string;
  readonly dryRun: boolean;
}

export interface Redriven {
  readonly kind: 'redriven';
  readonly outcome: RedriveOutcome;
  readonly from: RedriveSource;
  /** How many readings went back. */
  readonly readings: number;
  /** What is wrong with the original, when it went back anyway (re-delivered as it is). */
  readonly problem?: string;
}

/** Why nothing was redriven. */
export type NotRedriven =
  | { readonly kind: 'gone'; readonly error: DeadLetterGoneError }
  /** The repaired readings are not all valid readings of the dead letter's shard. */
  | { readonly kind: 'invalid'; readonly problem: string }
  /** Repaired readings that ingest accepted already, through other entries. */
  | { readonly kind: 'accepted'; readonly readings: readonly Reading[] }
  | { readonly kind: 'refused'; readonly error: RedriveRefusedError; readonly problem?: string };

/**
 * Sends a dead letter back, exactly once: its original entry, or repaired
 * readings validated as ingest does. A reading that goes back as a new entry
 * is marked accepted, as ingest marks it; what was done goes to the ops log.
 */
export async function redrive(session: Session, request: RedriveRequest): Promise<Redriven | NotRedriven> {
  try {
    return await attempt(session, request);
  } catch (error) {
    if (error instanceof DeadLetterGoneError) return { kind: 'gone', error };
    throw error;
  }
}

async function attempt(session: Session, request: RedriveRequest): Promise<Redriven | NotRedriven> {
  const { dead, config, redis } = session;
  const letter = await deadLetter(dead, request.handle);
  const from: RedriveSource = request.repaired === undefined ? 'original' : 'file';
  const content =
    request.repaired === undefined
      ? originalContent(letter, config)
      : fileContent(request.repaired, letter, config);
  const dedupeSets = new DedupeSets(redis, shardKeys(letter.shard, config.stream.shards), {
    horizonMs: config.stream.dedupeHorizonMs,
    clock: systemClock,
  });
  if (from === 'file') {
    if (content.readings === undefined) {
      return { kind: 'invalid', problem: content.problem ?? 'has no valid readings' };
    }
    // A repaired reading that ingest accepted already (through another
    // entry) would be counted twice: the original's own identities aside.
    const own = new Set(originalReadings(letter).map(identityLabel));
    const accepted = await dedupeSets.accepted(content.readings.filter((r) => !own.has(identityLabel(r))));
    if (accepted.length > 0) return { kind: 'accepted', readings: accepted };
  }
  const problem = content.problem === undefined ? {} : { problem: content.problem };
  let outcome: RedriveOutcome;
  try {
    outcome = await dead.redrive(letter.handle, redriveOptions(config, from, content, request.dryRun));
  } catch (error) {
    if (error instanceof RedriveRefusedError) return { kind: 'refused', error, ...problem };
    throw error;
  }
  const readings =
    outcome.mode === 'append' ? (content.readings?.length ?? 0) : (content.decoded?.readings.length ?? 0);
  if (!outcome.dryRun) {
    if (outcome.mode === 'append' && content.readings !== undefined) {
      await dedupeSets.mark(content.readings);
    }
    await recordAction(
      session,
      {
        action: 'dlq.redrive',
        stream: outcome.stream,
        entry: outcome.entry,
        deadLetter: outcome.handle,
        group: outcome.groups.join(','),
        resolved: outcome.deadLetters.join(','),
        mode: outcome.mode,
        newEntry: outcome.newEntry,
        from,
        readings,
      },
      'dead letter redriven',
    );
  }
  return { kind: 'redriven', outcome, from, readings, ...problem };
}

/**
 * The dead letter, with its original entry.
 *
 * @throws DeadLetterGoneError when it is not there (saying what it became, if it was redriven).
 */
export async function deadLetter(dead: DeadLetters, handle: string): Promise<DeadLetterRecord> {
  const letter = await dead.get(handle);
  if (letter !== undefined) return letter;
  throw new DeadLetterGoneError(handle, await dead.link(handle));
}

export function redriveOptions(
  config: Config,
  from: RedriveSource,
  content: Content,
  dryRun: boolean,
): RedriveOptions {
  return {
    consumers: {
      [GROUPS.aggregator]: config.aggregator.consumer,
      [GROUPS.archiver]: config.archiver.consumer,
    },
    claimIdleMs: config.aggregator.claimIdleMs,
    from,
    ...(content.readings !== undefined && { readings: content.readings, source: content.source }),
    dryRun,
  };
}

export function originalContent(letter: DeadLetterRecord, config: Config): Content {
  const what = `the original entry ${letter.entry}`;
  if (letter.original === null || letter.original === undefined) {
    return { source: '', problem: `${what} is no longer in ${letter.stream} (trimmed)` };
  }
  let decoded: { source: string; readings: unknown[] };
  try {
    decoded = decodeEntry(letter.entry, letter.original);
  } catch (error) {
    return { source: '', problem: `${what} does not decode (${(error as Error).message})` };
  }
  const items = decoded.readings.map((raw) => ({ raw }));
  const checked = validate((rules) => ({ items, ...checkBatch(items, rules) }), letter, config);
  if (typeof checked === 'string') return { source: decoded.source, decoded, problem: `${what} ${checked}` };
  return { readings: checked, source: decoded.source, decoded };
}

function fileContent(text: string, letter: DeadLetterRecord, config: Config): Content {
  const checked = validate((rules) => decodeBatch(Buffer.from(text, 'utf8'), 'json', rules), letter, config);
  if (typeof checked === 'string') return { source: '', problem: checked };
  return { readings: checked, source: 'dlq-redrive' };
}

/**
 * Ingest's rules (the reading schema, the batch limit), and every reading of
 * the dead letter's shard: the readings, or what is wrong with them, item by
 * item. `read` checks the batch against the rules it is given.
 */
function validate(
  read: (rules: BatchRules) => DecodedBatch,
  letter: DeadLetterRecord,
  config: Config,
): Reading[] | string {
  let checked: DecodedBatch;
  try {
    checked = read({
      policy: { nowMs: Date.now(), maxFutureMs: config.ingest.maxFutureMs },
      maxReadings: config.ingest.maxBatchReadings,
      unit: 'entry',
      scopeOf: (reading) => {
        const shard = shardOf(reading.node_id, config.stream.shards);
        return shard === letter.shard
          ? undefined
          : `node_id ${JSON.stringify(reading.node_id)} belongs to shard ${shard}, not to this dead letter's shard ${letter.shard} (${letter.stream}); send it through ingest instead`;
      },
    });
  } catch (error) {
    if (error instanceof BatchError) return error.message.replace(/^the (body|entry) /, '');
    throw error;
  }
  // Ingest drops a repeat inside one request; a redrive bypasses that, so it refuses one.
  const first = new Map<string, number>();
  const rejected = [...checked.rejected];
  for (const { index, reading } of checked.valid) {
    const label = identityLabel(reading);
    const earlier = first.get(label);
    if (earlier === undefined) first.set(label, index);
    else rejected.push({ index, error: `the same reading (node_id and timestamp) as reading ${earlier}` });
  }
  rejected.sort((a, b) => a.index - b.index);
  if (rejected.length > 0) {
    const problems = rejected.map((r) => `reading ${r.index}: ${r.error}`);
    return `has ${problems.length} invalid reading${problems.length === 1 ? '' : 's'} of ${checked.items.length}:\n  ${problems.join('\n  ')}`;
  }
  return checked.valid.map((v) => v.reading);
}

/** The original entry's readings, as far as they decode and are readings at all. */
function originalReadings(letter: DeadLetterRecord): Reading[] {
  if (letter.original === null || letter.original === undefined) return [];
  try {
    return decodeEntry(letter.entry, letter.original).readings.filter(
      (r): r is Reading => typeof r === 'object' && r !== null && typeof r.node_id === 'string',
    );
  } catch {
    return [];
  }
}
