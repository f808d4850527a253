import type { DeliveredBatch, Offer, ReadModelWriter, ShardReconcileReport } from '@streamgauge/redis';
import { type AppliedBatch, BatchApplier, type BatchOutcome, type Overtaking } from './batchApplier.ts';
import { type ClockStep, ClockTick } from './clockTick.ts';
import { type AggregatorOptions, LiveState, type ShardState } from './liveState.ts';
import { MetricsRounds } from './metricsRounds.ts';
import { ReconcileApplier } from './reconcileApplier.ts';
import { ShardOwnership } from './shardOwnership.ts';
import { SystemSums } from './systemSums.ts';

export type { AggregatorOptions, AppliedBatch, BatchOutcome, ShardState };

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
 * in rounds, at most every `metricsIntervalMs`, and when the stream goes
 * quiet: under load light ones (the 1-hour metrics) between full ones (every
 * range and the series, at most every `longRangesIntervalMs`); after a full
 * round the shard's watermark (`agg:{tag}:written`) records the last entry
 * whose effects are in every key. The detectors' state is checkpointed
 * (NodeDetector.checkpoint), not committed with every batch.
 *
 * Keys are overwrites derived from state, so a crash at any point is repaired
 * by re-delivery (uncommitted entries are applied again to state that lacks
 * them) and by the restart, which rewrites every key from the committed state.
 *
 * The work is done by its parts: ShardOwnership (the lease rules),
 * BatchApplier, MetricsRounds, ReconcileApplier, SystemSums and ClockTick,
 * over the state they share (LiveState).
 */
export class Aggregator {
  readonly #live: LiveState;
  readonly #ownership: ShardOwnership;
  readonly #batches: BatchApplier;
  readonly #rounds: MetricsRounds;
  readonly #reconciles: ReconcileApplier;
  readonly #clock: ClockTick;

  constructor(
    writers: { readonly latest: ReadModelWriter; readonly metrics: ReadModelWriter },
    options: AggregatorOptions,
  ) {
    const live = new LiveState(writers, options);
    const sums = new SystemSums(live);
    const rounds = new MetricsRounds(live, sums);
    const ownership = new ShardOwnership(live, rounds, sums);
    this.#live = live;
    this.#ownership = ownership;
    this.#rounds = rounds;
    this.#batches = new BatchApplier(live, ownership, rounds);
    this.#reconciles = new ReconcileApplier(live, ownership, rounds, sums);
    this.#clock = new ClockTick(live, ownership, rounds, sums);
  }

  get nodeCount(): number {
    return this.#live.nodes.size;
  }

  /** The anomalies open now on the nodes this replica holds, by type (metrics). */
  openAnomalies(): Map<string, number> {
    const open = new Map<string, number>();
    for (const { detector } of this.#live.nodes.values()) {
      for (const anomaly of detector.open) open.set(anomaly.type, (open.get(anomaly.type) ?? 0) + 1);
    }
    return open;
  }

  get shards(): ShardState[] {
    return [...this.#live.shards.values()];
  }

  /** Whether `state` is the current acquisition of its shard (work of an earlier one is dropped). */
  holds(state: ShardState): boolean {
    return this.#live.holds(state);
  }

  /** See ShardOwnership.acquire. */
  acquire(state: ShardState): Promise<void> {
    return this.#ownership.acquire(state);
  }

  /** See ShardOwnership.release (gracefully, after the clock's writes in flight). */
  async release(state: ShardState, graceful: boolean): Promise<void> {
    if (graceful) await this.#clock.settled();
    await this.#ownership.release(state, graceful);
  }

  /** What a graceful stop owes of the detectors' state, for every shard held (see ShardOwnership.checkpoint). */
  async checkpoint(): Promise<void> {
    for (const state of this.#live.shards.values()) await this.#ownership.checkpoint(state);
  }

  /** See ShardOwnership.committed. */
  committed(state: ShardState): Promise<boolean> {
    return this.#ownership.committed(state);
  }

  /** See ShardOwnership.settle. */
  settle(state: ShardState): Promise<void> {
    return this.#ownership.settle(state);
  }

  /**
   * Every entry of the shard up to `id` is applied and committed (live
   * batches applied ahead of a chunk, once what is older is committed too):
   * the committed position may pass it.
   */
  advance(state: ShardState, id: string): void {
    if (this.#live.holds(state)) this.#live.advance(state, id);
  }

  /** Forgets a shard at once (its lease is gone): its state may hold uncommitted changes. */
  drop(state: ShardState): void {
    this.#ownership.drop(state);
  }

  /** Stops retrying failed writes (a stop while Redis is away leaves the batch pending). */
  stop(): void {
    this.#live.stop();
  }

  /** See BatchApplier.apply. */
  apply(
    batch: DeliveredBatch,
    state: ShardState,
    quiet = false,
    onYield?: (left: number) => void,
    overtaking?: Overtaking,
  ): Promise<AppliedBatch> {
    return this.#batches.apply(batch, state, quiet, onYield, overtaking);
  }

  /**
   * Whether a chunk of the shard's catch-up lane (`readings` at most) can be
   * taken now without the shard's loop waiting for a commit: not while two
   * are on their way and the chunk, with the batch being applied and what
   * is pending, would fill a third (ShardOwnership.wouldWait). While it
   * cannot, reads leave the lane alone, and the live readings are not held
   * up by the backlog's commits.
   */
  roomForLaneChunk(state: ShardState, readings: number): boolean {
    return !this.#ownership.wouldWait(state, this.#batches.unstaged(state) + readings);
  }

  /** See ReconcileApplier.reconcile (after the clock's writes in flight). */
  async reconcile(state: ShardState, offer: Offer): Promise<ShardReconcileReport | undefined> {
    await this.#clock.settled();
    return this.#reconciles.reconcile(state, offer);
  }

  /** See MetricsRounds.step (a full round it starts covers the commits done; one in flight, the next round). */
  metricsStep(): Promise<boolean> {
    return this.#rounds.step();
  }

  /**
   * Settles once the commits and the metrics chunk in flight are done: the
   * moment for the next step, which then holds the loop for its own work
   * only. Never rejects (a failure is the commit's, or the next step's, to raise).
   */
  async metricsReady(): Promise<void> {
    await this.#ownership.allCommitted().catch(() => {});
    await this.#rounds.idle();
  }

  /** See MetricsRounds.flush (after the clock's writes and the commits in flight, so a full round covers them). */
  async flush(options: { limit?: number; wait?: boolean } = {}): Promise<void> {
    await this.#clock.settled();
    await this.#ownership.allCommitted();
    await this.#rounds.flush(options);
  }

  /** See ClockTick.tick. */
  tick(all = false): ClockStep {
    return this.#clock.tick(all);
  }
}
