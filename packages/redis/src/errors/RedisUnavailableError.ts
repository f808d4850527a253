/**
 * What a failed write may have left behind:
 * - `none`: Redis refused it before running it, or it was never sent;
 * - `unknown`: it was sent and no answer came (timeout, connection lost), so
 *   it may have been applied;
 * - `partial`: some shards' appends succeeded, another's did not.
 * In every case a retry is safe: what was stored comes back as duplicates.
 */
export type StoredOutcome = 'none' | 'partial' | 'unknown';

/**
 * Redis could not take a write: not connected, timed out, out of memory,
 * loading, read-only, or a cluster without a master for the slot.
 */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  readonly stored: StoredOutcome;

  constructor(cause: unknown, stored: StoredOutcome = storedAfter(cause)) {
    super(`Redis is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.stored = stored;
  }
}

// NOSCRIPT: Redis restarted and forgot its scripts; nothing ran, and the
// retry sends the script itself (ioredis tracks what each socket has loaded).
const UNAVAILABLE_REPLIES =
  /^(OOM|LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOREPLICAS|NOSCRIPT)\b/;

/**
 * True for failures that say nothing about the request itself. Any error that
 * is not a reply from Redis (a closed socket, a timeout, no connection) is one;
 * a reply is one only when it names a server condition.
 */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return true;
  if (error.name !== 'ReplyError') return true;
  return UNAVAILABLE_REPLIES.test(error.message);
}

/**
 * A reply naming a server condition means the script was refused before it
 * ran (a shebang script is checked up front); an offline client never sent
 * the command. Anything else (a timeout, a connection lost with the command
 * in flight) may have been applied.
 */
function storedAfter(error: unknown): StoredOutcome {
  if (!(error instanceof Error)) return 'unknown';
  if (error.name === 'ReplyError' && UNAVAILABLE_REPLIES.test(error.message)) return 'none';
  if (/Stream isn't writeable|enableOfflineQueue/.test(error.message)) return 'none';
  return 'unknown';
}
