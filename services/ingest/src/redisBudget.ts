import { TimeoutError, withTimeout } from '@streamgauge/core';
import { isUnavailable, RedisUnavailableError, type StoredOutcome } from '@streamgauge/redis';

/**
 * The time one request may spend waiting on Redis, over all of its calls
 * (token lookup, rate limits, node owners, the append): a request is
 * answered within INGEST_REDIS_TIMEOUT_MS of Redis time whatever Redis does,
 * not that much per call. Time spent receiving the body does not count.
 */
export class RedisBudget {
  #leftMs: number;

  constructor(timeoutMs: number) {
    this.#leftMs = timeoutMs;
  }

  /**
   * Waits for a call that writes no reading (so a failure leaves nothing
   * stored); an unavailable Redis or an exhausted budget throws
   * RedisUnavailableError with `stored: none`.
   */
  before<T>(call: Promise<T>): Promise<T> {
    return this.#wait(call, 'none');
  }

  /** Waits for the append: running out of time means it may have landed (`stored: unknown`). */
  append<T>(call: Promise<T>): Promise<T> {
    return this.#wait(call, 'unknown');
  }

  async #wait<T>(call: Promise<T>, storedIfCut: StoredOutcome): Promise<T> {
    const started = performance.now();
    try {
      return await withTimeout(call, Math.max(1, Math.floor(this.#leftMs)));
    } catch (error) {
      if (error instanceof RedisUnavailableError) {
        throw storedIfCut === 'none' ? new RedisUnavailableError(error.cause, 'none') : error;
      }
      if (isUnavailable(error)) {
        throw new RedisUnavailableError(error, storedIfCut === 'none' ? 'none' : undefined);
      }
      if (error instanceof TimeoutError) {
        throw new RedisUnavailableError(error, storedIfCut);
      }
      throw error;
    } finally {
      this.#leftMs -= performance.now() - started;
    }
  }
}
