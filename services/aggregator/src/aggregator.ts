import {
  type AnomalyEvent,
  type AnomalySettings,
  addToSums,
  type Clock,
  compareEntryIds,
  contributionOf,
  EMPTY_SUMS,
  isoTime,
  latestHash,
  metadataHash,
  metricsHash,
  type NodeContribution,
  NodeDetector,
  NodeWindows,
  type PersistedDetectorState,
  RANGES,
  type Range,
  type Reading,
  reconcileNode,
  type ShardKeys,
  type SystemSums,
  systemMetricsHash,
  timeseriesJson,
  windowBounds,
  windowsFromPanes,
} from '@streamgauge/core';
import {
  type AggregateStore,
  type DeadLetter,
  type DeliveredBatch,
  type DeliveredEntry,
  exhausted,
  isUnavailable,
  LeaseLostError,
  type NodeKeys,
  type Offer,
  PayloadGoneError,
  type ReadModelWriter,
  type ReconcileOffers,
  type ShardReconcileReport,
  type Triage,
  triage,
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
  /** STREAM_SHARDS: how many shards the system sums are split over. */
  readonly shardCount: number;
  /** An entry that failed this many deliveries is dead-lettered. */
  readonly maxDeliveries: number;
  /**
   * AGGREGATOR_SLICE_READINGS: a delivered batch is applied and committed in
   * slices of at most this many readings (an entry larger than this is a
   * slice of its own), yielding between them, so that no batch outlives the
   * shard's lease. Default: no limit.
   */
  readonly sliceReadings?: number;
  /** Called when a commit finds the shard's lease held by another replica (the shard is already dropped). */
  readonly onLeaseLost?: (shard: ShardKeys) => void;
  /** The anomaly detectors' settings (ANOMALY_*). */
  readonly anomalies: AnomalySettings;
  /** Where backfill runs offer their panes (see `reconcile`). */
  readonly offers?: ReconcileOffers;
  /** How long a shard's reconcile report is kept, seconds. */
  readonly reportTtlSeconds?: number;
  /** After a batch's `latest` keys are written: the nodes written, and each one's latest event time (metrics). */
  readonly onLatestWritten?: (
    nodes: ReadonlySet<string>,
    eventTime: (node: string) => number | undefined,
  ) => void;
}

/** One node's live state: its windows and its anomaly detectors, and the shard it belongs to. */
interface LiveNode {
  readonly windows: NodeWindows;
  readonly detector: NodeDetector;
  readonly shard: ShardState;
}

/** A shard this replica holds: one object per acquisition, so work from an earlier one is recognised. */
export interface ShardState {
  readonly shard: ShardKeys;
  readonly store: AggregateStore;
}

const NO_METRICS: ReadonlyMap<Range, Record<string, string>> = new Map();

/** Nodes whose metrics are prepared between two batches (~100 µs each): bounds the pause a batch sees. */
const FLUSH_CHUNK = 100;

/** Nodes of a backfill run loaded, and committed, at a time (a node's panes are ~190 KB). */
const RECONCILE_CHUNK = 50;

/**
 * Nodes whose keys a clock tick or an acquisition rewrites before it yields
 * to the event loop (timers, I/O: the leases' renewal): at 100k nodes a full
 * rewrite is seconds of CPU, longer than a lease.
 */
const NODE_CHUNK = 2_000;

/**
 * Readings a slice applies before it yields to the event loop: a reading that
 * creates a node costs far more than one that updates it (a few hundred µs),
 * so a slice of new nodes' readings would otherwise hold the loop for seconds.
 */
const APPLY_CHUNK = 500;

