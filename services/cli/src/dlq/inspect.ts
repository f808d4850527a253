import { type DeadLetterRecord, type RedriveOutcome, RedriveRefusedError } from '@streamgauge/redis';
import { type Content, deadLetter, originalContent, redriveOptions } from './redrive.ts';
import type { Session } from './session.ts';

export interface Listing {
  /** Oldest first, shard by shard. */
  readonly letters: DeadLetterRecord[];
  /** Whether more dead letters match than are listed. */
  readonly more: boolean;
  /** How many dead letters the shards hold (of every group). */
  readonly total: number;
}

/** Up to `limit` dead letters of the shards (of one group, with `group`). */
export async function listDeadLetters(
  { dead }: Session,
  shards: readonly number[],
  options: { readonly group?: string; readonly limit: number },
): Promise<Listing> {
  const filter = options.group === undefined ? {} : { group: options.group };
  const letters: DeadLetterRecord[] = [];
  let total = 0;
  let more = false;
  for (const shard of shards) {
    total += await dead.count(shard);
    if (letters.length === options.limit) {
      // Full already: whether this shard holds one more is all that is left to know.
      more ||= (await dead.list(shard, { ...filter, limit: 1, originals: false })).letters.length > 0;
      continue;
    }
    const page = await dead.list(shard, { ...filter, limit: options.limit - letters.length });
    letters.push(...page.letters);
    more ||= page.next !== undefined;
  }
  return { letters, more, total };
}

export interface Inspection {
  readonly letter: DeadLetterRecord;
  /** The same entry's dead letters of other groups. */
  readonly siblings: DeadLetterRecord[];
  readonly content: Content;
  /** What a redrive of the original would do, or why it would be refused. */
  readonly plan: { readonly outcome: RedriveOutcome } | { readonly refusal: RedriveRefusedError };
}

/**
 * One dead letter in full, and a dry run of its redrive.
 *
 * @throws DeadLetterGoneError when it is not there.
 */
export async function inspectDeadLetter(session: Session, handle: string): Promise<Inspection> {
  const { dead, config } = session;
  const letter = await deadLetter(dead, handle);
  const siblings = await dead.siblings(letter);
  const content = originalContent(letter, config);
  const plan = await dead.redrive(letter.handle, redriveOptions(config, 'original', content, true)).then(
    (outcome) => ({ outcome }),
    (error: unknown) => {
      if (error instanceof RedriveRefusedError) return { refusal: error };
      throw error;
    },
  );
  return { letter, siblings, content, plan };
}
