import type { Reading } from './reading.ts';

/**
 * What a gateway token may send: readings for a fixed list of nodes, or for
 * any node of one district.
 */
export type GatewayScope =
  | { readonly kind: 'nodes'; readonly nodes: readonly string[] }
  | { readonly kind: 'district'; readonly district: string };

/** Rates a gateway may send at, per second; 0 is no limit. */
export interface GatewayLimits {
  readonly readingsPerSecond: number;
  readonly requestsPerSecond: number;
}

export interface GatewayRecord {
  readonly name: string;
  /** SHA-256 of the token, hex. The token itself is never stored. */
  readonly tokenHash: string;
  readonly scope: GatewayScope;
  readonly createdAt: string;
  readonly revokedAt?: string;
  /** This gateway's own rates, where they differ from ingest's defaults (INGEST_RATE_*). */
  readonly limits?: Partial<GatewayLimits>;
}

/** The rates `gateway` is held to: its own where set, else the defaults. */
export function limitsOf(gateway: GatewayRecord, defaults: GatewayLimits): GatewayLimits {
  return { ...defaults, ...gateway.limits };
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

/**
 * Who a node belongs to, as the gateway registry holds it. A node is bound to
 * one district (the first that sends it, within the join cap, or an
 * operator's choice) and, when a node-scoped gateway names it, owned by that
 * gateway. Writes never change either.
 */
export interface NodeOwnership {
  readonly district?: string;
  readonly gateway?: string;
}

/** The district a gateway would bind a node to on its first reading ('' for none). */
export function districtToClaim(scope: GatewayScope, reading: Reading): string {
  return scope.kind === 'district' ? scope.district : (reading.district_id ?? '');
}

/**
 * Returns why `gateway` may not write this reading of a node owned as
 * `owner`, or undefined when it may; a reading without a district is stamped
 * with the node's. The reading is already inside the gateway's scope.
 * `newNodesPerHour` only words the refusal of a node that stayed unbound.
 */
export function checkOwnership(
  gateway: GatewayRecord,
  owner: NodeOwnership,
  reading: Reading,
  newNodesPerHour: number,
): string | undefined {
  // Quoted as JSON would: a valid id holds nothing to escape (and this runs for every reading).
  const node = `"${reading.node_id}"`;
  if (owner.gateway !== undefined && owner.gateway !== gateway.name) {
    return `node_id: ${node} belongs to gateway ${JSON.stringify(owner.gateway)}, which names it in its scope`;
  }
  const { scope } = gateway;
  if (scope.kind === 'district') {
    if (owner.district === undefined) {
      const assign = `an operator can add it: streamgauge nodes assign ${reading.node_id} --district ${scope.district}`;
      return newNodesPerHour === 0
        ? `node_id: ${node} is not a node of district ${JSON.stringify(scope.district)} yet, and new nodes join only by an operator (INGEST_NEW_NODES_PER_HOUR=0); ${assign}`
        : `node_id: ${node} is new, and gateway ${JSON.stringify(gateway.name)} has already added ${newNodesPerHour} new nodes this hour (INGEST_NEW_NODES_PER_HOUR); ${assign}`;
    }
    if (owner.district !== scope.district) {
      return `node_id: ${node} belongs to district ${JSON.stringify(owner.district)}, outside this gateway's district ${JSON.stringify(scope.district)}`;
    }
    return undefined;
  }
  if (owner.district === undefined) return undefined;
  if (reading.district_id === undefined) {
    reading.district_id = owner.district;
    return undefined;
  }
  return reading.district_id === owner.district
    ? undefined
    : `district_id: ${JSON.stringify(reading.district_id)} is not node ${node}'s district ${JSON.stringify(owner.district)}`;
}
