/**
 * Redis could not take a write: not connected, timed out, out of memory,
 * loading, read-only, or a cluster without a master for the slot. The write
 * was not applied (scripts are all or nothing), so the caller may retry.
 */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';

  constructor(cause: unknown) {
    super(`Redis is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

const UNAVAILABLE_REPLIES = /^(OOM|LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOREPLICAS)\b/;

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
