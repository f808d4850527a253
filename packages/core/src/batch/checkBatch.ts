import { type CheckedReading, checkReading, type Reading, type ValidationPolicy } from '../reading.ts';
import type { Item } from './items.ts';

/** A reading of a batch that is not taken, by its position in the batch. */
export interface Rejection {
  readonly index: number;
  readonly error: string;
}

export interface CheckedBatch {
  /** The readings to append, with their positions in the batch. */
  readonly valid: { index: number; reading: Reading }[];
  /** In the order of `index`. */
  readonly rejected: Rejection[];
}

export interface BatchRules {
  readonly policy: ValidationPolicy;
  /** The most readings one batch may hold (INGEST_MAX_READINGS). */
  readonly maxReadings: number;
  /** What a batch is called in errors: `request` over HTTP, `message` on Pub/Sub. */
  readonly unit: string;
  /** Why a valid reading is outside the sender's scope, if it is (a gateway's token over HTTP). */
  readonly scopeOf?: ((reading: Reading) => string | undefined) | undefined;
}

/**
 * A batch that is refused whole, before any reading is looked at: nothing of
 * it is taken. `unreadable`: the body is not readings at all (not UTF-8, not
 * JSON, ...); `empty`: it holds none; `too-many`: more than the limit.
 */
export class BatchError extends Error {
  override readonly name = 'BatchError';
  readonly reason: 'unreadable' | 'empty' | 'too-many';

  constructor(reason: 'unreadable' | 'empty' | 'too-many', message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * Where a batch's readings are validated, for every way they arrive (HTTP,
 * Pub/Sub): each item against the reading schema, then the sender's scope.
 * A bad item is rejected alone, with its reason; the others are taken.
 *
 * @throws BatchError when the batch holds no readings or more than `maxReadings`.
 */
export function checkBatch(items: readonly Item[], rules: BatchRules): CheckedBatch {
  const { unit, maxReadings, policy, scopeOf } = rules;
  if (items.length === 0) throw new BatchError('empty', `the ${unit} holds no readings`);
  if (items.length > maxReadings) {
    throw new BatchError(
      'too-many',
      `the ${unit} holds ${items.length} readings; at most ${maxReadings} are taken per ${unit}`,
    );
  }
  const valid: { index: number; reading: Reading }[] = [];
  const rejected: Rejection[] = [];
  for (let index = 0; index < items.length; index++) {
    const item = items[index] as Item;
    const checked: CheckedReading =
      'error' in item ? { ok: false, error: item.error } : checkReading(item.raw, policy);
    if (!checked.ok) {
      rejected.push({ index, error: checked.error });
      continue;
    }
    const outOfScope = scopeOf?.(checked.reading);
    if (outOfScope !== undefined) rejected.push({ index, error: outOfScope });
    else valid.push({ index, reading: checked.reading });
  }
  return { valid, rejected };
}
