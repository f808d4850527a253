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
  override readonly name: string = 'RedisUnavailableError';
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

/** What ioredis (and ours) throw when a command could not reach Redis or got no answer in time. */
const UNAVAILABLE_MESSAGES = new RegExp(
  `^(${[
    'Connection is closed',
    "Stream isn't writeable",
    'Command timed out',
    'Command aborted due to connection close',
    'Socket timeout',
    'Reached the max retries per request limit',
    'None of startup nodes is available',
    'Failed to refresh slots cache',
    "Cluster isn't ready",
    'Cluster is disconnected',
    'Too many Cluster redirections',
    'Redis did not become ready',
  ].join('|')})`,
);

/** ioredis' own errors for a connection that gave up (their `name` is their class). */
const UNAVAILABLE_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);

/** Socket errors: the connection failed, not the request. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTCONN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

/**
 * True for failures that say nothing about the request itself, so that
 * waiting and retrying can succeed: no connection (closed, refused, reset,
 * not writeable, retries exhausted), no answer in time (ioredis' command
 * timeout), RedisUnavailableError itself, and replies that name a server
 * condition (OOM, LOADING, READONLY, …). Everything else is false: replies
 * about the request, our own errors (LeaseLostError, PayloadGoneError, …)
 * and bugs (TypeError & co.), which no retry can fix.
 */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof RedisUnavailableError) return true;
  if (error.name === 'ReplyError') return UNAVAILABLE_REPLIES.test(error.message);
  if (UNAVAILABLE_NAMES.has(error.name)) return true;
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true;
  return UNAVAILABLE_MESSAGES.test(error.message);
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
