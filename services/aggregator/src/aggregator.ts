import {
  type Clock,
  contributionOf,
  isoTime,
  latestHash,
  metadataHash,
  metricsHash,
  type NodeContribution,
  NodeWindows,
  RANGES,
  type Range,
  type ShardKeys,
  systemMetricsHash,
  timeseriesJson,
  windowBounds,
} from '@streamgauge/core';
import {
  type AggregateStore,
  type DeliveredBatch,
  isUnavailable,
  type NodeKeys,
  type ReadModelWriter,
} from '@streamgauge/redis';
import type { Logger } from 'pino';

export interface AggregatorOptions {
  readonly group: string;
  /** How far ahead of the clock a reading's event time may be and still count. */
  readonly aheadMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * Metrics, series and system metrics are written at most this often (each
   * node once, however many readings it received meanwhile), and whenever
   * the stream goes quiet. `latest` is written after every batch.
   */
  readonly metricsIntervalMs?: number;
}

export interface ShardState {
  readonly shard: ShardKeys;
  readonly store: AggregateStore;
}

const NO_METRICS: ReadonlyMap<Range, Record<string, string>> = new Map();

/** Nodes whose metrics are prepared between two batches (~100 µs each): bounds the pause a batch sees. */
const FLUSH_CHUNK = 100;

export interface BatchOutcome {
  readonly entries: number;
  readonly readings: number;
  readonly applied: number;
  readonly tooLate: number;
  readonly tooEarly: number;
  readonly dead: number;
  readonly nodes: number;
}

/** Counters kept per shard in Redis (see `streamgauge status`). */
type Counters = {
  entries: number;
  readings: number;
  applied: number;
  too_late: number;
  too_early: number;
  dead: number;
};

/**
 * The live windows of every node of the shards this process owns, and what
 * turns them into the dashboard's keys. Batches and clock ticks are applied
 * one at a time (the pipeline serialises them).
 *
 * Per batch: apply readings to panes; write the changed nodes' `latest` (and
 * metadata, and `nodes:all` for new nodes), which is cheap, so freshness does
 * not depend on how much else changed; then commit the changed state and XACK
 * the entries atomically per shard (exactly-once effect: see AggregateStore).
 * Metrics, series and system metrics cost far more per node and are written
 * at most every `metricsIntervalMs`, and when the stream goes quiet; after such
 * a full write the shard's watermark (`agg:{tag}:written`) records the last
 * entry whose effects are in every key.
 *
 * Keys are overwrites derived from state, so a crash at any point is repaired
 * by re-delivery (uncommitted entries are applied again to state that lacks
 * them) and by the restart, which rewrites every key from the committed state.
 */
export class Aggregator {
  readonly #shards: ReadonlyMap<string, ShardState>;
  /** `latest` after each batch; metrics, series and system metrics, on their own connection. */
  readonly #latestWriter: ReadModelWriter;
  readonly #writer: ReadModelWriter;
  /** The metrics chunk being written (at most one), and a failure it ended with. */
  #metricsInFlight: Promise<void> = Promise.resolve();
  #metricsError: unknown;
  readonly #options: AggregatorOptions;
  readonly #nodes = new Map<string, { windows: NodeWindows; shard: ShardState }>();
  readonly #contributions = new Map<Range, Map<string, NodeContribution>>(RANGES.map((r) => [r, new Map()]));
  readonly #evaluatedPane = new Map<Range, number>();
  /** Nodes whose metrics and series are behind their state. */
  readonly #dirty = new Set<string>();
  /** The metrics round in progress: nodes still to write, and the entries it covers. */
  #round: { nodes: string[]; upTo: ReadonlyMap<ShardState, string> } | undefined;
  /** Per shard, the last committed entry, and the one the keys fully reflect (the watermark). */
  readonly #committed = new Map<ShardState, string>();
  readonly #written = new Map<ShardState, string>();
  #lastFlush = 0;
  #stopping = false;

