import { gatewayKeys } from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';

/**
 * Which district each node belongs to, so a district gateway can only send
 * readings for its own district's nodes. A node is bound to the district of
 * the first district gateway that sends it (HSETNX): it never moves by
 * itself. Bindings are remembered in memory, since they do not change.
 */
export class NodeDistricts {
  readonly #redis: Redis | Cluster;
  readonly #known = new Map<string, string>();
  static readonly MAX_REMEMBERED = 200_000;

  constructor(redis: Redis | Cluster) {
    this.#redis = redis;
  }

  /** The district of each node that has one (one round trip for those not remembered). */
  async lookup(nodeIds: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    const unknown: string[] = [];
    for (const id of nodeIds) {
      const district = this.#known.get(id);
      if (district === undefined) unknown.push(id);
      else found.set(id, district);
    }
    if (unknown.length > 0) {
      const districts = await this.#redis.hmget(gatewayKeys.nodeDistrict, ...unknown);
      unknown.forEach((id, i) => {
        const district = districts[i];
        if (district !== null && district !== undefined) {
          found.set(id, district);
          this.#remember(id, district);
        }
      });
    }
    return found;
  }

  /** Binds nodes that have no district yet to `district`. */
  async claim(nodeIds: readonly string[], district: string): Promise<void> {
    if (nodeIds.length === 0) return;
    const pipeline = this.#redis.pipeline();
    for (const id of nodeIds) pipeline.hsetnx(gatewayKeys.nodeDistrict, id, district);
    await pipeline.exec();
  }

  #remember(id: string, district: string): void {
    if (this.#known.size >= NodeDistricts.MAX_REMEMBERED) this.#known.clear();
    this.#known.set(id, district);
  }
}