/** Lets timers and I/O run (the lease's renewal, a lost lease noticed) before going on. */
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface BatchOutcome {
  readonly entries: number;
  readonly readings: number;
  readonly applied: number;
  readonly tooLate: number;
  readonly tooEarly: number;
  readonly dead: number;
  /** Entries that failed and stay pending, to be delivered again. */
  readonly failed: number;
  /** Entries delivered again that the state already held (a replay): acknowledged, not applied. */
  readonly replayed: number;
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
  failed: number;
  /** Entries delivered more than once (claimed after a crash, or retried after failing). */
  redelivered: number;
  /** Entries at or below the applied mark, delivered again (a replay): not applied twice. */
  replayed: number;
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
  /** The shards this replica holds, by stream. */
  readonly #shards = new Map<string, ShardState>();
  /** `latest` after each batch; metrics, series and system metrics, on their own connection. */
  readonly #latestWriter: ReadModelWriter;
  readonly #writer: ReadModelWriter;
  /** The metrics chunk being written (at most one), and a failure it ended with. */
  #metricsInFlight: Promise<void> = Promise.resolve();
  #metricsError: unknown;
  readonly #options: AggregatorOptions;
  readonly #nodes = new Map<string, LiveNode>();
  readonly #contributions = new Map<Range, Map<string, NodeContribution>>(RANGES.map((r) => [r, new Map()]));
  readonly #evaluatedPane = new Map<Range, number>();
  /** Nodes whose metrics and series are behind their state. */
  readonly #dirty = new Set<string>();
  /** The metrics round in progress: nodes still to write, and the entries it covers. */
  #round: { nodes: string[]; upTo: ReadonlyMap<ShardState, string> } | undefined;
  /** Per shard, the last committed entry, and the one the keys fully reflect (the watermark). */
  readonly #committed = new Map<ShardState, string>();
  readonly #written = new Map<ShardState, string>();
  /** Per shard, the highest entry id its state holds (the applied mark, as committed). */
  readonly #applied = new Map<ShardState, string>();
  #lastFlush = 0;
  /** When a metrics round last wrote the system metrics. */
  #lastSystem = 0;
  #stopping = false;

  constructor(
    writers: { readonly latest: ReadModelWriter; readonly metrics: ReadModelWriter },
    options: AggregatorOptions,
  ) {
    this.#latestWriter = writers.latest;
    this.#writer = writers.metrics;
    this.#options = options;
  }

  get nodeCount(): number {
    return this.#nodes.size;
  }

  /** The anomalies open now on the nodes this replica holds, by type (metrics). */
  openAnomalies(): Map<string, number> {
    const open = new Map<string, number>();
    for (const { detector } of this.#nodes.values()) {
      for (const anomaly of detector.open) open.set(anomaly.type, (open.get(anomaly.type) ?? 0) + 1);
    }
    return open;
  }

  get shards(): ShardState[] {
    return [...this.#shards.values()];
  }

  /** Whether `state` is the current acquisition of its shard (work of an earlier one is dropped). */
  holds(state: ShardState): boolean {
    return this.#shards.get(state.shard.stream) === state;
  }

  /**
   * Takes over a shard: loads its persisted state and rewrites its nodes'
   * keys from it (they may have expired meanwhile, or been written by a
   * replica that died before committing).
   */
  async acquire(state: ShardState): Promise<void> {
    const [loaded, applied] = await this.#persist(
      () => Promise.all([state.store.load(this.#options.aheadMs), state.store.appliedThrough()]),
      'state (loading)',
    );
    this.#shards.set(state.shard.stream, state);
    if (applied !== undefined) this.#applied.set(state, applied);
    else if (loaded.size > 0) {
      // State persisted before the applied mark existed: an empty commit sets
      // it from the group's position, as every commit does.
      const empty = { changed: [], added: [], removed: [], ackIds: [], deadLetters: [], failures: [] };
      const prepared = state.store.prepare({ ...empty, group: this.#options.group, counters: {} });
      if (!(await this.#commit(state, prepared))) return;
    }
    const now = this.#options.clock.now();
    const nodes = [...loaded];
    for (let from = 0; from < nodes.length; from += NODE_CHUNK) {
      if (from > 0) {
        // A chunk at a time, each written out before the next, yielding in
        // between: a lease lost meanwhile stops the acquisition (the drop
        // took the nodes loaded so far).
        await this.#persist(() => this.#writer.flush(), 'read model');
        await yieldToLoop();
        if (!this.holds(state)) {
          this.#options.logger.warn({ stream: state.shard.stream }, 'shard lost while it was being acquired');
          return;
        }
      }
      for (const [id, { windows, detector }] of nodes.slice(from, from + NODE_CHUNK)) {
        this.#nodes.set(id, { windows, shard: state, detector: this.#detector(id, detector) });
        this.#writeNode(id, now, RANGES, { series: true, identity: true });
      }
    }
    this.#writer.listNodes(loaded.keys());
    await this.#persist(() => this.#writer.flush(), 'read model');
    await this.#writeSystem(RANGES, now);
    this.#options.logger.info({ stream: state.shard.stream, nodes: loaded.size }, 'shard acquired');
  }

  /**
   * Lets go of a shard. Gracefully (another replica is to take it) its keys
   * are written out first; after a lost lease its state is just dropped (it
   * may hold changes that were never committed).
   */
  async release(state: ShardState, graceful: boolean): Promise<void> {
    if (!this.holds(state)) return;
    if (graceful) await this.flush();
    this.#drop(state);
    this.#options.logger.info({ stream: state.shard.stream, graceful }, 'shard released');
  }

  /**
   * After a shard's pending entries are done: every entry the group has
   * delivered is applied (or dead-lettered, or failed), so the keys, once
   * written, reflect the stream up to the group's position.
   */
  async settle(state: ShardState): Promise<void> {
    if (!this.holds(state)) return;
    const delivered = await this.#persist(
      () => state.store.lastDelivered(this.#options.group),
      'group position',
    );
    if (delivered !== undefined) this.#advance(state, delivered);
    await this.flush();
  }

  /** Forgets a shard at once (its lease is gone): its state may hold uncommitted changes. */
  drop(state: ShardState): void {
    if (this.holds(state)) this.#drop(state);
  }

  /** Forgets everything of `state` (an acquisition that may no longer be the held one). */
  #drop(state: ShardState): void {
    if (this.holds(state)) this.#shards.delete(state.shard.stream);
    this.#committed.delete(state);
    this.#written.delete(state);
    this.#applied.delete(state);
    for (const [id, node] of this.#nodes) {
      if (node.shard !== state) continue;
      this.#forget(id);
      this.#dirty.delete(id);
    }
    if (this.#round !== undefined) {
      this.#round.nodes = this.#round.nodes.filter((id) => this.#nodes.has(id));
      const upTo = new Map(this.#round.upTo);
      upTo.delete(state);
      this.#round.upTo = upTo;
    }
  }

  #advance(state: ShardState, id: string): void {
    const current = this.#committed.get(state);
    if (current === undefined || compareEntryIds(id, current) > 0) this.#committed.set(state, id);
  }

  /** Stops retrying failed writes (a stop while Redis is away leaves the batch pending). */
  stop(): void {
    this.#stopping = true;
  }

  /**
   * Applies one batch of a shard this replica holds (a batch of an earlier
   * acquisition, or of a shard since lost, is ignored: its entries stay
   * pending for the holder). An empty batch (the stream is quiet) writes
   * the metrics still owed.
   *
   * An entry that cannot be processed stays pending with its error, to be
   * delivered again; once it has failed `maxDeliveries` deliveries it goes to
   * the dead-letter stream. An entry delivered more often than that without
   * ever being acknowledged (a consumer died on it each time) is
   * dead-lettered without another attempt.
   *
   * The batch is applied in slices of at most `sliceReadings` readings, each
   * committed on its own (its acknowledgements, state, counters and dead
   * letters), yielding to the event loop in between, so that no batch
   * outlives the lease. Once the shard is no longer held (the lease was lost
   * meanwhile, or a slice's commit found it taken) it stops: the remaining
   * entries stay pending for the holder.
   */
  async apply(batch: DeliveredBatch, state: ShardState): Promise<BatchOutcome> {
    const outcome = {
      entries: 0,
      readings: 0,
      applied: 0,
      tooLate: 0,
      tooEarly: 0,
      dead: 0,
      failed: 0,
      replayed: 0,
      nodes: 0,
    };
    if (!this.holds(state)) return outcome;
    if (batch.entries.length === 0) {
      await this.flush({ wait: false });
      return outcome;
    }
    const nodes = new Set<string>();
    const slices = slicesOf(batch.entries, this.#options.sliceReadings ?? Number.POSITIVE_INFINITY);
    for (const [i, entries] of slices.entries()) {
      if (i > 0) await yieldToLoop();
      if (!this.holds(state)) break;
      const done = await this.#applySlice({ shard: batch.shard, entries }, state, nodes);
      if (done === undefined) break;
      for (const key of Object.keys(done) as (keyof BatchOutcome)[]) outcome[key] += done[key];
    }
    outcome.nodes = nodes.size;
    return outcome;
  }

  /** Applies and commits one slice of a batch; undefined when the lease was lost (the shard is dropped). */
  async #applySlice(
    batch: DeliveredBatch,
    state: ShardState,
    nodes: Set<string>,
  ): Promise<BatchOutcome | undefined> {
    const outcome = {
      entries: 0,
      readings: 0,
      applied: 0,
      tooLate: 0,
      tooEarly: 0,
      dead: 0,
      failed: 0,
      replayed: 0,
      nodes: 0,
    };
    const now = this.#options.clock.now();
    const max = this.#options.maxDeliveries;
    const changed = new Set<string>();
    const counters: Counters = {
      entries: 0,
      readings: 0,
      applied: 0,
      too_late: 0,
      too_early: 0,
      dead: 0,
      failed: 0,
      redelivered: 0,
      replayed: 0,
    };
    const work = {
      ids: [] as string[],
      acks: [] as string[],
      added: [] as string[],
      dead: [] as DeadLetter[],
      failures: [] as { id: string; error: string }[],
      detected: new Set<string>(),
      events: [] as AnomalyEvent[],
    };
    const lastErrors = await this.#persist(
      () => state.store.lastErrors(exhausted(batch.entries, max)),
      'errors',
    );
    const sorted = triage(batch.entries, max, lastErrors);
    const mark = this.#applied.get(state);
    // A replayed entry trimmed before it was claimed was applied long ago:
    // acknowledged, not dead-lettered.
    work.dead =
      mark === undefined
        ? sorted.dead
        : sorted.dead.filter((dead) => {
            const applied =
              dead.deliveries === Number.POSITIVE_INFINITY && compareEntryIds(dead.id, mark) <= 0;
            if (applied) work.acks.push(dead.id);
            return !applied;
          });
    work.failures = sorted.failures;
    counters.entries = batch.entries.length;
    counters.redelivered = batch.entries.filter((e) => e.deliveries > 1).length;
    counters.dead = work.dead.length;
    counters.failed = sorted.failures.length;
    for (const entry of batch.entries) work.ids.push(entry.id);
    logEntries(this.#options.logger, batch.shard.stream, { ...sorted, dead: work.dead });

    const replayed = new Set<string>();
    let sinceYield = 0;
    for (const entry of sorted.ready) {
      work.acks.push(entry.id);
      if (mark !== undefined && compareEntryIds(entry.id, mark) <= 0) {
        // Delivered again (`streamgauge replay`): its readings are in the
        // state already. Its nodes' keys are written again instead, which
        // restores keys wiped or lost meanwhile.
        counters.replayed++;
        for (const reading of entry.readings) {
          if (this.#nodes.get(reading.node_id)?.shard === state) replayed.add(reading.node_id);
        }
        continue;
      }
      for (const reading of entry.readings) {
        if (++sinceYield > APPLY_CHUNK) {
          // Nothing of the slice is committed yet: a lease lost meanwhile drops it all.
          sinceYield = 0;
          await yieldToLoop();
          if (!this.holds(state)) {
            this.#drop(state);
            return undefined;
          }
        }
        counters.readings++;
        let node = this.#nodes.get(reading.node_id);
        if (node === undefined) {
          node = this.#newNode(reading.node_id, state);
          this.#nodes.set(reading.node_id, node);
          work.added.push(reading.node_id);
        }
        const result = node.windows.add(reading, now);
        if (result === 'applied') {
          counters.applied++;
          changed.add(reading.node_id);
          const observed = node.detector.observe(reading);
          if (observed.examined) work.detected.add(reading.node_id);
          work.events.push(...observed.events);
        } else if (result === 'too_late') {
          counters.too_late++;
        } else {
          counters.too_early++;
        }
      }
    }

    // A node created by readings that were all too late or too early has
    // nothing to show: it is not kept or listed until one of its readings counts.
    work.added = work.added.filter((id) => {
      if (changed.has(id)) return true;
      this.#nodes.delete(id);
      return false;
    });

    // Replayed nodes' keys are written again (latest and metadata now,
    // metrics with the next round); their state did not change.
    for (const id of replayed) {
      const windows = this.#nodes.get(id)?.windows;
      if (windows === undefined || changed.has(id)) continue;
      windows.latestChanged = true;
      changed.add(id);
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
    this.#latestWriter.listNodes(replayed.size === 0 ? work.added : [...work.added, ...replayed]);
    this.#latestWriter.notify({ cause: 'readings', keys: 'latest', at: isoTime(now), nodes: [...changed] });
    await this.#persist(() => this.#latestWriter.flush(), 'read model');
    this.#options.onLatestWritten?.(changed, (id) => this.#nodes.get(id)?.windows.latest?.timestamp);

    const commit = state.store.prepare({
      changed: [...changed].flatMap((id) => {
        const node = this.#nodes.get(id);
        return node ? [node.windows] : [];
      }),
      added: work.added,
      removed: [],
      group: this.#options.group,
      ackIds: work.acks,
      deadLetters: work.dead,
      failures: work.failures,
      counters,
      detectors: this.#detectorStates(work.detected),
      events: work.events,
    });
    if (!(await this.#commit(state, commit))) return undefined;
    const last = work.ids[work.ids.length - 1];
    if (last !== undefined) this.#advance(state, last);
    outcome.entries = counters.entries;
    outcome.readings = counters.readings;
    outcome.applied = counters.applied;
    outcome.tooLate = counters.too_late;
    outcome.tooEarly = counters.too_early;
    outcome.dead = counters.dead;
    outcome.failed = counters.failed;
    outcome.replayed = counters.replayed;
    // Metrics when due (in chunks, between batches); otherwise they wait for
    // the interval or a quiet stream.
    if (this.#round !== undefined || now - this.#lastFlush >= (this.#options.metricsIntervalMs ?? 1000)) {
      await this.flush({ limit: FLUSH_CHUNK, wait: false });
    }
    outcome.nodes = changed.size;
    for (const id of changed) nodes.add(id);
    return outcome;
  }

  /**
   * Applies a backfill run's panes to a shard this replica holds. The
   * warehouse was read up to the stream position `offer.cut`; the state
   * here reflects the stream up to the last committed entry. So the truth
   * for each node is the warehouse's panes plus the shard's entries after
   * the cut, replayed; every live pane that differs from it is replaced
   * (nothing the stream delivered is lost, nothing counted twice), and the
   * change is committed and written out like a batch.
   *
   * Deferred (undefined) while the stream holds entries up to the cut that
   * this replica has not applied yet: it catches up first, and the offer waits.
   */
  async reconcile(state: ShardState, offer: Offer): Promise<ShardReconcileReport | undefined> {
    const offers = this.#options.offers;
    if (offers === undefined || !this.holds(state)) return undefined;
    const { store } = state;
    const position =
      this.#committed.get(state) ??
      (await this.#persist(() => store.lastDelivered(this.#options.group), 'group position')) ??
      '0-0';
    if (
      compareEntryIds(position, offer.cut) < 0 &&
      (await this.#persist(() => store.hasEntriesBetween(position, offer.cut), 'stream range'))
    ) {
      return undefined;
    }
    // Pending metrics first: the nodes this changes are rewritten below.
    await this.flush();
    const now = this.#options.clock.now();
    const { aheadMs } = this.#options;
    const skip = (reason: string) => this.#finishReconcile(state, offer, { skipped: reason, now });

    // Readings after the cut that are gone from the stream are in neither
    // part of the truth: applying it would drop them from the live state.
    if (await this.#persist(() => store.lostSince(offer), 'stream info')) {
      return skip(
        `entries after the cut ${offer.cut} were trimmed from ${state.shard.stream} before they could be replayed; the live state was left as it is`,
      );
    }
    const tail = await this.#persist(async () => {
      const byNode = new Map<string, Reading[]>();
      let entries = 0;
      for await (const entry of store.readingsBetween(offer.cut, position)) {
        entries++;
        for (const reading of entry.readings) {
          const list = byNode.get(reading.node_id);
          if (list === undefined) byNode.set(reading.node_id, [reading]);
          else list.push(reading);
        }
      }
      return { byNode, entries };
    }, 'stream tail');

    // A rebuild covers some nodes, or panes from `since` on; the rest stays as it is.
    const since = offer.scope?.since;
    const only = offer.scope?.nodes === undefined ? undefined : new Set(offer.scope.nodes);
    const drift: Record<string, number> = {};
    const totals = { compared: 0, changed: 0, created: 0, nodes: 0 };
    const seen = new Set<string>();
    let changed: NodeWindows[] = [];
    let added: string[] = [];
    const written: string[] = [];
    const commit = async () => {
      const chunk = { changed, added };
      changed = [];
      added = [];
      if (chunk.changed.length === 0 && chunk.added.length === 0) return true;
      const ok = await this.#commit(
        state,
        store.prepare({
          changed: chunk.changed,
          added: chunk.added,
          removed: [],
          group: this.#options.group,
          ackIds: [],
          deadLetters: [],
          failures: [],
          counters: {},
        }),
      );
      for (const windows of chunk.changed) written.push(windows.nodeId);
      return ok;
    };
    const settle = async (id: string, truth: NodeWindows): Promise<boolean> => {
      for (const reading of tail.byNode.get(id) ?? []) truth.add(reading, now);
      let node = this.#nodes.get(id);
      if (node === undefined) {
        if (truth.isSilent(now)) return true;
        node = this.#newNode(id, state);
        this.#nodes.set(id, node);
        added.push(id);
        totals.created++;
      }
      totals.nodes++;
      const outcome = reconcileNode(node.windows, truth, now, drift, since);
      totals.compared += outcome.compared;
      totals.changed += outcome.changed;
      if (outcome.changed > 0 || outcome.identityChanged) changed.push(node.windows);
      // Committed in chunks: one script call per shard would carry every changed node.
      return changed.length < RECONCILE_CHUNK || (await commit());
    };
    try {
      for (let from = 0; from < offer.nodes.length; from += RECONCILE_CHUNK) {
        const chunk = await this.#persist(
          () => offers.payload(state.shard, offer, from, RECONCILE_CHUNK),
          'backfill payload',
        );
        for (const backfill of chunk) {
          seen.add(backfill.nodeId);
          const truth = windowsFromPanes(backfill.nodeId, aheadMs, backfill.panes, now);
          truth.latest = backfill.latest;
          truth.metadata = { ...backfill.metadata };
          for (const reading of backfill.readings) truth.add(reading, now);
          if (!(await settle(backfill.nodeId, truth))) return undefined;
        }
      }
    } catch (error) {
      if (!(error instanceof PayloadGoneError)) throw error;
      // Nothing of it was applied unless a chunk was committed: then the
      // rest of the shard's nodes keep their live state until the next run.
      if (!(await commit())) return undefined;
      return skip(`${error.message}; ${written.length} nodes were reconciled before it went`);
    }
    // A live node the warehouse knows nothing of holds only what the stream's tail gives it.
    for (const [id, node] of [...this.#nodes]) {
      if (node.shard !== state || seen.has(id) || (only !== undefined && !only.has(id))) continue;
      if (!(await settle(id, new NodeWindows(id, aheadMs)))) return undefined;
    }
    if (!(await commit())) return undefined;
    for (const id of written) this.#writeNode(id, now, RANGES, { series: true, identity: true });
    this.#writer.listNodes(this.#nodes.keys());
    this.#writer.notify({ cause: 'reconcile', keys: 'all', at: isoTime(now), nodes: written });
    await this.#persist(() => this.#writer.flush(), 'read model');
    await this.#writeSystem(RANGES, now);
    return this.#finishReconcile(state, offer, {
      now,
      report: {
        nodes: totals.nodes,
        created: totals.created,
        panesCompared: totals.compared,
        panesChanged: totals.changed,
        drift,
        tailEntries: tail.entries,
      },
    });
  }

  /** Reports how the shard took a backfill run (applied, or why not) and removes its offer. */
  async #finishReconcile(
    state: ShardState,
    offer: Offer,
    outcome: {
      now: number;
      skipped?: string;
      report?: Omit<ShardReconcileReport, 'shard' | 'appliedAt' | 'skipped'>;
    },
  ): Promise<ShardReconcileReport> {
    const offers = this.#options.offers as ReconcileOffers;
    const report: ShardReconcileReport = {
      shard: state.shard.shard,
      nodes: 0,
      created: 0,
      panesCompared: 0,
      panesChanged: 0,
      drift: {},
      tailEntries: 0,
      ...outcome.report,
      appliedAt: outcome.now,
      ...(outcome.skipped !== undefined && { skipped: outcome.skipped }),
    };
    await this.#persist(
      () => offers.report(offer.run, report, this.#options.reportTtlSeconds ?? 86_400),
      'reconcile report',
    );
    await this.#persist(() => offers.take(state.shard, offer.run), 'reconcile offer');
    const log = { stream: state.shard.stream, run: offer.run, ...report };
    if (report.skipped === undefined) this.#options.logger.info(log, 'backfill applied');
    else this.#options.logger.error(log, 'backfill not applied');
    return report;
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
   * a node never overtake each other. Without `limit`, the round and anything
   * owed since are written, NODE_CHUNK nodes at a time, yielding in between.
   */
  async flush(options: { limit?: number; wait?: boolean } = {}): Promise<void> {
    const { limit } = options;
    if (limit === undefined) {
      // All of it, a chunk at a time, yielding in between: at 100k nodes
      // writing every one is many seconds of CPU, longer than a lease. The
      // system metrics are summed once, when the round is complete.
      do {
        await this.#flushChunk({ limit: NODE_CHUNK, wait: false, system: 'end' });
        await yieldToLoop();
      } while (this.#round !== undefined || this.#dirty.size > 0);
      if (options.wait !== false) await this.#metricsInFlight;
      if (this.#metricsError !== undefined) throw this.#metricsError;
      return;
    }
    await this.#flushChunk({ ...options, limit });
  }

  async #flushChunk(options: { limit: number; wait?: boolean; system?: 'end' }): Promise<void> {
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
    const nodes = round.nodes.splice(0, options.limit);
    for (const id of nodes) this.#writeNode(id, now, RANGES, { series: true, identity: false });
    const complete = round.nodes.length === 0;
    if (complete) {
      this.#round = undefined;
      this.#lastFlush = now;
    }
    if (nodes.length > 0) this.#writer.notify({ cause: 'readings', keys: 'all', at: isoTime(now), nodes });
    // Summing is a pass over every node: once per round, or per interval
    // while a long round goes on, never per chunk (at 100k nodes per chunk
    // it was most of the aggregator's time).
    const systemDue =
      complete ||
      (options.system !== 'end' && now - this.#lastSystem >= (this.#options.metricsIntervalMs ?? 1000));
    const sums = nodes.length > 0 && systemDue ? this.#partialSums(RANGES) : undefined;
    if (sums !== undefined) this.#lastSystem = now;
    const written = this.#persist(() => this.#writer.flush(), 'read model').then(async () => {
      if (sums !== undefined) await this.#writeSystem(RANGES, now, sums);
      if (complete) await this.#markWritten(round.upTo);
    });
    this.#metricsInFlight = written.catch((error: unknown) => {
      this.#metricsError = error;
    });
    if (options.wait !== false) await this.#metricsInFlight;
    if (this.#metricsError !== undefined) throw this.#metricsError;
  }

  async #markWritten(upTo: ReadonlyMap<ShardState, string>): Promise<void> {
    for (const [state, id] of upTo) {
      if (this.#written.get(state) === id || !this.holds(state)) continue;
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
    // Silence and hysteresis are seen by the clock: offline nodes, anomalies clear long enough to close.
    const clocked = new Map<ShardState, { ids: Set<string>; events: AnomalyEvent[] }>();
    const ids = [...this.#nodes.keys()];
    for (let from = 0; from < ids.length; from += NODE_CHUNK) {
      if (from > 0) {
        // A chunk at a time, each written out before the next, yielding in
        // between, so the leases are renewed meanwhile; a shard lost
        // meanwhile has taken its nodes with it.
        await this.#persist(() => this.#writer.flush(), 'read model');
        await yieldToLoop();
      }
      for (const id of ids.slice(from, from + NODE_CHUNK)) {
        const node = this.#nodes.get(id);
        if (node === undefined) continue;
        const events = node.detector.tick(now);
        if (events.length > 0) {
          const entry = clocked.get(node.shard) ?? { ids: new Set<string>(), events: [] };
          entry.ids.add(id);
          entry.events.push(...events);
          clocked.set(node.shard, entry);
        }
        if (hourly && node.windows.isSilent(now)) {
          this.#forget(id);
          const list = forgotten.get(node.shard);
          if (list === undefined) forgotten.set(node.shard, [id]);
          else list.push(id);
          continue;
        }
        // Hourly, latest and metadata are rewritten too, which renews their TTL.
        this.#writeNode(id, now, due, { series: due.includes('7d'), identity: hourly });
      }
    }
    // Hourly (and at start) every node is listed again: cheap, and it repairs a
    // `nodes:all` that expired or was deleted.
    if (all || hourly) this.#writer.listNodes(this.#nodes.keys());
    this.#writer.notify({ cause: 'clock', at: isoTime(now), ranges: due });
    const removed = [...forgotten.values()].flat();
    if (removed.length > 0) {
      this.#writer.unlistNodes(removed);
      this.#options.logger.info({ nodes: removed.length }, 'forgot nodes silent for 30 days');
    }
    await this.#persist(() => this.#writer.flush(), 'read model');
    await this.#writeSystem(due, now);
    for (const state of new Set([...forgotten.keys(), ...clocked.keys()])) {
      if (!this.holds(state)) continue;
      const anomalies = clocked.get(state);
      const commit = state.store.prepare({
        changed: [],
        added: [],
        removed: forgotten.get(state) ?? [],
        group: this.#options.group,
        ackIds: [],
        deadLetters: [],
        failures: [],
        counters: {},
        ...(anomalies && { detectors: this.#detectorStates(anomalies.ids), events: anomalies.events }),
      });
      await this.#commit(state, commit);
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

  /** Per shard held and range, the sums over the shard's nodes (EMPTY_SUMS for a shard with none). */
  #partialSums(ranges: readonly Range[]): Map<number, Map<Range, SystemSums>> {
    const partials = new Map<number, Map<Range, SystemSums>>();
    for (const state of this.#shards.values()) {
      partials.set(state.shard.shard, new Map(ranges.map((r) => [r, EMPTY_SUMS])));
    }
    for (const range of ranges) {
      for (const [id, contribution] of this.#contributions.get(range) ?? []) {
        const byRange = partials.get(this.#nodes.get(id)?.shard.shard.shard ?? -1);
        if (byRange) byRange.set(range, addToSums(byRange.get(range) ?? EMPTY_SUMS, contribution));
      }
    }
    return partials;
  }

  /**
   * The system metrics are sums over every node of every replica: this
   * replica's shards' partial sums are merged with the others' in Redis,
   * and the totals written unless a newer total is already there.
   */
  async #writeSystem(ranges: readonly Range[], now: number, sums = this.#partialSums(ranges)): Promise<void> {
    await this.#persist(async () => {
      const { version, totals } = await this.#writer.mergeSystemPartials(this.#options.shardCount, sums);
      for (const range of ranges) {
        this.#writer.writeSystem(range, systemMetricsHash(totals.get(range) ?? EMPTY_SUMS, now), version);
      }
      await this.#writer.flush();
    }, 'system metrics');
  }

  /**
   * Runs a prepared commit; false when the shard is no longer held: the
   * lease was lost (the commit was refused), or it was dropped meanwhile.
   * Either way everything of this acquisition is forgotten, and a refused
   * commit is never retried: the holder applies the entries instead.
   */
  async #commit(state: ShardState, commit: () => Promise<string | undefined>): Promise<boolean> {
    try {
      const mark = await this.#persist(commit, 'state');
      if (!this.holds(state)) {
        // Dropped while the commit was in flight: nodes it created since are forgotten too.
        this.#drop(state);
        return false;
      }
      if (mark !== undefined) this.#applied.set(state, mark);
      return true;
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
      const held = this.holds(state);
      this.#drop(state);
      // Reported once: a shard dropped already (its lease seen expired) may be held again under a new acquisition.
      if (held) {
        this.#options.logger.warn(
          { stream: state.shard.stream },
          'lease lost to another replica; dropping the shard',
        );
        this.#options.onLeaseLost?.(state.shard);
      }
      return false;
    }
  }

  #newNode(id: string, shard: ShardState): LiveNode {
    return { windows: new NodeWindows(id, this.#options.aheadMs), detector: this.#detector(id), shard };
  }

  #detector(id: string, state?: PersistedDetectorState): NodeDetector {
    return new NodeDetector(id, this.#options.anomalies, state);
  }

  #detectorStates(ids: Iterable<string>): Map<string, PersistedDetectorState> {
    const states = new Map<string, PersistedDetectorState>();
    for (const id of ids) {
      const node = this.#nodes.get(id);
      if (node) states.set(id, node.detector.state());
    }
    return states;
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
  async #persist<T>(write: () => Promise<T>, what: string): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await write();
      } catch (error) {
        if (this.#stopping || !isUnavailable(error)) throw error;
        this.#options.logger.warn({ err: error, attempt }, `writing the ${what} failed; retrying`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2_000)));
      }
    }
  }
}

/**
 * Splits a batch's entries, in order, into slices of at most `limit`
 * readings; an entry holding more than that is a slice of its own.
 */
function slicesOf(entries: readonly DeliveredEntry[], limit: number): DeliveredEntry[][] {
  const slices: DeliveredEntry[][] = [];
  let slice: DeliveredEntry[] = [];
  let readings = 0;
  for (const entry of entries) {
    const size = 'readings' in entry ? entry.readings.length : 0;
    if (slice.length > 0 && readings + size > limit) {
      slices.push(slice);
      slice = [];
      readings = 0;
    }
    slice.push(entry);
    readings += size;
  }
  if (slice.length > 0) slices.push(slice);
  return slices;
}

/** Dead letters are errors; failed entries that will be retried, warnings. */
function logEntries(logger: Logger, stream: string, sorted: Triage): void {
  for (const dead of sorted.dead) logger.error({ stream, ...dead }, 'entry dead-lettered');
  for (const failure of sorted.failures) {
    logger.warn({ stream, ...failure }, 'entry failed; it stays pending and will be delivered again');
  }
}
