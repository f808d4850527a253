import type { Clock, GatewayRecord } from '@streamgauge/core';
import type { Authentication, GatewayRegistry } from '@streamgauge/redis';

/**
 * Resolves bearer tokens through the gateway registry, remembering answers
 * for a few seconds so a gateway's requests do not each cost a Redis round
 * trip. A registry change (a revocation) is pushed: `forget` drops them all.
 */
export class Authenticator {
  readonly #registry: GatewayRegistry;
  readonly #ttlMs: number;
  readonly #clock: Clock;
  readonly #cache = new Map<string, { auth: Authentication; until: number }>();
  /** Bumped by `forget`: a lookup that began before a change is not remembered after it. */
  #generation = 0;

  static readonly MAX_ENTRIES = 10_000;

  constructor(registry: GatewayRegistry, ttlMs: number, clock: Clock) {
    this.#registry = registry;
    this.#ttlMs = ttlMs;
    this.#clock = clock;
  }

  /** The answer remembered for `token`, when there is one. */
  remembered(token: string): Authentication | undefined {
    const hit = this.#cache.get(token);
    return hit !== undefined && hit.until > this.#clock.now() ? hit.auth : undefined;
  }

  async authenticate(token: string): Promise<Authentication> {
    const hit = this.remembered(token);
    if (hit !== undefined) return hit;
    const generation = this.#generation;
    const auth = await this.#registry.authenticate(token);
    if (this.#ttlMs > 0 && generation === this.#generation) {
      // Random tokens must not grow the cache without bound.
      if (this.#cache.size >= Authenticator.MAX_ENTRIES) this.#cache.clear();
      this.#cache.set(token, { auth, until: this.#clock.now() + this.#ttlMs });
    }
    return auth;
  }

  /** Drops every remembered answer: the registry changed. */
  forget(): void {
    this.#generation++;
    this.#cache.clear();
  }
}

export type AuthOutcome =
  | { readonly ok: true; readonly gateway: GatewayRecord }
  | { readonly ok: false; readonly status: 401 | 403; readonly error: string };

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i;

/** The token of an `Authorization: Bearer` header, or why there is none. */
export function bearerToken(header: string | undefined): { token: string } | { error: string } {
  if (header === undefined || header === '') {
    return { error: 'missing "Authorization: Bearer <token>" header' };
  }
  const match = BEARER.exec(header);
  if (match === null) return { error: 'the Authorization header must be "Bearer <token>"' };
  return { token: match[1] as string };
}

/** What an authentication means for a request. */
export function outcomeOf(auth: Authentication): AuthOutcome {
  if (auth.status === 'unknown') return { ok: false, status: 401, error: 'unknown token' };
  if (auth.status === 'revoked') {
    return {
      ok: false,
      status: 403,
      error: `the token of gateway ${JSON.stringify(auth.gateway.name)} was revoked at ${auth.gateway.revokedAt}`,
    };
  }
  return { ok: true, gateway: auth.gateway };
}
