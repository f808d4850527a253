import { compareEntryIds, isoTime, NodeWindows, RANGES, reconcileNode, truthOf } from '@streamgauge/core';
import {
  type Offer,
  PayloadGoneError,
  type ReconcileOffers,
  type ShardReconcileReport,
} from '@streamgauge/redis';
import type { LiveState, ShardState } from './liveState.ts';
import type { MetricsRounds } from './metricsRounds.ts';
import type { ShardOwnership } from './shardOwnership.ts';
import type { SystemSums } from './systemSums.ts';

/** Nodes of a backfill run loaded, and committed, at a time (a node's panes are ~190 KB). */
const RECONCILE_CHUNK = 50;

/** Applies backfill runs' panes to the shards this replica holds, and reports how each went. */
export class ReconcileApplier {
  readonly #live: LiveState;
  readonly #ownership: ShardOwnership;
  readonly #rounds: MetricsRounds;
  readonly #sums: SystemSums;

  constructor(live: LiveState, ownership: ShardOwnership, rounds: MetricsRounds, sums: SystemSums) {
    this.#live = live;
    this.#ownership = ownership;
    this.#rounds = rounds;
    this.#sums = sums;
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
    const offers = this.#live.options.offers;
    // The position below is the last committed entry: a commit in flight first.
    if (offers === undefined || !(await this.#ownership.committed(state))) return undefined;
    const { store } = state;
    const position =
      this.#live.committed.get(state) ??
      (await this.#live.persist(() => store.lastDelivered(this.#live.options.group), 'group position')) ??
      '0-0';
    if (
      compareEntryIds(position, offer.cut) < 0 &&
      (await this.#live.persist(() => store.hasEntriesBetween(position, offer.cut), 'stream range'))
    ) {
      return undefined;
    }
    // Pending metrics first: the nodes this changes are rewritten below.
    await this.#rounds.flush();
    const now = this.#live.options.clock.now();
    const { aheadMs } = this.#live.options;
    const skip = (reason: string) => this.#finishReconcile(state, offer, { skipped: reason, now });

    // Readings after the cut that are gone from the stream are in neither
    // part of the truth: applying it would drop them from the live state.
    if (await this.#live.persist(() => store.lostSince(offer), 'stream info')) {
      return skip(
        `entries after the cut ${offer.cut} were trimmed from ${state.shard.stream} before they could be replayed; the live state was left as it is`,
      );
    }
    const tail = store.tailAfter(offer.cut);
    await this.#live.persist(() => tail.readTo(position), 'stream tail');

    // A rebuild covers some nodes, or panes from `since` on; an offer of the
    // nodes that differ covers those (the backfill found the rest matching
    // the persisted state, which this state has only added to since). The
    // rest stays as it is.
    const since = offer.scope?.since;
    const listed = offer.matched !== undefined ? offer.nodes : offer.scope?.nodes;
    const only = listed === undefined ? undefined : new Set(listed);
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
      const ok = await this.#ownership.commit(state, () =>
        store.prepare({
          changed: chunk.changed,
          added: chunk.added,
          removed: [],
          group: this.#live.options.group,
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
      for (const reading of tail.of(id)) truth.add(reading, now);
      let node = this.#live.nodes.get(id);
      if (node === undefined) {
        if (truth.isSilent(now)) return true;
        node = this.#live.newNode(id, state);
        this.#live.nodes.set(id, node);
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
        const chunk = await this.#live.persist(
          () => offers.payload(state.shard, offer, from, RECONCILE_CHUNK),
          'backfill payload',
        );
        for (const backfill of chunk) {
          seen.add(backfill.nodeId);
          if (!(await settle(backfill.nodeId, truthOf(backfill, aheadMs, now)))) return undefined;
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
    for (const [id, node] of [...this.#live.nodes]) {
      if (node.shard !== state || seen.has(id) || (only !== undefined && !only.has(id))) continue;
      if (!(await settle(id, new NodeWindows(id, aheadMs)))) return undefined;
    }
    if (!(await commit())) return undefined;
    for (const id of written) this.#rounds.writeNode(id, now, RANGES, { series: true, identity: true });
    this.#live.writer.listNodes(this.#live.nodes.keys());
    this.#live.writer.notify({ cause: 'reconcile', keys: 'all', at: isoTime(now), nodes: written });
    await this.#live.persist(() => this.#live.writer.flush(), 'read model');
    await this.#sums.write(RANGES, now);
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
    const offers = this.#live.options.offers as ReconcileOffers;
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
    await this.#live.persist(
      () => offers.report(offer.run, report, this.#live.options.reportTtlSeconds ?? 86_400),
      'reconcile report',
    );
    await this.#live.persist(() => offers.take(state.shard, offer.run), 'reconcile offer');
    const log = { stream: state.shard.stream, run: offer.run, ...report };
    if (report.skipped === undefined) this.#live.options.logger.info(log, 'backfill applied');
    else this.#live.options.logger.error(log, 'backfill not applied');
    return report;
  }
}
