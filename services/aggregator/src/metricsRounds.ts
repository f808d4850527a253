import {
  isoTime,
  metadataHash,
  type NodeWindows,
  nodeSeriesJson,
  type PackedHash,
  packedLatest,
  packedMetrics,
  RANGES,
  type Range,
} from '@streamgauge/core';
import type { NodeKeys, ReadModelWriter } from '@streamgauge/redis';
import { type LiveNode, type LiveState, type ShardState, yieldToLoop } from './liveState.ts';
import type { SystemSums } from './systemSums.ts';

/** A metrics round: the nodes still to write, and for a full round the entries it covers. */
interface Round {
  nodes: string[];
  readonly full: boolean;
  upTo: ReadonlyMap<ShardState, string>;
}

/** The ranges a light round writes: the one a single reading visibly moves. */
const LIGHT_RANGES: readonly Range[] = ['1h'];

/**
 * Nodes a step writes: at ~50–200 µs a node at 100,000 nodes (six windows
 * evaluated and formatted, the 7-day series), a step holds the loop, and
 * the batches behind it, for tens of ms. Steps of 2,000 held them ~100 ms.
 */
export const STEP_NODES = 500;

/**
 * Writes what the fast path left out (metrics for every range, the series,
 * the system metrics) in rounds: a round takes the nodes owed when it
 * starts and the entries committed by then. Nodes changed during a round
 * wait for the next one.
 *
 * Rounds are light or full. A full round writes every range and the series;
 * once all its nodes are written, each shard's watermark advances to the
 * entries it covers. Under load, between full rounds (at most every
 * `longRangesIntervalMs`), light rounds write only the 1-hour metrics: the
 * other ranges and the 7-day series move little with one more reading, and
 * writing them is ~90 % of a node's metrics cost. A quiet stream, an
 * acquisition and a reconcile always end in a full round; the clock's sweep
 * rewrites the ranges that slid for every node itself.
 */
export class MetricsRounds {
  readonly #live: LiveState;
  readonly #sums: SystemSums;
  /** The metrics chunk being written (at most one), and a failure it ended with. */
  #metricsInFlight: Promise<void> = Promise.resolve();
  /** A chunk is sent and not yet written. */
  #sending = false;
  #metricsError: unknown;
  /**
   * Nodes whose metrics and series are behind their state, each once, in
   * the order they fell behind: a node is listed while its `owedIn` is
   * `#owedMark`, and a round takes the list by moving the mark on. Not a
   * Set: every slice owes its nodes, and a Set emptied by each round grew
   * back to all of them (its table reallocated on the way, large enough
   * for the old generation at 10,000 nodes) with a hash probe a node.
   */
  #dirty: string[] = [];
  #owedMark = 1;
  /** Nodes a light round wrote: their long ranges and series are behind their state. */
  readonly #longBehind = new Set<string>();
  /** The metrics round in progress: nodes still to write, and for a full round the entries it covers. */
  #round: Round | undefined;
  /** When the last full round started. */
  #lastFull = Number.NEGATIVE_INFINITY;
  /** Per shard, the entry the keys fully reflect (the watermark). */
  readonly #written = new Map<ShardState, string>();
  #lastFlush = 0;
  /**
   * The last chunk written between batches: when it ended and what it cost
   * (ms of this process). Chunks between batches take at most a quarter of
   * the time, so that under sustained load at many nodes the readings, and
   * `latest`, go first; a round then takes longer (docs/read-model.md).
   */
  #chunkEnded = Number.NEGATIVE_INFINITY;
  #chunkCost = 0;
  /** When a metrics round last wrote the system metrics. */
  #lastSystem = 0;

  constructor(live: LiveState, sums: SystemSums) {
    this.#live = live;
    this.#sums = sums;
  }

  /** A node's metrics and series are behind its state: the next round writes them. */
  owe(node: LiveNode): void {
    if (node.owedIn === this.#owedMark) return;
    node.owedIn = this.#owedMark;
    this.#dirty.push(node.windows.nodeId);
  }

  /** The nodes owed, taken (none is owed any more). */
  #takeDirty(): string[] {
    const nodes = this.#dirty;
    this.#dirty = [];
    this.#owedMark++;
    return nodes;
  }

