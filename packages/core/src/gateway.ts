import type { Reading } from './reading.ts';

/**
 * What a gateway token may send: readings for a fixed list of nodes, or for
 * any node of one district.
 */
export type GatewayScope =
  | { readonly kind: 'nodes'; readonly nodes: readonly string[] }
  | { readonly kind: 'district'; readonly district: string };

export interface GatewayRecord {
  readonly name: string;
  /** SHA-256 of the token, hex. The token itself is never stored. */
  readonly tokenHash: string;
  readonly scope: GatewayScope;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

export const GATEWAY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Returns why a reading is outside the scope, or undefined when it is inside.
 * A district gateway's readings that carry no district are taken to be of
 * the gateway's district and are stamped with it.
 */
export function checkScope(scope: GatewayScope, reading: Reading): string | undefined {
  if (scope.kind === 'nodes') {
    return scope.nodes.includes(reading.node_id)
      ? undefined
      : `node_id: ${JSON.stringify(reading.node_id)} is not among this gateway's nodes`;
  }
  if (reading.district_id === undefined) {
    reading.district_id = scope.district;
    return undefined;
  }
  return reading.district_id === scope.district
    ? undefined
    : `district_id: ${JSON.stringify(reading.district_id)} is outside this gateway's district ${JSON.stringify(scope.district)}`;
}

export function describeScope(scope: GatewayScope): string {
  return scope.kind === 'nodes' ? `nodes ${scope.nodes.join(',')}` : `district ${scope.district}`;
}
