import {
  checkOwnership,
  districtToClaim,
  type GatewayRecord,
  type NodeOwnership,
  type Reading,
  type Rejection,
} from '@streamgauge/core';
import type { NodeOwners } from '@streamgauge/redis';
import type { RedisBudget } from './redisBudget.ts';

type Valid = { index: number; reading: Reading };

const NO_OWNER: NodeOwnership = {};

/**
 * Keeps the readings of nodes that are the gateway's own, binding new nodes
 * of a district gateway to its district within INGEST_NEW_NODES_PER_HOUR;
 * every other reading is rejected as that item, with the reason.
 */
export async function keepOwnNodes(
  gateway: GatewayRecord,
  valid: readonly Valid[],
  rejected: Rejection[],
  owners: NodeOwners,
  newNodesPerHour: number,
  budget: RedisBudget,
): Promise<Valid[]> {
  if (valid.length === 0) return [];
  // A node is settled once per request, by its first reading: from memory
  // when its owner is remembered (the usual request), else by one claim.
  const now = owners.now();
  const settled = new Map<string, NodeOwnership | undefined>();
  let districts: Map<string, string> | undefined;
  for (const { reading } of valid) {
    if (settled.has(reading.node_id)) continue;
    const want = districtToClaim(gateway.scope, reading);
    const owner = owners.remembered(reading.node_id, want, now);
    settled.set(reading.node_id, owner);
    if (owner === undefined) {
      districts ??= new Map();
      districts.set(reading.node_id, want);
    }
  }
  const claimed =
    districts === undefined
      ? undefined
      : await budget.before(
          owners.claim({
            gateway: gateway.name,
            districts,
            // A node-scoped gateway's nodes were named by an operator: no cap.
            newNodesPerHour: gateway.scope.kind === 'district' ? newNodesPerHour : -1,
          }),
        );
  const kept: Valid[] = [];
  let refused = false;
  for (const item of valid) {
    const node = item.reading.node_id;
    const owner = settled.get(node) ?? claimed?.get(node) ?? NO_OWNER;
    const error = checkOwnership(gateway, owner, item.reading, newNodesPerHour);
    if (error === undefined) kept.push(item);
    else {
      rejected.push({ index: item.index, error });
      refused = true;
    }
  }
  if (refused) rejected.sort((a, b) => a.index - b.index);
  return kept;
}
