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

/** A printable identity, for logs and error messages. */
export function identityLabel(reading: Pick<Reading, 'node_id' | 'timestamp'>): string {
  return `${reading.node_id}@${new Date(reading.timestamp).toISOString()}`;
}
