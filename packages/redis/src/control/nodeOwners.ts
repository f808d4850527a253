import { type Clock, gatewayKeys, type NodeOwnership, systemClock } from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';
import { NodeOwnedError } from '../errors/NodeOwnedError.ts';
import { runScript } from '../scripts.ts';
import { publishRegistryChange } from './registryChanges.ts';

/** What a gateway asks of the nodes of one request. */
export interface NodeClaim {
  /** The gateway writing. */
  readonly gateway: string;
  /** node id → the district to bind it to if it has none ('' for none). */
  readonly districts: ReadonlyMap<string, string>;
  /** Nodes the gateway may bind to a district per hour; -1: no cap (a node-scoped gateway names its own). */
  readonly newNodesPerHour: number;
}

export interface OwnedNode extends NodeOwnership {
  readonly node: string;
}

const NO_OWNER: NodeOwnership = {};

/**
 * Who owns each node (its district, the gateway that names it), so a
 * gateway writes only nodes that are its own, and how nodes join. Settled
 * answers are remembered: a write never changes them, and an operator's
 * change is announced on the registry's channel (`forget`).
 */
export class NodeOwners {
  readonly #redis: Redis | Cluster;
  readonly #clock: Clock;
  readonly #known = new Map<string, { owner: NodeOwnership; until: number }>();
  /** Bumped by `forget`: an answer that began before a change is not remembered after it. */
  #generation = 0;
  static readonly MAX_REMEMBERED = 200_000;
  /**
   * Changes are pushed (`forget`); this bounds how long an answer is kept
   * should a push be missed.
   */
  static readonly REMEMBER_MS = 60_000;

  constructor(redis: Redis | Cluster, clock: Clock = systemClock) {
    this.#redis = redis;
    this.#clock = clock;
  }

  /**
   * The owners of the claim's nodes, binding those without a district to the
   * one asked for, within the cap. One round trip, and none when every node
   * is remembered and needs no binding.
   */
  async claim(claim: NodeClaim): Promise<Map<string, NodeOwnership>> {
    const owners = new Map<string, NodeOwnership>();
    const ask: string[] = [];
    const now = this.#clock.now();
    for (const [node, want] of claim.districts) {
      const known = this.remembered(node, want, now);
      if (known === undefined) ask.push(node, want);
      else owners.set(node, known);
    }
    if (ask.length === 0) return owners;
    const generation = this.#generation;
    const replies = (await runScript(
      this.#redis,
      'claimNodes',
      [gatewayKeys.nodeDistrict, gatewayKeys.nodeGateway, gatewayKeys.joined(claim.gateway)],
      [claim.gateway, claim.newNodesPerHour, ...ask],
    )) as [string, string][];
    const remember = generation === this.#generation;
    replies.forEach(([district, gateway], i) => {
      const node = ask[2 * i] as string;
      const owner = ownership(district || undefined, gateway || undefined);
      owners.set(node, owner);
      if (remember) this.#remember(node, owner, now);
    });
    return owners;
  }

  /**
   * The node's owner as remembered, when that settles a claim of `want` (a
   * district, or '') at `now`: no Redis call. Undefined when it must be claimed.
   */
  remembered(node: string, want: string, now: number): NodeOwnership | undefined {
    const known = this.#known.get(node);
    if (known === undefined || known.until <= now || (known.owner.district === undefined && want !== '')) {
      return undefined;
    }
    return known.owner;
  }

  /** The clock `remembered` is asked against. */
  now(): number {
    return this.#clock.now();
  }

  /** Drops what is remembered: the registry changed. */
  forget(): void {
    this.#generation++;
    this.#known.clear();
  }

  /** Binds nodes to `district`, whatever they were bound to (an operator's decision). */
  async assign(nodes: readonly string[], district: string): Promise<void> {
    if (nodes.length === 0) return;
    await this.#redis.hset(gatewayKeys.nodeDistrict, Object.fromEntries(nodes.map((n) => [n, district])));
    await publishRegistryChange(this.#redis, 'nodes');
  }

  /**
   * Unbinds nodes from their district (and from a revoked gateway that named
   * them) so they join anew. Throws NodeOwnedError, releasing nothing, for a
   * node a live gateway names.
   * @returns how many of the nodes had an owner.
   */
  async release(nodes: readonly string[]): Promise<number> {
    if (nodes.length === 0) return 0;
    const reply = await runScript(
      this.#redis,
      'releaseNodes',
      [gatewayKeys.nodeDistrict, gatewayKeys.nodeGateway, gatewayKeys.byName],
      nodes,
    );
    if (Array.isArray(reply)) {
      const [node, gateway] = reply as [string, string];
      throw new NodeOwnedError(node, gateway);
    }
    await publishRegistryChange(this.#redis, 'nodes');
    return reply as number;
  }

  /** Every node with an owner, by id. */
  async list(): Promise<OwnedNode[]> {
    const [districts, gateways] = await Promise.all([
      this.#redis.hgetall(gatewayKeys.nodeDistrict),
      this.#redis.hgetall(gatewayKeys.nodeGateway),
    ]);
    const nodes = new Set([...Object.keys(districts), ...Object.keys(gateways)]);
    return [...nodes].sort().map((node) => ({ node, ...ownership(districts[node], gateways[node]) }));
  }

  #remember(node: string, owner: NodeOwnership, now: number): void {
    if (this.#known.size >= NodeOwners.MAX_REMEMBERED) this.#known.clear();
    this.#known.set(node, { owner, until: now + NodeOwners.REMEMBER_MS });
  }
}

function ownership(district: string | undefined, gateway: string | undefined): NodeOwnership {
  if (district === undefined && gateway === undefined) return NO_OWNER;
  return { ...(district === undefined ? {} : { district }), ...(gateway === undefined ? {} : { gateway }) };
}
