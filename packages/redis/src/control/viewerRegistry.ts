import { type Clock, viewerKeys } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';
import { NameTakenError } from '../errors/NameTakenError.ts';
import { runScript } from '../scripts.ts';
import { TokenRecords } from './tokenRecords.ts';

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
  readonly #records: TokenRecords<ViewerRecord>;

  constructor(redis: RedisClient, clock: Clock) {
    this.#redis = redis;
    this.#records = new TokenRecords(redis, { keys: viewerKeys, kind: 'viewer', clock });
  }

  /** Issues a token, shown once; only its SHA-256 is stored. */
  async add(name: string): Promise<{ record: ViewerRecord; token: string }> {
    const { token, tokenHash, createdAt } = this.#records.issue(name, 'sgv_');
    const record: ViewerRecord = { name, tokenHash, createdAt };
    const added = await runScript(
      this.#redis,
      'addViewer',
      [viewerKeys.byName, viewerKeys.byTokenHash],
      [name, record.tokenHash, JSON.stringify(record)],
    );
    if (added !== 1) throw new NameTakenError(`viewer ${JSON.stringify(name)} exists; revoke it first`);
    return { record, token };
  }

  list(): Promise<ViewerRecord[]> {
    return this.#records.list();
  }

  /** @returns false when the viewer was already revoked. */
  revoke(name: string): Promise<boolean> {
    return this.#records.revoke(name);
  }

  async authenticate(token: string): Promise<ViewerAuthentication> {
    const found = await this.#records.lookup(token);
    return found.status === 'unknown' ? found : { status: found.status, viewer: found.record };
  }
}
