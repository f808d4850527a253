import { createHash, randomBytes } from 'node:crypto';
import { type Clock, GATEWAY_NAME } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';
import { UnknownNameError } from '../errors/UnknownNameError.ts';
import { runScript } from '../scripts.ts';

/**
 * Bearer tokens: 256 random bits, so a plain SHA-256 is a safe verifier
 * (a slow password hash guards low-entropy secrets, which these are not).
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** What every record issued with a token holds. */
export interface TokenRecord {
  readonly name: string;
  readonly tokenHash: string;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

export type TokenLookup<R extends TokenRecord> =
  | { readonly status: 'valid' | 'revoked'; readonly record: R }
  | { readonly status: 'unknown' };

/**
 * Named records issued with a bearer token (gateways, dashboard viewers),
 * each kind under its own keys: by name, and by the token's SHA-256 (only
 * the hash is stored; the token is shown once). A revoked record stays,
 * marked, so a revoked token is told apart from an unknown one.
 */
export class TokenRecords<R extends TokenRecord> {
  readonly #redis: RedisClient;
  readonly #keys: { readonly byName: string; readonly byTokenHash: string };
  readonly #kind: string;
  readonly #clock: Clock;

  constructor(
    redis: RedisClient,
    options: { keys: { byName: string; byTokenHash: string }; kind: string; clock: Clock },
  ) {
    this.#redis = redis;
    this.#keys = options.keys;
    this.#kind = options.kind;
    this.#clock = options.clock;
  }

  get keys(): { readonly byName: string; readonly byTokenHash: string } {
    return this.#keys;
  }

  /** A new token with `prefix` and what a record stores of it, for `name` (refused unless a valid name). */
  issue(name: string, prefix: string): { token: string; tokenHash: string; createdAt: string } {
    if (!GATEWAY_NAME.test(name)) {
      throw new RangeError(
        `${this.#kind} name ${JSON.stringify(name)}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
      );
    }
    const token = `${prefix}${randomBytes(32).toString('base64url')}`;
    return { token, tokenHash: hashToken(token), createdAt: new Date(this.#clock.now()).toISOString() };
  }

  async list(): Promise<R[]> {
    const all = await this.#redis.hvals(this.#keys.byName);
    return all.map((json) => JSON.parse(json) as R).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** @returns false when the record was already revoked. */
  async revoke(name: string): Promise<boolean> {
    const result = await runScript(
      this.#redis,
      'revokeToken',
      [this.#keys.byName, this.#keys.byTokenHash],
      [name, new Date(this.#clock.now()).toISOString()],
    );
    if (result === 0) throw new UnknownNameError(`no ${this.#kind} named ${JSON.stringify(name)}`);
    return result === 1;
  }

  async lookup(token: string): Promise<TokenLookup<R>> {
    const json = await this.#redis.hget(this.#keys.byTokenHash, hashToken(token));
    if (json === null) return { status: 'unknown' };
    const record = JSON.parse(json) as R;
    return { status: record.revokedAt === undefined ? 'valid' : 'revoked', record };
  }
}
