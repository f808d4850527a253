import { type Clock, type GatewayRecord, type IngestConfig, limitsOf, rateKeys } from '@streamgauge/core';
import { type Rate, type RateLimits, RedisUnavailableError } from '@streamgauge/redis';
import { type Authenticator, type AuthOutcome, bearerToken, outcomeOf } from './authenticator.ts';
import type { RedisBudget } from './redisBudget.ts';

/** Whether a request may go on: its gateway, or the answer it gets. */
export type Admission =
  | { readonly ok: true; readonly gateway: GatewayRecord }
  | {
      readonly ok: false;
      readonly status: 401 | 403 | 429;
      readonly error: string;
      /** With 429: seconds until a retry can succeed. */
      readonly retryAfterSeconds?: number;
    };

/**
 * Who may send, and how fast. `admit` decides from the headers alone,
 * before the body is read: a missing, unknown or revoked token, an address
 * that failed too often, or a gateway over its request rate is answered at
 * once. `takeReadings` holds a gateway to its readings rate once the body
 * is counted. The budgets live in Redis, shared by every ingest replica.
 */
export class Gatekeeper {
  readonly #authenticator: Authenticator;
  readonly #limits: RateLimits;
  readonly #config: IngestConfig;
  readonly #clock: Clock;
  /** Addresses Redis said were over their failure budget, until when (ms). */
  readonly #blocked = new Map<string, number>();

  static readonly MAX_BLOCKED = 10_000;

  constructor(authenticator: Authenticator, limits: RateLimits, config: IngestConfig, clock: Clock) {
    this.#authenticator = authenticator;
    this.#limits = limits;
    this.#config = config;
    this.#clock = clock;
  }

  async admit(header: string | undefined, address: string, budget: RedisBudget): Promise<Admission> {
    const bearer = bearerToken(header);
    const remembered = 'token' in bearer ? this.#authenticator.remembered(bearer.token) : undefined;
    if (remembered?.status !== 'valid') {
      const until = this.#blocked.get(address);
      if (until !== undefined) {
        if (until > this.#clock.now()) return this.#tooManyFailures(address, until - this.#clock.now());
        this.#blocked.delete(address);
      }
    }
    let outcome: AuthOutcome;
    if ('error' in bearer) outcome = { ok: false, status: 401, error: bearer.error };
    else if (remembered !== undefined) outcome = outcomeOf(remembered);
    else {
      // Another replica may have seen this address fail: its count is in
      // Redis. Checked with the lookup, and answered 429 whatever the token
      // was, so a guess that hits cannot be told from one that misses.
      const [auth, blockedMs] = await budget.before(
        Promise.all([this.#authenticator.authenticate(bearer.token), this.#failuresBlock(address)]),
      );
      if (blockedMs > 0) return this.#block(address, blockedMs);
      outcome = outcomeOf(auth);
    }
    if (!outcome.ok) {
      const waitMs = await this.#chargeFailure(address, budget);
      return waitMs > 0 ? this.#tooManyFailures(address, waitMs) : outcome;
    }
    const { requestsPerSecond } = limitsOf(outcome.gateway, this.#config.limits);
    if (requestsPerSecond > 0) {
      const rate = { perSecond: requestsPerSecond, burst: Math.max(1, requestsPerSecond) };
      const waitMs = await budget.before(this.#limits.take(rateKeys.requests(outcome.gateway.name), rate, 1));
      if (waitMs > 0) {
        return tooFast(
          `gateway ${JSON.stringify(outcome.gateway.name)} is over its ${requestsPerSecond} requests/s`,
          waitMs,
        );
      }
    }
    return outcome;
  }

  /**
   * Takes `count` readings from the gateway's budget, or says when to retry.
   * A full batch always fits the burst, so every batch can pass in time.
   */
  async takeReadings(
    gateway: GatewayRecord,
    count: number,
    budget: RedisBudget,
  ): Promise<Admission | undefined> {
    const { readingsPerSecond } = limitsOf(gateway, this.#config.limits);
    if (readingsPerSecond <= 0) return undefined;
    const rate = {
      perSecond: readingsPerSecond,
      burst: Math.max(readingsPerSecond, this.#config.maxBatchReadings),
    };
    const waitMs = await budget.before(this.#limits.take(rateKeys.readings(gateway.name), rate, count));
    if (waitMs <= 0) return undefined;
    return tooFast(
      `gateway ${JSON.stringify(gateway.name)} is over its ${readingsPerSecond} readings/s (${count} in this request); nothing was stored`,
      waitMs,
    );
  }

  /** Counts a failed authentication against the address: 0, or ms until it may try again. */
  async #chargeFailure(address: string, budget: RedisBudget): Promise<number> {
    const perMinute = this.#config.authFailuresPerMinute;
    if (perMinute <= 0) return 0;
    let waitMs: number;
    try {
      waitMs = await budget.before(
        this.#limits.take(rateKeys.authFailures(address), failureRate(perMinute), 1),
      );
    } catch (error) {
      // The refusal stands without Redis; only its count is lost.
      if (error instanceof RedisUnavailableError) return 0;
      throw error;
    }
    if (waitMs > 0) this.#block(address, waitMs);
    return waitMs;
  }

  /** 0, or ms until `address` may fail again: how long it is blocked. */
  #failuresBlock(address: string): Promise<number> {
    const perMinute = this.#config.authFailuresPerMinute;
    if (perMinute <= 0) return Promise.resolve(0);
    return this.#limits.peek(rateKeys.authFailures(address), failureRate(perMinute), 1);
  }

  /** Blocks `address` here for `waitMs`, and says so. */
  #block(address: string, waitMs: number): Admission {
    if (this.#blocked.size >= Gatekeeper.MAX_BLOCKED) this.#blocked.clear();
    this.#blocked.set(address, this.#clock.now() + waitMs);
    return this.#tooManyFailures(address, waitMs);
  }

  #tooManyFailures(address: string, waitMs: number): Admission {
    return tooFast(
      `too many failed authentications from ${address} (at most ${this.#config.authFailuresPerMinute} a minute, INGEST_AUTH_FAILURES_PER_MINUTE)`,
      waitMs,
    );
  }
}

/** A burst of `perMinute` failures, then one every 60/perMinute s. */
function failureRate(perMinute: number): Rate {
  return { perSecond: perMinute / 60, burst: perMinute };
}

function tooFast(reason: string, waitMs: number): Admission {
  const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000));
  return {
    ok: false,
    status: 429,
    error: `${reason}; retry after ${retryAfterSeconds} s`,
    retryAfterSeconds,
  };
}
