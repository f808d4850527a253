import type { Reading } from './reading.ts';

/**
 * A reading is identified by `(node_id, timestamp)`. For deduplication the
 * identity is split into an hour bucket (part of a Redis key) and the
 * millisecond offset within that hour, an integer below 3.6e6 that Redis
 * stores in a compact intset (4 bytes a member).
 */
export const IDENTITY_BUCKET_MS = 3_600_000;

export interface ReadingIdentity {
  readonly nodeId: string;
  /** Start of the event-time hour, epoch ms. */
  readonly bucket: number;
  /** Milliseconds since `bucket`. */
  readonly offset: number;
}

export function identityOf(reading: Pick<Reading, 'node_id' | 'timestamp'>): ReadingIdentity {
  const offset = reading.timestamp % IDENTITY_BUCKET_MS;
  return { nodeId: reading.node_id, bucket: reading.timestamp - offset, offset };
}

/**
 * The dedupe hashes split the hour into slots of 20 minutes: what a node
 * holds in one is short (120 offsets at one reading per 10 s), and a
 * request copies it whole through Redis, where an hour's (360) made the
 * dedupe script cost twice as much. Three slots an hour: a slot never spans
 * two hours.
 */
export const IDENTITY_SLOT_MS = 1_200_000;

/** A timestamp's dedupe slot: its number (epoch ms / IDENTITY_SLOT_MS, floored) and the milliseconds since its start. */
export function identitySlotOf(timestamp: number): { readonly slot: number; readonly offset: number } {
  const offset = timestamp % IDENTITY_SLOT_MS;
  return { slot: (timestamp - offset) / IDENTITY_SLOT_MS, offset };
}

/** A printable identity, for logs and error messages. */
export function identityLabel(reading: Pick<Reading, 'node_id' | 'timestamp'>): string {
  return `${reading.node_id}@${new Date(reading.timestamp).toISOString()}`;
}
