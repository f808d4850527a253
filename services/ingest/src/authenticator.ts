import type { GatewayRecord } from '@streamgauge/core';
import type { Authentication, GatewayRegistry } from '@streamgauge/redis';

/**
 * Resolves bearer tokens through the gateway registry, remembering answers
 * for a few seconds so a gateway's requests do not each cost a Redis round
 * trip. A revocation therefore takes effect within that time.
 */
export class Authenticator {
  readonly #registry: GatewayRegistry;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, { auth: Authentication; until: number }>();

  static readonly MAX_ENTRIES = 10_000;

  constructor(registry: GatewayRegistry, ttlMs: number, now: () => number) {
    this.#registry = registry;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  async authenticate(token: string): Promise<Authentication> {
    const now = this.#now();
    const hit = this.#cache.get(token);
    if (hit !== undefined && hit.until > now) return hit.auth;
    const auth = await this.#registry.authenticate(token);
    if (this.#ttlMs > 0) {
      // Random tokens must not grow the cache without bound.
      if (this.#cache.size >= Authenticator.MAX_ENTRIES) this.#cache.clear();
      this.#cache.set(token, { auth, until: now + this.#ttlMs });
    }
    return auth;
  }
}

export type AuthOutcome =
  | { readonly ok: true; readonly gateway: GatewayRecord | undefined }
  | { readonly ok: false; readonly status: 401 | 403; readonly error: string };

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i;

export async function authorize(
  header: string | undefined,
  authenticator: Authenticator,
): Promise<AuthOutcome> {
  if (header === undefined || header === '') {
    return { ok: false, status: 401, error: 'missing "Authorization: Bearer <token>" header' };
  }
  const match = BEARER.exec(header);
  if (match === null) {
    return { ok: false, status: 401, error: 'the Authorization header must be "Bearer <token>"' };
  }
  const auth = await authenticator.authenticate(match[1] as string);
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
