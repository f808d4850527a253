import {
  type AnomalySettings,
  backoffMs,
  type Clock,
  compareEntryIds,
  type DetectorCheckpoint,
  NodeDetector,
  NodeWindows,
  type PersistedDetectorState,
  type ShardKeys,
  sleep,
} from '@streamgauge/core';
import {
  type AggregateStore,
  isUnavailable,
  type ReadModelWriter,
  type ReconcileOffers,
} from '@streamgauge/redis';
import type { Logger } from 'pino';
import { NodeContributions } from './nodeContributions.ts';

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
  /**
   * Under sustained load the ranges beyond 1 hour and the 7-day series are
   * written at most this often (light rounds write the 1-hour metrics in
   * between); a quiet stream writes them straight away. Default 0: every round.
   */
  readonly longRangesIntervalMs?: number;
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
  /** Readings a commit acknowledges at most (default COMMIT_READINGS; tests make it small). */
  readonly commitReadings?: number;
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
export interface LiveNode {
  readonly windows: NodeWindows;
  readonly detector: NodeDetector;
  readonly shard: ShardState;
  /** Its metrics are owed to the next round when this is the rounds' current mark (MetricsRounds.owe). */
  owedIn: number;
}

/** A shard this replica holds: one object per acquisition, so work from an earlier one is recognised. */
export interface ShardState {
  readonly shard: ShardKeys;
  readonly store: AggregateStore;
}

/**
 * Nodes whose keys an acquisition or a full metrics round rewrites before it
 * yields to the event loop (timers, I/O: the leases' renewal): at 100k nodes
 * a full rewrite is seconds of CPU, longer than a lease. (The clock's sweep
 * goes in smaller steps: ClockTick's SWEEP_CHUNK.)
 */
export const NODE_CHUNK = 2_000;

/** Lets timers and I/O run (the lease's renewal, a lost lease noticed) before going on. */
export const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * What the aggregator's parts share: the shards this replica holds, the live
 * nodes, each shard's marks, the two writers and the retry every write goes
 * through. Only ShardOwnership changes which shards are held.
 */
export class LiveState {
  readonly options: AggregatorOptions;
  /** The shards this replica holds, by stream. */
  readonly shards = new Map<string, ShardState>();
  readonly nodes = new Map<string, LiveNode>();
  /** `latest` after each batch; metrics, series and system metrics, on their own connection. */
  readonly latestWriter: ReadModelWriter;
  readonly writer: ReadModelWriter;
  /** Per node and range, what it adds to the system sums (as last evaluated), with the node's shard. */
  readonly contributions = new NodeContributions();
  /** Per shard, the last committed entry. */
  readonly committed = new Map<ShardState, string>();
  /** Per shard, the highest entry id its state holds (the applied mark, as committed). */
  readonly applied = new Map<ShardState, string>();
  #stopping = false;

  constructor(
    writers: { readonly latest: ReadModelWriter; readonly metrics: ReadModelWriter },
    options: AggregatorOptions,
  ) {
    this.latestWriter = writers.latest;
    this.writer = writers.metrics;
    this.options = options;
  }

  /** Whether `state` is the current acquisition of its shard (work of an earlier one is dropped). */
  holds(state: ShardState): boolean {
    return this.shards.get(state.shard.stream) === state;
  }

  advance(state: ShardState, id: string): void {
    const current = this.committed.get(state);
    if (current === undefined || compareEntryIds(id, current) > 0) this.committed.set(state, id);
  }

  /** Stops retrying failed writes (a stop while Redis is away leaves the batch pending). */
  stop(): void {
    this.#stopping = true;
  }

  newNode(id: string, shard: ShardState): LiveNode {
    return {
      windows: new NodeWindows(id, this.options.aheadMs),
      detector: this.detector(id),
      shard,
      owedIn: 0,
    };
  }

  detector(id: string, state?: PersistedDetectorState): NodeDetector {
    return new NodeDetector(id, this.options.anomalies, state);
  }

  /**
   * The detector states of these nodes due to be persisted (see
   * NodeDetector.checkpoint for `handOver` and `everything`). Their time is
   * this process's monotonic clock: how often a node's learning is
   * checkpointed bounds what a crash of this process costs, in its time.
   */
  detectorStates(
    ids: Iterable<string>,
    handOver = false,
    everything = false,
  ): Map<string, DetectorCheckpoint> {
    const states = new Map<string, DetectorCheckpoint>();
    const now = performance.now();
    for (const id of ids) {
      const state = this.nodes.get(id)?.detector.checkpoint(handOver, everything, now);
      if (state) states.set(id, state);
    }
    return states;
  }

  forget(id: string): void {
    this.nodes.delete(id);
    this.contributions.delete(id);
  }

  /**
   * Retries a write until Redis takes it. The in-memory state already holds
   * the batch, so skipping the write would let memory and Redis disagree.
   * Only unavailability is retried: any other failure cannot succeed by
   * waiting, and ends the pipeline loudly (a restart rebuilds from Redis).
   */
  async persist<T>(write: () => Promise<T>, what: string): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await write();
      } catch (error) {
        if (this.#stopping || !isUnavailable(error)) throw error;
        this.options.logger.warn({ err: error, attempt }, `writing the ${what} failed; retrying`);
        await sleep(backoffMs(attempt, { baseMs: 100, maxMs: 2_000 }));
      }
    }
  }
}
