import { createHash, randomBytes } from 'node:crypto';
import {
  type Clock,
  GATEWAY_NAME,
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
import { UnknownNameError } from '../errors/UnknownNameError.ts';
import { runScript } from '../scripts.ts';
import { publishRegistryChange } from './registryChanges.ts';

export interface IssuedGateway {
  readonly record: GatewayRecord;
  /** Shown once; only its SHA-256 is stored. */
  readonly token: string;
}

export type Authentication =
  | { readonly status: 'valid'; readonly gateway: GatewayRecord }
  | { readonly status: 'revoked'; readonly gateway: GatewayRecord }
  | { readonly status: 'unknown' };

/**
 * Gateway tokens: 256 random bits, so a plain SHA-256 is a safe verifier
 * (a slow password hash guards low-entropy secrets, which these are not).
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class GatewayRegistry {
  readonly #redis: Redis | Cluster;
  readonly #clock: Clock;

  constructor(redis: Redis | Cluster, clock: Clock) {
    this.#redis = redis;
    this.#clock = clock;
  }

  /**
   * Issues a token. A node-scoped gateway owns the nodes it names: no other
   * gateway may write them, and no other live gateway may name them.
   * `limits` are its own rates where they differ from ingest's defaults.
   */
  async add(name: string, scope: GatewayScope, limits?: Partial<GatewayLimits>): Promise<IssuedGateway> {
    if (!GATEWAY_NAME.test(name)) {
      throw new RangeError(
        `gateway name ${JSON.stringify(name)}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
      );
    }
    const nodes = scope.kind === 'nodes' ? scope.nodes : [];
    const badNode = nodes.find((node) => !isNodeId(node));
    if (badNode !== undefined) {
      throw new RangeError(`node id ${JSON.stringify(badNode)}: use ${NODE_ID_RULE}`);
    }
    const token = `sg_${randomBytes(32).toString('base64url')}`;
    const record: GatewayRecord = {
      name,
      tokenHash: hashToken(token),
      scope,
      createdAt: new Date(this.#clock.now()).toISOString(),
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

  async list(): Promise<GatewayRecord[]> {
    const all = await this.#redis.hvals(gatewayKeys.byName);
    return all.map((json) => JSON.parse(json) as GatewayRecord).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** @returns false when the gateway was already revoked. */
  async revoke(name: string): Promise<boolean> {
    const result = await runScript(
      this.#redis,
      'revokeToken',
      [gatewayKeys.byName, gatewayKeys.byTokenHash],
      [name, new Date(this.#clock.now()).toISOString()],
    );
    if (result === 0) throw new UnknownNameError(`no gateway named ${JSON.stringify(name)}`);
    if (result === 1) await publishRegistryChange(this.#redis, 'gateways');
    return result === 1;
  }

  async authenticate(token: string): Promise<Authentication> {
    const json = await this.#redis.hget(gatewayKeys.byTokenHash, hashToken(token));
    if (json === null) return { status: 'unknown' };
    const gateway = JSON.parse(json) as GatewayRecord;
    return gateway.revokedAt === undefined ? { status: 'valid', gateway } : { status: 'revoked', gateway };
  }
}
