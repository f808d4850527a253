import {
  type LatestValues,
  type NodeBackfill,
  type NodeMetadata,
  type Reading,
  reconcileKeys,
  type ShardKeys,
} from '@streamgauge/core';
import { sendBatchOrThrow } from '../batch.ts';
import type { RedisClient } from '../connection.ts';
import type { CutMark } from '../log/streamPosition.ts';
import { runScript } from '../scripts.ts';

/**
 * What a run covers when it is not the whole live state (`streamgauge
 * rebuild --nodes --since`): only these nodes, only panes from `since`
 * (event time, on an hour boundary, so every pane size divides it) on.
 */
export interface ReconcileScope {
  readonly nodes?: readonly string[];
  readonly since?: number;
}

/**
 * A backfill run's result for one shard, offered to the aggregator that
 * holds the shard. `cut` is the stream position the warehouse was read up
 * to: the aggregator replays its stream after the cut onto these panes.
 */
export interface Offer extends CutMark {
  readonly run: string;
  /** When the panes were computed (ms). */
  readonly at: number;
  readonly nodes: readonly string[];
  /** Absent: every node, every pane the live windows keep. */
  readonly scope?: ReconcileScope;
  /**
   * How many nodes the backfill compared with the persisted state and left
   * out because they matched: `nodes` then lists only those that differ,
   * and the rest are left as they are. Absent: `nodes` is every node.
   */
  readonly matched?: number;
}

/** A shard's report of how it applied a run. */
export interface ShardReconcileReport {
  readonly shard: number;
  readonly nodes: number;
  readonly created: number;
  readonly panesCompared: number;
  readonly panesChanged: number;
  /** Largest absolute difference found, per metric (readings count, each measurement's mean, min, max). */
  readonly drift: Record<string, number>;
  /** Stream entries after the cut replayed onto the warehouse's panes. */
  readonly tailEntries: number;
  /**
   * Why the shard did not apply the panes (entries after the cut were
   * trimmed from the stream, or the run's payload was gone); nothing changed.
   */
  readonly skipped?: string;
  readonly appliedAt: number;
}

const NODES_PER_CALL = 50;

/**
 * The handover of backfilled panes from the warehouse side (the backfill,
 * which runs where the warehouse is open) to the aggregators (which hold
 * the live state): per shard, a payload hash and an offer that points to
 * it. A new run replaces the offer; the aggregator removes it once applied.
 */
export class ReconcileOffers {
  readonly #redis: RedisClient;

  constructor(redis: RedisClient) {
    this.#redis = redis;
  }

