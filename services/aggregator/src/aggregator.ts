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
import type { AggregateStore, DeliveredBatch, NodeKeys, ReadModelWriter } from '@streamgauge/redis';
import type { Logger } from 'pino';

export interface AggregatorOptions {
  readonly group: string;
  /** How far ahead of the clock a reading's event time may be and still count. */
  readonly aheadMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * While the group is behind, the dashboard's keys are written at most this
   * often (each node once, whatever it received meanwhile); once caught up,
   * after every batch.
   */
  readonly flushIntervalMs?: number;
}

export interface ShardState {
  readonly shard: ShardKeys;
  readonly store: AggregateStore;
}

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
 * Per batch: apply readings to panes, write the keys of the changed nodes,
 * then commit the changed state and XACK the entries atomically per shard
 * (exactly-once effect: see AggregateStore). While the group is behind, key
 * writes are coalesced: made at most every `flushIntervalMs`, each node once
 * however many batches touched it. Keys are overwrites derived from state, so
 * a crash at any point is repaired by re-delivery (uncommitted entries are
 * applied again to state that lacks them) and by the restart, which rewrites
 * every key from the committed state (`start()`).
 */
export class Aggregator {
  readonly #shards: ReadonlyMap<string, ShardState>;
  readonly #writer: ReadModelWriter;
  readonly #options: AggregatorOptions;
  readonly #nodes = new Map<string, { windows: NodeWindows; shard: ShardState }>();
  readonly #contributions = new Map<Range, Map<string, NodeContribution>>(RANGES.map((r) => [r, new Map()]));
  readonly #evaluatedPane = new Map<Range, number>();
  /** Nodes whose keys are behind their state, and those whose latest values or metadata are. */
  readonly #dirty = new Set<string>();
  readonly #dirtyIdentity = new Set<string>();
  #unlisted: string[] = [];
  #lastFlush = 0;
  #stopping = false;

  constructor(shards: readonly ShardState[], writer: ReadModelWriter, options: AggregatorOptions) {
    this.#shards = new Map(shards.map((s) => [s.shard.stream, s]));
    this.#writer = writer;
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
  }

  /** Stops retrying failed writes (a stop while Redis is away leaves the batch pending). */
  stop(): void {
    this.#stopping = true;
  }

  /**
   * @param caughtUp whether the read returned everything there was (the
   *   stream holds no more for now): then the keys are written at once.
   */
  async apply(batches: readonly DeliveredBatch[], caughtUp = true): Promise<BatchOutcome> {
    const outcome = { entries: 0, readings: 0, applied: 0, tooLate: 0, tooEarly: 0, dead: 0, nodes: 0 };
    if (batches.length === 0) {
      if (this.#dirty.size > 0) await this.flush();
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
    for (const work of perShard.values()) {
      work.added = work.added.filter((id) => {
        if (changed.has(id)) return true;
        this.#nodes.delete(id);
        return false;
      });
      this.#unlisted.push(...work.added);
    }
    for (const id of changed) {
      this.#dirty.add(id);
      if (this.#nodes.get(id)?.windows.latestChanged) this.#dirtyIdentity.add(id);
    }
    // Caught up, the keys are written before the entries are acknowledged, so
    // a drained group means written keys. Behind, they wait for a later flush.
    if (caughtUp || now - this.#lastFlush >= (this.#options.flushIntervalMs ?? 250)) await this.flush();
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
      outcome.entries += work.counters.entries;
      outcome.readings += work.counters.readings;
      outcome.applied += work.counters.applied;
      outcome.tooLate += work.counters.too_late;
      outcome.tooEarly += work.counters.too_early;
      outcome.dead += work.counters.dead;
    }
    outcome.nodes = changed.size;
    return outcome;
  }

  /** Writes the keys of every node changed since the last flush, and the system metrics. */
  async flush(): Promise<void> {
    const now = this.#options.clock.now();
    this.#lastFlush = now;
    if (this.#dirty.size === 0 && this.#unlisted.length === 0) return;
    const nodes = [...this.#dirty];
    for (const id of nodes) {
      this.#writeNode(id, now, RANGES, { series: true, identity: this.#dirtyIdentity.has(id) });
    }
    this.#dirty.clear();
    this.#dirtyIdentity.clear();
    this.#writer.listNodes(this.#unlisted);
    this.#unlisted = [];
    this.#writeSystem(RANGES, now);
    this.#writer.notify({ cause: 'readings', at: isoTime(now), nodes });
    await this.#persist(() => this.#writer.flush(), 'read model');
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
    if (all) this.#writer.listNodes(this.#nodes.keys());
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
   */
  async #persist(write: () => Promise<void>, what: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await write();
        return;
      } catch (error) {
        if (this.#stopping) throw error;
        this.#options.logger.warn({ err: error, attempt }, `writing the ${what} failed; retrying`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2_000)));
      }
    }
  }
}
