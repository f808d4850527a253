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
  // Known nodes are settled from memory (the usual request); only the others are claimed.
  const remembered = new Array<NodeOwnership | undefined>(valid.length);
  let districts: Map<string, string> | undefined;
  for (let i = 0; i < valid.length; i++) {
    const { reading } = valid[i] as Valid;
    const want = districtToClaim(gateway.scope, reading);
    remembered[i] = owners.remembered(reading.node_id, want);
    if (remembered[i] === undefined) {
      districts ??= new Map();
      if (!districts.has(reading.node_id)) districts.set(reading.node_id, want);
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
  for (let i = 0; i < valid.length; i++) {
    const item = valid[i] as Valid;
    const owner = remembered[i] ?? claimed?.get(item.reading.node_id) ?? NO_OWNER;
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