  /**
   * Whether metrics are due after a batch: a round goes on, or the interval
   * has passed; and the last chunk's cost has been paid back three times over
   * in batch work (metrics get at most a quarter of a busy aggregator).
   */
  due(now: number): boolean {
    if (performance.now() - this.#chunkEnded < 3 * this.#chunkCost) return false;
    return (
      this.#round !== undefined || now - this.#lastFlush >= (this.#live.options.metricsIntervalMs ?? 1000)
    );
  }

  /** Forgets what is owed for a shard's nodes, once they are forgotten (the shard dropped). */
  forgetShard(state: ShardState, ids: readonly string[]): void {
    const gone = new Set(ids);
    this.#dirty = this.#dirty.filter((id) => !gone.has(id));
    for (const id of ids) this.#longBehind.delete(id);
    this.#written.delete(state);
    if (this.#round !== undefined) {
      this.#round.nodes = this.#round.nodes.filter((id) => this.#live.nodes.has(id));
      const upTo = new Map(this.#round.upTo);
      upTo.delete(state);
      this.#round.upTo = upTo;
    }
  }

  /**
   * A call writes at most `limit` nodes of the round, sent on the metrics
   * connection without waiting (unless `wait`), so batches go on meanwhile.
   * One chunk is in flight at a time: while one is, a call writes nothing
   * (the round goes on at a later call), so a batch never waits for Redis
   * here. Without `limit`, the round and anything owed since are written in
   * full, STEP_NODES nodes at a time, yielding in between.
   */
  async flush(options: { limit?: number; wait?: boolean } = {}): Promise<void> {
    const { limit } = options;
    if (limit === undefined) {
      // All of it, a chunk at a time, yielding in between: at 100k nodes
      // writing every one is many seconds of CPU, longer than a lease. The
      // system metrics are summed once, when the round is complete.
      for (;;) {
        await this.idle();
        if (!(await this.step())) break;
        await yieldToLoop();
      }
      if (options.wait !== false) await this.#metricsInFlight;
      if (this.#metricsError !== undefined) throw this.#metricsError;
      return;
    }
    if (this.#sending) return;
    const started = performance.now();
    await this.#flushChunk({ ...options, limit });
    this.#chunkEnded = performance.now();
    this.#chunkCost = this.#chunkEnded - started;
  }

  /**
   * One chunk (STEP_NODES nodes) of what `flush()` writes in full, sent
   * without waiting; true while more is owed. A quiet stream's rewrite goes
   * a step at a time with batches in between (the pipeline calls again once
   * `idle()`): at 100,000 nodes all of it is ~12 s, and readings arriving
   * meanwhile would wait that long for `latest`. While a chunk is in flight
   * it writes nothing: a step holds the loop for its own work only, never
   * for Redis.
   */
  async step(): Promise<boolean> {
    if (this.#sending) return this.owes();
    await this.#flushChunk({ limit: STEP_NODES, wait: false, system: 'end', full: true });
    return this.#round !== undefined || this.#dirty.length > 0 || this.#longBehind.size > 0;
  }

  /** Settles once no chunk is in flight (never rejects: a failure is thrown by the next call). */
  idle(): Promise<void> {
    return this.#metricsInFlight;
  }

  /** Whether a step would write anything: a round going on, nodes owed, or a watermark behind. */
  owes(): boolean {
    return this.#round !== undefined || this.#dirty.length > 0 || this.#longBehind.size > 0 || this.#behind();
  }

  /** A shard's committed position is past the one its keys were last marked written at. */
  #behind(): boolean {
    for (const [state, id] of this.#live.committed) if (this.#written.get(state) !== id) return true;
    return false;
  }

  async #flushChunk(options: {
    limit: number;
    wait?: boolean;
    system?: 'end';
    full?: boolean;
  }): Promise<void> {
    await this.#metricsInFlight;
    if (this.#metricsError !== undefined) throw this.#metricsError;
    const { writer, options: live } = this.#live;
    const now = live.clock.now();
    if (this.#round === undefined && !this.#startRound(now, options.full === true)) return;
    const round = this.#round as Round;
    const ranges = round.full ? RANGES : LIGHT_RANGES;
    const nodes = round.nodes.splice(0, options.limit);
    for (const id of nodes) this.writeNode(id, now, ranges, { series: round.full, identity: false });
    const complete = round.nodes.length === 0;
    if (complete) {
      this.#round = undefined;
      this.#lastFlush = now;
    }
    if (nodes.length > 0) writer.notify({ cause: 'readings', keys: 'all', at: isoTime(now), nodes });
    // Summing is a pass over every node: once per round, or per interval
    // while a long round goes on, never per chunk (at 100k nodes per chunk
    // it was most of the aggregator's time).
    const systemDue =
      complete || (options.system !== 'end' && now - this.#lastSystem >= (live.metricsIntervalMs ?? 1000));
    const sums = nodes.length > 0 && systemDue ? this.#sums.partials(ranges) : undefined;
    if (sums !== undefined) this.#lastSystem = now;
    const written = this.#live
      .persist(() => writer.flush(), 'read model')
      .then(async () => {
        if (sums !== undefined) await this.#sums.write(ranges, now, sums);
        if (complete && round.full) await this.#markWritten(round.upTo);
      });
    const inFlight = written.catch((error: unknown) => {
      this.#metricsError = error;
    });
    this.#metricsInFlight = inFlight;
    this.#sending = true;
    void inFlight.then(() => {
      if (this.#metricsInFlight === inFlight) this.#sending = false;
    });
    if (options.wait !== false) await this.#metricsInFlight;
    if (this.#metricsError !== undefined) throw this.#metricsError;
  }

  /**
   * Starts a round: a full one when asked, or when the long ranges are due,
   * with every node owed anything; otherwise a light one with the nodes
   * changed since the last round. False when there is nothing to write.
   */
  #startRound(now: number, full: boolean): boolean {
    const interval = this.#live.options.longRangesIntervalMs ?? 0;
    if (full || now - this.#lastFull >= interval) {
      if (this.#dirty.length === 0 && this.#longBehind.size === 0 && !this.#behind()) return false;
      const mark = this.#owedMark;
      const nodes = this.#takeDirty();
      for (const id of this.#longBehind) if (this.#live.nodes.get(id)?.owedIn !== mark) nodes.push(id);
      this.#round = { nodes, full: true, upTo: new Map(this.#live.committed) };
      this.#lastFull = now;
      this.#longBehind.clear();
      return true;
    }
    if (this.#dirty.length === 0) return false;
    const nodes = this.#takeDirty();
    for (const id of nodes) this.#longBehind.add(id);
    this.#round = { nodes, full: false, upTo: new Map() };
    return true;
  }

  async #markWritten(upTo: ReadonlyMap<ShardState, string>): Promise<void> {
    for (const [state, id] of upTo) {
      if (this.#written.get(state) === id || !this.#live.holds(state)) continue;
      await this.#live.persist(() => state.store.markWritten(id), 'watermark');
      this.#written.set(state, id);
    }
  }

  /** Queues a node's keys on the metrics connection: metrics for `ranges`, and the series and identity if asked. */
  writeNode(
    id: string,
    now: number,
    ranges: readonly Range[],
    parts: { series: boolean; identity: boolean },
  ): void {
    const node = this.#live.nodes.get(id);
    if (node === undefined) return;
    const { windows } = node;
    const metrics = new Map<Range, PackedHash>();
    for (const range of ranges) {
      const summary = windows.evaluate(range, now);
      metrics.set(range, packedMetrics(summary, now));
      this.#sums.contribute(id, range, summary);
    }
    const keys: NodeKeys = {
      nodeId: id,
      metrics,
      ...(parts.identity && identityOf(id, windows)),
      ...(parts.series && { timeseries: nodeSeriesJson(windows, now) }),
    };
    this.#live.writer.writeNode(keys);
  }

  /** Queues a node's `latest` and metadata (renewing their TTL) on `writer`. */
  writeIdentity(id: string, writer: ReadModelWriter): void {
    const node = this.#live.nodes.get(id);
    if (node !== undefined)
      writer.writeNode({ nodeId: id, metrics: NO_METRICS, ...identityOf(id, node.windows) });
  }
}

const NO_METRICS: ReadonlyMap<Range, PackedHash> = new Map();

/** A node's `latest` (once it has a reading) and metadata hashes. */
function identityOf(id: string, windows: NodeWindows): Pick<NodeKeys, 'latest' | 'metadata'> {
  // A record made when asked: once.
  const latest = windows.latest;
  return {
    ...(latest !== undefined && { latest: packedLatest(latest) }),
    metadata: metadataHash(id, windows.metadata),
  };
}
