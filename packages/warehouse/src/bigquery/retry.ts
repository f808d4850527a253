import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs } from '@streamgauge/core';

/**
 * What BigQuery answers when trying again later may work: HTTP statuses of
 * overload and server trouble, and the error reasons its troubleshooting
 * guide says to retry with backoff (a job can fail with `backendError`
 * after it was accepted, with HTTP 200 on the request that reports it).
 */
const TRANSIENT_STATUS = new Set([429, 500, 502, 503, 504]);
const TRANSIENT_REASONS = new Set([
  'rateLimitExceeded',
  'backendError',
  'internalError',
  'jobBackendError',
  'jobInternalError',
]);
/** Connections dropped on the way: the request may or may not have arrived. */
const TRANSIENT_NETWORK = new Set(['ECONNRESET', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'EAI_AGAIN', 'EPIPE']);

const MAX_DELAY_MS = 32_000;

export interface RetryPolicy {
  /** Attempts after the first. */
  readonly maxRetries: number;
  /** Delay before the first retry; each retry doubles it (with jitter), up to 32 s. */
  readonly baseDelayMs: number;
}

/** The parts of a client error this adapter looks at (an ApiError, or a network error). */
interface ClientError {
  readonly code?: unknown;
  readonly errors?: readonly { readonly reason?: string; readonly message?: string }[];
  readonly message?: string;
}

function asClientError(error: unknown): ClientError {
  return typeof error === 'object' && error !== null ? (error as ClientError) : { message: String(error) };
}

/** The HTTP status of a failed request, if it got one. */
export function statusOf(error: unknown): number | undefined {
  const { code } = asClientError(error);
  return typeof code === 'number' ? code : undefined;
}

/** BigQuery's reasons (`invalidQuery`, `notFound`, …), first the main one. */
export function reasonsOf(error: unknown): string[] {
  return (asClientError(error).errors ?? []).flatMap((e) => (e.reason ? [e.reason] : []));
}

export function isTransient(error: unknown): boolean {
  const { code } = asClientError(error);
  if (typeof code === 'string') return TRANSIENT_NETWORK.has(code);
  return (
    (typeof code === 'number' && TRANSIENT_STATUS.has(code)) ||
    reasonsOf(error).some((r) => TRANSIENT_REASONS.has(r))
  );
}

/** One line: HTTP status, BigQuery's reason and its message. */
export function describeError(error: unknown): string {
  const status = statusOf(error);
  const reasons = reasonsOf(error);
  const message = (asClientError(error).message ?? '').split('\n')[0];
  return [status === undefined ? '' : `HTTP ${status}`, reasons[0] ?? '', message].filter(Boolean).join(': ');
}

/**
 * Runs `attempt` until it succeeds, a failure is not transient, or
 * `maxRetries` retries are spent, sleeping with exponential backoff and
 * jitter in between (so clients that failed together do not retry
 * together). `attempt` gets the attempt number, from 0.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  attempt: (n: number) => Promise<T>,
  fail: (error: unknown, attempts: number) => Error,
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (!isTransient(error) || n >= policy.maxRetries) throw fail(error, n + 1);
      const ceiling = backoffMs(n, { baseMs: policy.baseDelayMs, maxMs: MAX_DELAY_MS });
      await sleep(ceiling / 2 + Math.random() * (ceiling / 2));
    }
  }
}