  constructor(
    shards: readonly ShardState[],
    writers: { readonly latest: ReadModelWriter; readonly metrics: ReadModelWriter },
    options: AggregatorOptions,
  ) {
    this.#shards = new Map(shards.map((s) => [s.shard.stream, s]));
    this.#latestWriter = writers.latest;
    this.#writer = writers.metrics;
    this.#options = options;
  }

  get nodeCount(): number {
    return this.#nodes.size;
  }

  /** Loads the persisted state and rewrites every key from it (they may have expired meanwhile). */
  async start(): Promise<void> {
    for (const state of this.#shards.values()) {
      const loaded = await state.store.load(this.#options.aheadMs);
      for (const [id, windows] of loaded) this.#nodes.set(id, { windows, shard: state });
    }
    this.#options.logger.info({ nodes: this.#nodes.size }, 'aggregator state loaded');
    this.#evaluatedPane.clear();
    await this.tick(true);
    // Every key now reflects the committed state: everything the group acknowledged.
    for (const state of this.#shards.values()) {
      const delivered = await state.store.lastDelivered(this.#options.group);
      if (delivered !== undefined) this.#committed.set(state, delivered);
    }
    await this.#markWritten(this.#committed);
  }

  /** Stops retrying failed writes (a stop while Redis is away leaves the batch pending). */
  stop(): void {
    this.#stopping = true;
  }

  /**
   * An empty batch list (the stream is quiet) writes the metrics still owed.
   */
  async apply(batches: readonly DeliveredBatch[]): Promise<BatchOutcome> {
    const outcome = { entries: 0, readings: 0, applied: 0, tooLate: 0, tooEarly: 0, dead: 0, nodes: 0 };
    if (batches.length === 0) {
      await this.flush({ wait: false });
      return outcome;
    }
    const now = this.#options.clock.now();
    const changed = new Set<string>();
    const perShard = new Map<
      ShardState,
      { ids: string[]; added: string[]; dead: { id: string; error: string }[]; counters: Counters }
    >();

    for (const batch of batches) {
      const state = this.#shards.get(batch.shard.stream);
      if (state === undefined) continue;
      let shardWork = perShard.get(state);
      if (shardWork === undefined) {
        shardWork = {
          ids: [],
          added: [],
          dead: [],
          counters: { entries: 0, readings: 0, applied: 0, too_late: 0, too_early: 0, dead: 0 },
        };
        perShard.set(state, shardWork);
      }
      const counters = shardWork.counters;
      for (const entry of batch.entries) {
        shardWork.ids.push(entry.id);
        counters.entries++;
        if ('error' in entry) {
          shardWork.dead.push(entry);
          counters.dead++;
          this.#options.logger.error(
            { stream: batch.shard.stream, id: entry.id, error: entry.error },
            'entry dead-lettered',
          );
          continue;
        }
        for (const reading of entry.readings) {
          counters.readings++;
          let node = this.#nodes.get(reading.node_id);
          if (node === undefined) {
            node = { windows: new NodeWindows(reading.node_id, this.#options.aheadMs), shard: state };
            this.#nodes.set(reading.node_id, node);
            shardWork.added.push(reading.node_id);
          }
          const result = node.windows.add(reading, now);
          if (result === 'applied') {
            counters.applied++;
            changed.add(reading.node_id);
          } else if (result === 'too_late') {
            counters.too_late++;
          } else {
            counters.too_early++;
          }
        }
      }
    }

    // A node created by readings that were all too late or too early has
    // nothing to show: it is not kept or listed until one of its readings counts.
    const added: string[] = [];
    for (const work of perShard.values()) {
      work.added = work.added.filter((id) => {
        if (changed.has(id)) return true;
        this.#nodes.delete(id);
        return false;
      });
      added.push(...work.added);
    }

    // The fast path: latest values (and metadata, when it changed) right away.
    for (const id of changed) {
      const windows = this.#nodes.get(id)?.windows;
      if (windows === undefined) continue;
      this.#latestWriter.writeNode({
        nodeId: id,
        metrics: NO_METRICS,
        ...(windows.latest !== undefined && { latest: latestHash(windows.latest) }),
        ...(windows.latestChanged && { metadata: metadataHash(id, windows.metadata) }),
      });
      this.#dirty.add(id);
    }
    this.#latestWriter.listNodes(added);
    this.#latestWriter.notify({ cause: 'readings', keys: 'latest', at: isoTime(now), nodes: [...changed] });
    await this.#persist(() => this.#latestWriter.flush(), 'read model');

    for (const [state, work] of perShard) {
      const changedHere = [...changed].flatMap((id) => {
        const node = this.#nodes.get(id);
        return node && node.shard === state ? [node.windows] : [];
      });
      const commit = state.store.prepare({
        changed: changedHere,
        added: work.added,
        removed: [],
        group: this.#options.group,
        ackIds: work.ids,
        deadLetters: work.dead,
        counters: work.counters,
      });
      await this.#persist(commit, 'state');
      const last = work.ids[work.ids.length - 1];
      if (last !== undefined) this.#committed.set(state, last);
      outcome.entries += work.counters.entries;
      outcome.readings += work.counters.readings;
      outcome.applied += work.counters.applied;
      outcome.tooLate += work.counters.too_late;
      outcome.tooEarly += work.counters.too_early;
      outcome.dead += work.counters.dead;
    }
    // Metrics when due (in chunks, between batches); otherwise they wait for
    // the interval or a quiet stream.
    if (this.#round !== undefined || now - this.#lastFlush >= (this.#options.metricsIntervalMs ?? 1000)) {
      await this.flush({ limit: FLUSH_CHUNK, wait: false });
    }
    outcome.nodes = changed.size;
    return outcome;
  }

  /**
   * Writes what the fast path left out (metrics for every range, the series,
   * the system metrics) in rounds: a round takes the nodes owed when it
   * starts and the entries committed by then; once all its nodes are written,
   * each shard's watermark advances to those entries. Nodes changed during a
   * round wait for the next one.
   *
   * A call writes at most `limit` nodes of the round, sent on the metrics
   * connection without waiting (unless `wait`), so batches go on meanwhile.
   * One chunk is in flight at a time; the next call waits for it, so writes of
   * a node never overtake each other.
   */
  async flush(options: { limit?: number; wait?: boolean } = {}): Promise<void> {
    await this.#metricsInFlight;
    if (this.#metricsError !== undefined) throw this.#metricsError;
    const now = this.#options.clock.now();
    if (this.#round === undefined) {
      const behind = [...this.#committed].some(([state, id]) => this.#written.get(state) !== id);
      if (this.#dirty.size === 0 && !behind) return;
      this.#round = { nodes: [...this.#dirty], upTo: new Map(this.#committed) };
      this.#dirty.clear();
    }
    const round = this.#round;
    const nodes = round.nodes.splice(0, options.limit ?? round.nodes.length);
    for (const id of nodes) this.#writeNode(id, now, RANGES, { series: true, identity: false });
    const complete = round.nodes.length === 0;
    if (complete) {
      this.#round = undefined;
      this.#lastFlush = now;
    }
    if (nodes.length > 0) {
      this.#writeSystem(RANGES, now);
      this.#writer.notify({ cause: 'readings', keys: 'all', at: isoTime(now), nodes });
    }
    const written = this.#persist(() => this.#writer.flush(), 'read model').then(async () => {
      if (complete) await this.#markWritten(round.upTo);
    });
    this.#metricsInFlight = written.catch((error: unknown) => {
      this.#metricsError = error;
    });
    if (options.wait !== false) await this.#metricsInFlight;
    if (this.#metricsError !== undefined) throw this.#metricsError;
    // A full flush finishes the round it is in, and anything owed since.
    if (options.limit === undefined && this.#dirty.size > 0) await this.flush(options);
  }

  async #markWritten(upTo: ReadonlyMap<ShardState, string>): Promise<void> {
    for (const [state, id] of upTo) {
      if (this.#written.get(state) === id) continue;
      await this.#persist(() => state.store.markWritten(id), 'watermark');
      this.#written.set(state, id);
    }
  }

  /**
   * Slides the windows with the clock: re-evaluates, for every node, the
   * ranges whose current pane changed since they were last evaluated, so a
   * silent node's metrics empty out with no reading arriving. Hourly, nodes
   * with nothing left in any window are forgotten.
   */
  async tick(all = false): Promise<Range[]> {
    const now = this.#options.clock.now();
    const due = RANGES.filter((r) => all || this.#evaluatedPane.get(r) !== windowBounds(r, now).last);
    if (due.length === 0) return due;
    for (const r of due) this.#evaluatedPane.set(r, windowBounds(r, now).last);
    // Pending key writes go first, so the tick's writes are the newest.
    await this.flush();
    const hourly = due.includes('30d');
    const forgotten = new Map<ShardState, string[]>();
    for (const [id, node] of this.#nodes) {
      if (hourly && node.windows.isSilent(now)) {
        this.#forget(id);
        forgotten.set(node.shard, [...(forgotten.get(node.shard) ?? []), id]);
        continue;
      }
      // Hourly, latest and metadata are rewritten too, which renews their TTL.
      this.#writeNode(id, now, due, { series: due.includes('7d'), identity: hourly });
    }
    // Hourly (and at start) every node is listed again: cheap, and it repairs a
    // `nodes:all` that expired or was deleted.
    if (all || hourly) this.#writer.listNodes(this.#nodes.keys());
    this.#writeSystem(due, now);
    this.#writer.notify({ cause: 'clock', at: isoTime(now), ranges: due });
    const removed = [...forgotten.values()].flat();
    if (removed.length > 0) {
      this.#writer.unlistNodes(removed);
      this.#options.logger.info({ nodes: removed.length }, 'forgot nodes silent for 30 days');
    }
    await this.#persist(() => this.#writer.flush(), 'read model');
    for (const [state, ids] of forgotten) {
      const commit = state.store.prepare({
        changed: [],
        added: [],
        removed: ids,
        group: this.#options.group,
        ackIds: [],
        deadLetters: [],
        counters: {},
      });
      await this.#persist(commit, 'state');
    }
    return due;
  }

  #writeNode(
    id: string,
    now: number,
    ranges: readonly Range[],
    parts: { series: boolean; identity: boolean },
  ): void {
    const node = this.#nodes.get(id);
    if (node === undefined) return;
    const { windows } = node;
    const metrics = new Map<Range, Record<string, string>>();
    for (const range of ranges) {
      const summary = windows.evaluate(range, now);
      metrics.set(range, metricsHash(summary, now));
      this.#contributions.get(range)?.set(id, contributionOf(summary));
    }
    const keys: NodeKeys = {
      nodeId: id,
      metrics,
      ...(parts.identity && windows.latest !== undefined && { latest: latestHash(windows.latest) }),
      ...(parts.identity && { metadata: metadataHash(id, windows.metadata) }),
      ...(parts.series && { timeseries: timeseriesJson(windows.hourlySeries(now)) }),
    };
    this.#writer.writeNode(keys);
  }

  #writeSystem(ranges: readonly Range[], now: number): void {
    for (const range of ranges) {
      this.#writer.writeSystem(range, systemMetricsHash(this.#contributions.get(range)?.values() ?? [], now));
    }
  }

  #forget(id: string): void {
    this.#nodes.delete(id);
    for (const map of this.#contributions.values()) map.delete(id);
  }

  /**
   * Retries a write until Redis takes it. The in-memory state already holds
   * the batch, so skipping the write would let memory and Redis disagree.
   * Only unavailability is retried: any other failure cannot succeed by
   * waiting, and ends the pipeline loudly (a restart rebuilds from Redis).
   */
  async #persist(write: () => Promise<void>, what: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await write();
        return;
      } catch (error) {
        if (this.#stopping || !isUnavailable(error)) throw error;
        this.#options.logger.warn({ err: error, attempt }, `writing the ${what} failed; retrying`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2_000)));
      }
    }
  }
}
