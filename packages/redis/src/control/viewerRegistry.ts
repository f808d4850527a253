import { randomBytes } from 'node:crypto';
import { type Clock, GATEWAY_NAME, viewerKeys } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';
import { NameTakenError } from '../errors/NameTakenError.ts';
import { UnknownNameError } from '../errors/UnknownNameError.ts';
import { runScript } from '../scripts.ts';
import { hashToken } from './gatewayRegistry.ts';

/** A dashboard viewer: read-only access to the read API and page. */
export interface ViewerRecord {
  readonly name: string;
  readonly tokenHash: string;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

export type ViewerAuthentication =
  | { readonly status: 'valid' | 'revoked'; readonly viewer: ViewerRecord }
  | { readonly status: 'unknown' };

/**
 * Viewer tokens, kept apart from gateway tokens (their own keys, their own
 * prefix `sgv_`): a gateway token never opens the dashboard and a viewer
 * token never ingests.
 */
export class ViewerRegistry {
  readonly #redis: RedisClient;
  readonly #clock: Clock;

  constructor(redis: RedisClient, clock: Clock) {
    this.#redis = redis;
    this.#clock = clock;
  }

  /** Issues a token, shown once; only its SHA-256 is stored. */
  async add(name: string): Promise<{ record: ViewerRecord; token: string }> {
    if (!GATEWAY_NAME.test(name)) {
      throw new RangeError(
        `viewer name ${JSON.stringify(name)}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
      );
    }
    const token = `sgv_${randomBytes(32).toString('base64url')}`;
    const record: ViewerRecord = {
      name,
      tokenHash: hashToken(token),
      createdAt: new Date(this.#clock.now()).toISOString(),
    };
    const added = await runScript(
      this.#redis,
      'addViewer',
      [viewerKeys.byName, viewerKeys.byTokenHash],
      [name, record.tokenHash, JSON.stringify(record)],
    );
    if (added !== 1) throw new NameTakenError(`viewer ${JSON.stringify(name)} exists; revoke it first`);
    return { record, token };
  }

  async list(): Promise<ViewerRecord[]> {
    const all = await this.#redis.hvals(viewerKeys.byName);
    return all.map((json) => JSON.parse(json) as ViewerRecord).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** @returns false when the viewer was already revoked. */
  async revoke(name: string): Promise<boolean> {
    const result = await runScript(
      this.#redis,
      'revokeToken',
      [viewerKeys.byName, viewerKeys.byTokenHash],
      [name, new Date(this.#clock.now()).toISOString()],
    );
    if (result === 0) throw new UnknownNameError(`no viewer named ${JSON.stringify(name)}`);
    return result === 1;
  }

  async authenticate(token: string): Promise<ViewerAuthentication> {
    const json = await this.#redis.hget(viewerKeys.byTokenHash, hashToken(token));
    if (json === null) return { status: 'unknown' };
    const viewer = JSON.parse(json) as ViewerRecord;
    return { status: viewer.revokedAt === undefined ? 'valid' : 'revoked', viewer };
  }
}
