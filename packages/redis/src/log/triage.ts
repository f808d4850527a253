import type { DeadLetter } from './groupCommit.ts';
import type { DeliveredEntry } from './streamConsumer.ts';

export type ReadableEntry = Extract<DeliveredEntry, { readings: unknown }>;

export interface Triage {
  /** Entries to process. */
  readonly ready: ReadableEntry[];
  /** Entries given up on, with their last error. */
  readonly dead: DeadLetter[];
  /** Entries that failed this time and stay pending, to be delivered again. */
  readonly failures: { id: string; error: string }[];
}

/**
 * Sorts a batch's entries by what happens to them. An entry that cannot be
 * processed (it does not decode) stays pending with its error, until it has
 * failed `maxDeliveries` deliveries; then it is dead-lettered. An entry
 * delivered more often than that without ever being acknowledged (a
 * consumer died on it each time) is dead-lettered without another attempt,
 * with the last error recorded for it, if any.
 */
export function triage(
  entries: readonly DeliveredEntry[],
  maxDeliveries: number,
  lastErrors: ReadonlyMap<string, string>,
  /** False: a decodable entry is always tried again, however often it was delivered (the archiver: nothing may miss the warehouse). */
  giveUpOnRedelivery = true,
): Triage {
  const result: Triage = { ready: [], dead: [], failures: [] };
  for (const entry of entries) {
    if (!('error' in entry) && (entry.deliveries <= maxDeliveries || !giveUpOnRedelivery)) {
      result.ready.push(entry);
      continue;
    }
    const error =
      'error' in entry
        ? entry.error
        : (lastErrors.get(entry.id) ??
          `delivered ${entry.deliveries} times without being acknowledged (the consumer stopped while processing it)`);
    if (entry.deliveries >= maxDeliveries)
      result.dead.push({ id: entry.id, error, deliveries: entry.deliveries });
    else result.failures.push({ id: entry.id, error });
  }
  return result;
}

/** Entries whose last error must be looked up before triage: delivered too often, yet decodable. */
export function exhausted(entries: readonly DeliveredEntry[], maxDeliveries: number): string[] {
  return entries.filter((e) => !('error' in e) && e.deliveries > maxDeliveries).map((e) => e.id);
}
