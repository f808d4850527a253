import {
  type Clock,
  type GatewayLimits,
  type GatewayRecord,
  type GatewayScope,
  gatewayKeys,
  isNodeId,
  NODE_ID_RULE,
} from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';
import { NameTakenError } from '../errors/NameTakenError.ts';
import { NodeOwnedError } from '../errors/NodeOwnedError.ts';
import { runScript } from '../scripts.ts';
import { publishRegistryChange } from './registryChanges.ts';
import { TokenRecords } from './tokenRecords.ts';

export interface IssuedGateway {
  readonly record: GatewayRecord;
  /** Shown once; only its SHA-256 is stored. */
  readonly token: string;
}

export type Authentication =
  | { readonly status: 'valid'; readonly gateway: GatewayRecord }
  | { readonly status: 'revoked'; readonly gateway: GatewayRecord }
  | { readonly status: 'unknown' };

export class GatewayRegistry {
  readonly #redis: Redis | Cluster;
  readonly #records: TokenRecords<GatewayRecord>;

  constructor(redis: Redis | Cluster, clock: Clock) {
    this.#redis = redis;
    this.#records = new TokenRecords(redis, { keys: gatewayKeys, kind: 'gateway', clock });
  }

  /**
   * Issues a token. A node-scoped gateway owns the nodes it names: no other
   * gateway may write them, and no other live gateway may name them.
   * `limits` are its own rates where they differ from ingest's defaults.
   */
  async add(name: string, scope: GatewayScope, limits?: Partial<GatewayLimits>): Promise<IssuedGateway> {
    const { token, tokenHash, createdAt } = this.#records.issue(name, 'sg_');
    const nodes = scope.kind === 'nodes' ? scope.nodes : [];
    const badNode = nodes.find((node) => !isNodeId(node));
    if (badNode !== undefined) {
      throw new RangeError(`node id ${JSON.stringify(badNode)}: use ${NODE_ID_RULE}`);
    }
    const record: GatewayRecord = {
      name,
      tokenHash,
      scope,
      createdAt,
      ...(limits === undefined || Object.keys(limits).length === 0 ? {} : { limits }),
    };
    const added = await runScript(
      this.#redis,
      'addGateway',
      [gatewayKeys.byName, gatewayKeys.byTokenHash, gatewayKeys.nodeGateway],
      [name, record.tokenHash, JSON.stringify(record), ...nodes],
    );
    if (Array.isArray(added)) {
      const [node, owner] = added as [string, string];
      throw new NodeOwnedError(node, owner);
    }
    if (added !== 1) {
      throw new NameTakenError(`gateway ${JSON.stringify(name)} exists; revoke it first`);
    }
    if (nodes.length > 0) await publishRegistryChange(this.#redis, 'nodes');
    return { record, token };
  }

  list(): Promise<GatewayRecord[]> {
    return this.#records.list();
  }

  /** @returns false when the gateway was already revoked. */
  async revoke(name: string): Promise<boolean> {
    const revoked = await this.#records.revoke(name);
    if (revoked) await publishRegistryChange(this.#redis, 'gateways');
    return revoked;
  }

  async authenticate(token: string): Promise<Authentication> {
    const found = await this.#records.lookup(token);
    return found.status === 'unknown' ? found : { status: found.status, gateway: found.record };
  }
}
