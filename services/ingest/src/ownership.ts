import {
  checkOwnership,
  districtToClaim,
  type GatewayRecord,
  type Reading,
  type Rejection,
} from '@streamgauge/core';
import type { NodeOwners } from '@streamgauge/redis';
import type { RedisBudget } from './redisBudget.ts';

type Valid = { index: number; reading: Reading };

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
  const districts = new Map<string, string>();
  for (const { reading } of valid) {
    if (!districts.has(reading.node_id))
      districts.set(reading.node_id, districtToClaim(gateway.scope, reading));
  }
  const owned = await budget.before(
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
    const error = checkOwnership(
      gateway,
      owned.get(item.reading.node_id) ?? {},
      item.reading,
      newNodesPerHour,
    );
    if (error === undefined) kept.push(item);
    else {
      rejected.push({ index: item.index, error });
      refused = true;
    }
  }
  if (refused) rejected.sort((a, b) => a.index - b.index);
  return kept;
}