  /** Writes a shard's payload, then the offer (so an offer never points to a partial payload). */
  async publish(
    shard: ShardKeys,
    offer: Offer,
    nodes: Iterable<NodeBackfill>,
    ttlSeconds: number,
  ): Promise<number> {
    const key = shard.reconcile.payload(offer.run);
    let bytes = 0;
    let chunk: (string | Buffer)[] = [];
    const flush = async () => {
      if (chunk.length === 0) return;
      const fields = chunk;
      chunk = [];
      await sendBatchOrThrow(this.#redis, (batch) => {
        batch.hset(key, ...fields);
        batch.expire(key, ttlSeconds);
      });
    };
    for (const node of nodes) {
      const encoded = encodeNode(node);
      bytes += encoded.length;
      chunk.push(node.nodeId, encoded);
      if (chunk.length >= NODES_PER_CALL * 2) await flush();
    }
    await flush();
    // The previous run's payload is left to its TTL: an aggregator may be reading it.
    await sendBatchOrThrow(this.#redis, (batch) => {
      batch.del(shard.reconcile.offer);
      batch.hset(shard.reconcile.offer, {
        run: offer.run,
        cut: offer.cut,
        added: String(offer.added),
        after: String(offer.after),
        removed: String(offer.removed ?? 0),
        at: String(offer.at),
        nodes: JSON.stringify(offer.nodes),
        ...(offer.scope !== undefined && { scope: JSON.stringify(offer.scope) }),
        ...(offer.matched !== undefined && { matched: String(offer.matched) }),
      });
      batch.expire(shard.reconcile.offer, ttlSeconds);
    });
    return bytes;
  }

  async current(shard: ShardKeys): Promise<Offer | undefined> {
    const raw = await this.#redis.hgetall(shard.reconcile.offer);
    if (raw.run === undefined || raw.cut === undefined || raw.nodes === undefined) return undefined;
    return {
      run: raw.run,
      cut: raw.cut,
      added: Number(raw.added ?? 0),
      after: Number(raw.after ?? 0),
      removed: Number(raw.removed ?? 0),
      at: Number(raw.at),
      nodes: JSON.parse(raw.nodes) as string[],
      ...(raw.scope !== undefined && { scope: JSON.parse(raw.scope) as ReconcileScope }),
      ...(raw.matched !== undefined && { matched: Number(raw.matched) }),
    };
  }

  /**
   * `count` of the offer's nodes from `from` (a payload can be larger than
   * one reply should be). Throws PayloadGoneError when the payload expired
   * or was evicted.
   */
  async payload(shard: ShardKeys, offer: Offer, from: number, count: number): Promise<NodeBackfill[]> {
    const key = shard.reconcile.payload(offer.run);
    const ids = offer.nodes.slice(from, from + count);
    if (ids.length === 0) return [];
    const values = await this.#redis.hmgetBuffer(key, ...ids);
    return values.map((value, j) => {
      if (value === null) {
        throw new PayloadGoneError(
          `the payload of backfill ${offer.run} is gone from ${key} (expired or evicted)`,
        );
      }
      return decodeNode(ids[j] as string, value);
    });
  }

  /** Removes the offer (unless a newer run replaced it) and the run's payload. */
  async take(shard: ShardKeys, run: string): Promise<boolean> {
    const taken = await runScript(
      this.#redis,
      'takeReconcileOffer',
      [shard.reconcile.offer, shard.reconcile.payload(run)],
      [run],
    );
    return taken === 1;
  }

  async report(run: string, report: ShardReconcileReport, ttlSeconds: number): Promise<void> {
    const key = reconcileKeys.reports(run);
    await sendBatchOrThrow(this.#redis, (batch) => {
      batch.hset(key, String(report.shard), JSON.stringify(report));
      batch.expire(key, ttlSeconds);
    });
  }

  async reports(run: string): Promise<ShardReconcileReport[]> {
    const raw = await this.#redis.hgetall(reconcileKeys.reports(run));
    return Object.values(raw).map((json) => JSON.parse(json) as ShardReconcileReport);
  }
}

/** `[json length u32][json: latest, metadata][panes, doubles little-endian]`. */
function encodeNode(node: NodeBackfill): Buffer {
  const json = Buffer.from(
    JSON.stringify({ latest: node.latest ?? null, metadata: node.metadata, readings: node.readings }),
    'utf8',
  );
  const buffer = Buffer.allocUnsafe(4 + json.length + node.panes.length * 8);
  buffer.writeUInt32LE(json.length, 0);
  json.copy(buffer, 4);
  Buffer.from(node.panes.buffer, node.panes.byteOffset, node.panes.length * 8).copy(buffer, 4 + json.length);
  return buffer;
}

function decodeNode(nodeId: string, buffer: Buffer): NodeBackfill {
  const length = buffer.readUInt32LE(0);
  const { latest, metadata, readings } = JSON.parse(buffer.toString('utf8', 4, 4 + length)) as {
    latest: LatestValues | null;
    metadata: NodeMetadata;
    readings: Reading[];
  };
  // Copied out: the pane bytes need not be 8-byte aligned within the reply.
  const start = 4 + length;
  const panes = new Float64Array((buffer.length - start) / 8);
  for (let i = 0; i < panes.length; i++) panes[i] = buffer.readDoubleLE(start + i * 8);
  return { nodeId, panes, metadata, readings, ...(latest !== null && { latest }) };
}

export class PayloadGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PayloadGoneError';
  }
}
