import { setTimeout as delay } from 'node:timers/promises';
import {
  type AnomalyEvent,
  compareEntryIds,
  isoTime,
  metadataHash,
  packedLatest,
  type Range,
  type ShardKeys,
  unlessNaN,
} from '@streamgauge/core';
import {
  type DeadLetter,
  type DeliveredBatch,
  type DeliveredEntry,
  exhausted,
  type Triage,
  triage,
} from '@streamgauge/redis';
import type { Logger } from 'pino';
import { type LiveNode, type LiveState, type ShardState, yieldToLoop } from './liveState.ts';
import type { MetricsRounds } from './metricsRounds.ts';
import { ReadingsByNode } from './readingsByNode.ts';
import { COMMIT_NODES, type ShardOwnership } from './shardOwnership.ts';

const NO_METRICS: ReadonlyMap<Range, Record<string, string>> = new Map();

/** Nodes whose metrics are prepared between two batches (~100 µs each): bounds the pause a batch sees. */
const FLUSH_CHUNK = 100;

/**
 * Readings a slice applies before it yields to the event loop: a reading that
 * creates a node costs far more than one that updates it (a few hundred µs),
 * so a slice of new nodes' readings would otherwise hold the loop for seconds.
 */
const APPLY_CHUNK = 500;

/**
 * Distinct nodes a slice holds at most (see slicesOf): no more than a
 * commit writes (ShardOwnership.stage), so that one slice never makes a
 * longer commit. Below the number of nodes a shard serves, a slice holds
 * about one reading per node: at 10,010 nodes, a bound of 10,000 halved
 * the throughput when every slice was committed on its own.
 */
const SLICE_NODES = COMMIT_NODES;

/** A batch applied to the state, its commit sent. */
export interface AppliedBatch {
  /** After a quiet read: metrics are owed (MetricsRounds.step writes them). */
  readonly owed?: boolean;
  /**
   * Settles once the batch is committed: the outcome of its slices whose
   * commit went through (a refused one drops the shard, and the rest with it).
   * Rejects with a failure that ends the pipeline.
   */
  readonly committed: Promise<BatchOutcome>;
}

/**
 * Live entries read while a batch holding a catch-up lane chunk is applied
 * (the pipeline's SideReads), for BatchApplier.apply to apply ahead of the
 * rest of the chunk.
 */
export interface Overtaking {
  /**
   * A batch read meanwhile, if one is ready and may go ahead of the
   * shard's next batch when that one was read already: taken, it is the
   * apply's to apply.
   */
  take(): DeliveredBatch | undefined;
  /** The apply is over: nothing more is taken (what is read after goes behind it). */
  close(): void;
}

/** How often a slice waiting for a commit to go looks for live batches to take ahead. */
const AHEAD_POLL_MS = 20;

/**
 * A scratch of one slice being applied: its readings by node, and the
 * applied ones (indices in byNode), node after node: `groups[i]`'s end at
 * `ends[i]`; the nodes whose state it changed, each once.
 */
interface Scratch {
  readonly byNode: ReadingsByNode<LiveNode>;
  readonly applied: number[];
  readonly groups: number[];
  readonly ends: number[];
  readonly changed: LiveNode[];
}

function newScratch(): Scratch {
  return { byNode: new ReadingsByNode<LiveNode>(), applied: [], groups: [], ends: [], changed: [] };
}

/** Where a batch's apply stands, for the live batches taken ahead of its rest. */
interface Ahead {
  readonly overtaking: Overtaking;
  readonly slices: readonly Slice[];
  /** The slice being applied (the ones from it on are in hand, not yet applied). */
  at: number;
  readonly shard: ShardKeys;
  /**
   * Entries taken that named a node in hand, or a node of an entry
   * deferred before them, in order: each goes once neither holds.
   */
  deferred: DeliveredEntry[];
  /** `at` when the deferred entries were last sorted (the slices in hand only shrink). */
  sortedAt: number;
  readonly nodes: Set<string>;
  readonly commits: Promise<BatchOutcome | undefined>[];
}

/** Marks a promise's failure as handled where another waits for it. */
const ignore = (): void => {};

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

/** An outcome with nothing counted yet. */
function noOutcome(): { -readonly [K in keyof BatchOutcome]: BatchOutcome[K] } {
  return {
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
 * Applies delivered batches: readings to panes, the fast path (`latest`,
 * metadata, `nodes:all`) right away, then the state committed with the
 * entries' acknowledgements, per slice.
 */
export class BatchApplier {
  /**
   * The slice's readings by node, and its applied readings for the
   * detectors, reused across slices; the second for a live batch applied
   * while a chunk's slice is (see Overtaking).
   */
  readonly #scratch: Scratch = newScratch();
  readonly #aheadScratch: Scratch = newScratch();
  /** The batch being applied takes live batches ahead of its rest (undefined: it does not, or one is being applied). */
  #ahead: Ahead | undefined;
  readonly #live: LiveState;
  readonly #ownership: ShardOwnership;
  readonly #rounds: MetricsRounds;
  /** The batch being applied (one at a time): its shard, and its readings not yet staged. */
  #unstaged: { readonly state: ShardState; readings: number } | undefined;

  constructor(live: LiveState, ownership: ShardOwnership, rounds: MetricsRounds) {
    this.#live = live;
    this.#ownership = ownership;
    this.#rounds = rounds;
  }

  /**
   * Applies one batch of a shard this replica holds (a batch of an earlier
   * acquisition, or of a shard since lost, is ignored: its entries stay
   * pending for the holder). An empty batch of a `quiet` stream says
   * whether metrics are owed (`owed`): the pipeline writes them a step at a time.
   *
   * An entry that cannot be processed stays pending with its error, to be
   * delivered again; once it has failed `maxDeliveries` deliveries it goes to
   * the dead-letter stream. An entry delivered more often than that without
   * ever being acknowledged (a consumer died on it each time) is
   * dead-lettered without another attempt.
   *
   * The batch is applied in slices of at most `sliceReadings` readings,
   * yielding to the event loop in between, so that no batch outlives the
   * lease; each slice's `latest` keys are written when it is applied, and
   * its commit (its acknowledgements, state, counters and dead letters) is
   * staged: slices applied while a commit runs go together in the next one
   * (ShardOwnership.stage). Once the shard is no longer held (the lease was
   * lost meanwhile, or a commit found it taken) it stops: the remaining
   * entries stay pending for the holder.
   *
   * It returns once the batch is applied and its commit staged (and sent,
   * when the batch filled it: behind at most one other on its way, see
   * ShardOwnership.stage): the shard's next batch is read and applied while
   * commits run (the critical path is then the larger of the two, not
   * their sum), and never more than two commits ahead.
   * `onYield` is called each time it yields to the event loop (every few
   * hundred readings) with the batch's readings not yet applied, to pull
   * the next read at the right moment.
   *
   * `overtaking` (a batch holding a catch-up lane chunk): at each yield, a
   * batch of live entries read meanwhile is applied ahead of the rest of
   * this one, its `latest` keys written at once, but for its entries that
   * name a node of a slice not yet applied, or of an entry deferred so:
   * those wait until neither holds (a node's readings keep their order).
   * Without it a live reading that came just
   * after the chunk was moved waited for all of the chunk's apply, 0.6–0.7
   * s for 50,000 readings (docs/benchmarks.md, "Live entries ahead of a
   * chunk"). Their entries are committed with the batch's (the chunk's
   * slice holds every commit while it is applied); they join the pending
   * commit without waiting for room, over its bounds by at most their own
   * size. The committed position does not advance past them here (the
   * chunk's entries are older): the pipeline advances it once what is
   * older is committed too (Aggregator.advance, SideReads.positions).
   */
  async apply(
    batch: DeliveredBatch,
    state: ShardState,
    quiet = false,
    onYield?: (left: number) => void,
    overtaking?: Overtaking,
  ): Promise<AppliedBatch> {
    try {
      return await this.#apply(batch, state, quiet, onYield, overtaking);
    } finally {
      overtaking?.close();
    }
  }

  async #apply(
    batch: DeliveredBatch,
    state: ShardState,
    quiet: boolean,
    onYield: ((left: number) => void) | undefined,
    overtaking: Overtaking | undefined,
  ): Promise<AppliedBatch> {
    if (!this.#live.holds(state)) return { committed: Promise.resolve(noOutcome()) };
    if (batch.entries.length === 0) {
      if (quiet) {
        // What a quiet stream owes is written a step at a time by the
        // pipeline, each once the commits and the chunk in flight are done
        // (Aggregator.metricsReady): a round then covers the last batch, and
        // no job waits for Redis.
        return { committed: Promise.resolve(noOutcome()), owed: this.#rounds.owes() };
      }
      if (this.#rounds.due(this.#live.options.clock.now())) {
        // An empty page of a scan of pending entries (every AGGREGATOR_CLAIM_IDLE_MS / 2,
        // under any load): a chunk when due, as after a batch. Writing everything owed
        // here held every batch behind it: 12 s at 100,000 nodes, every 15 s.
        await this.#rounds.flush({ limit: FLUSH_CHUNK, wait: false });
      }
      return { committed: Promise.resolve(noOutcome()) };
    }
    const nodes = new Set<string>();
    const commits: Promise<BatchOutcome | undefined>[] = [];
    const slices = slicesOf(batch.entries, this.#live.options.sliceReadings ?? Number.POSITIVE_INFINITY);
    const progress: Progress = { left: 0, report: onYield };
    for (const slice of slices) progress.left += slice.readings;
    this.#unstaged = { state, readings: progress.left };
    const ahead: Ahead | undefined = overtaking && {
      overtaking,
      slices,
      at: 0,
      shard: batch.shard,
      deferred: [],
      sortedAt: 0,
      nodes,
      commits,
    };
    this.#ahead = ahead;
    try {
      for (const [i, slice] of slices.entries()) {
        if (ahead !== undefined) ahead.at = i;
        if (i > 0) {
          onYield?.(progress.left);
          await yieldToLoop();
          if (!this.#live.holds(state) || !(await this.#takeAhead(state))) break;
        }
        if (!this.#live.holds(state)) break;
        const sent = await this.#applySlice(
          { shard: batch.shard, entries: slice.entries },
          slice,
          state,
          nodes,
          progress,
        );
        if (sent === undefined) break;
        commits.push(sent.committed);
      }
      if (ahead !== undefined) {
        // Every slice applied: what was taken and had to wait, and what came since, in order.
        this.#ahead = undefined;
        ahead.at = slices.length;
        const deferred = ahead.deferred;
        ahead.deferred = [];
        for (;;) {
          const side =
            deferred.length > 0
              ? { shard: batch.shard, entries: deferred.splice(0) }
              : ahead.overtaking.take();
          if (side === undefined) {
            // At once, nothing in between: a batch read from now on is the shard's next.
            ahead.overtaking.close();
            break;
          }
          if (!this.#live.holds(state) || !(await this.#applyAhead(side, state, ahead))) break;
        }
      }
    } finally {
      this.#unstaged = undefined;
      this.#ahead = undefined;
    }
    const committed = Promise.all(commits).then((slices) => {
      const outcome = noOutcome();
      for (const done of slices) {
        // A refused commit drops the shard: no later slice was committed either.
        if (done === undefined) break;
        for (const key of Object.keys(done) as (keyof BatchOutcome)[]) outcome[key] += done[key];
      }
      outcome.nodes = nodes.size;
      return outcome;
    });
    return { committed };
  }

  /**
   * Applies one slice of a batch (`named`: the nodes its readings name, and
   * how many there are) and stages its
   * commit; resolves once the commit ahead of it is done if it was sent at
   * once, with the outcome of the commit that holds the slice (undefined when
   * it was refused). Undefined when the lease was lost (the shard is dropped).
   */
  async #applySlice(
    batch: DeliveredBatch,
    named: { readonly nodes: ReadonlySet<string>; readonly readings: number },
    state: ShardState,
    nodes: Set<string>,
    progress: Progress,
    aheadOf = false,
  ): Promise<{ readonly committed: Promise<BatchOutcome | undefined> } | undefined> {
    const scratch = aheadOf ? this.#aheadScratch : this.#scratch;
    const outcome = noOutcome();
    const now = this.#live.options.clock.now();
    const max = this.#live.options.maxDeliveries;
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
    const lastErrors = await this.#live.persist(
      () => state.store.lastErrors(exhausted(batch.entries, max)),
      'errors',
    );
    // Ahead of a chunk's slice, the pending commit cannot be sent before that slice is staged anyway.
    if (
      !aheadOf &&
      !(await this.#takingAhead(state, this.#ownership.room(state, named.nodes, named.readings)))
    )
      return undefined;
    const sorted = triage(batch.entries, max, lastErrors);
    // From here the state moves ahead of what the shard's commits acknowledge, until the slice is staged.
    this.#ownership.applying(state);
    const mark = this.#live.applied.get(state);
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
    logEntries(this.#live.options.logger, batch.shard.stream, { ...sorted, dead: work.dead });

    const replayed = new Set<string>();
    const { byNode, applied, groups, ends } = scratch;
    const changedNodes = scratch.changed;
    let written: Promise<void>;
    try {
      let created = 0;
      for (const [e, entry] of sorted.ready.entries()) {
        work.acks.push(entry.id);
        if (mark !== undefined && compareEntryIds(entry.id, mark) <= 0) {
          // Delivered again (`streamgauge replay`): its readings are in the
          // state already. Its nodes' keys are written again instead, which
          // restores keys wiped or lost meanwhile.
          counters.replayed++;
          for (const reading of entry.readings) {
            if (this.#live.nodes.get(reading.node_id)?.shard === state) replayed.add(reading.node_id);
          }
          continue;
        }
        for (const reading of entry.readings) {
          counters.readings++;
          let node = this.#live.nodes.get(reading.node_id);
          if (node === undefined) {
            if (++created % APPLY_CHUNK === 0 && !(await this.#yield(state, progress))) return undefined;
            node = this.#live.newNode(reading.node_id, state);
            this.#live.nodes.set(reading.node_id, node);
            work.added.push(reading.node_id);
          }
          byNode.add(node, reading, e);
        }
      }
      // Node by node (see ReadingsByNode): the windows first, every node's.
      let sinceYield = 0;
      for (let g = 0; g < byNode.size; g++) {
        const node = byNode.node(g);
        const before = applied.length;
        for (let at = byNode.first(g); at >= 0; at = byNode.next(at)) {
          if (++sinceYield > APPLY_CHUNK) {
            sinceYield = 0;
            if (!(await this.#yield(state, progress))) return undefined;
          }
          progress.left--;
          const result = node.windows.add(byNode.reading(at), now);
          if (result === 'applied') {
            counters.applied++;
            applied.push(at);
          } else if (result === 'too_late') {
            counters.too_late++;
          } else {
            counters.too_early++;
          }
        }
        if (applied.length === before) continue;
        changed.add(node.windows.nodeId);
        changedNodes.push(node);
        groups.push(g);
        ends.push(applied.length);
      }

      // A node created by readings that were all too late or too early has
      // nothing to show: it is not kept or listed until one of its readings counts.
      work.added = work.added.filter((id) => {
        if (changed.has(id)) return true;
        this.#live.nodes.delete(id);
        return false;
      });

      // Replayed nodes' keys are written again (latest and metadata now,
      // metrics with the next round); their state did not change.
      for (const id of replayed) {
        const node = this.#live.nodes.get(id);
        if (node === undefined || changed.has(id)) continue;
        node.windows.latestChanged = true;
        node.windows.metadataChanged = true;
        changed.add(id);
        changedNodes.push(node);
      }

      // The fast path: latest values (and metadata, when a value changed)
      // right away, before the detectors: Redis runs the write while they
      // work, and the latest values are visible a third of a slice sooner
      // (nothing in these keys comes from the detectors).
      written = this.#writeLatest(changedNodes, changed, work.added, replayed, now);

      // Then the detectors, node by node. A node with thousands of readings
      // in the slice yields between its entries' runs as well.
      let from = 0;
      for (let i = 0; i < groups.length; i++) {
        const node = byNode.node(groups[i] as number);
        const end = ends[i] as number;
        while (from < end) {
          const to = this.#detect(node, scratch, work, from, end, APPLY_CHUNK - sinceYield);
          sinceYield += to - from;
          from = to;
          if (sinceYield > APPLY_CHUNK) {
            sinceYield = 0;
            if (!(await this.#yield(state, progress))) return undefined;
          }
        }
      }
    } finally {
      // Nothing of a slice dropped half-way (a lost lease) is left for the
      // next: no reading indices of this one, no references to its nodes.
      byNode.clear();
      applied.length = 0;
      groups.length = 0;
      ends.length = 0;
      changedNodes.length = 0;
    }

    // Committed with the slices before it that are not sent yet, or on its
    // own (ShardOwnership.stage); once their keys are written, so the keys
    // never lag the committed state.
    const { committed: sent, before } = this.#ownership.stage(state, {
      changed,
      added: work.added,
      acks: work.acks,
      deadLetters: work.dead,
      failures: work.failures,
      counters,
      detected: work.detected,
      events: work.events,
      readings: counters.readings,
      written,
    });
    // Awaited below, after a metrics chunk maybe: a failure is not unhandled meanwhile.
    before.catch(ignore);
    if (this.#unstaged !== undefined && !aheadOf) this.#unstaged.readings -= named.readings;
    const last = work.ids[work.ids.length - 1];
    outcome.entries = counters.entries;
    outcome.readings = counters.readings;
    outcome.applied = counters.applied;
    outcome.tooLate = counters.too_late;
    outcome.tooEarly = counters.too_early;
    outcome.dead = counters.dead;
    outcome.failed = counters.failed;
    outcome.replayed = counters.replayed;
    outcome.nodes = changed.size;
    const committed = sent.then((held) => {
      if (!held) return undefined;
      // Not past entries in hand: a live batch taken ahead of a chunk is newer than the chunk.
      if (last !== undefined && !aheadOf) this.#live.advance(state, last);
      return outcome;
    });
    committed.catch(ignore);
    // Metrics when due (in chunks, between batches); otherwise they wait for
    // the interval or a quiet stream.
    if (!aheadOf && this.#rounds.due(now)) {
      await this.#rounds.flush({ limit: FLUSH_CHUNK, wait: false });
    }
    if (!(await this.#takingAhead(state, before))) return undefined;
    for (const id of changed) nodes.add(id);
    return { committed };
  }

  /** Readings of the shard's batch being applied that no commit holds yet (0 between batches). */
  unstaged(state: ShardState): number {
    return this.#unstaged?.state === state ? this.#unstaged.readings : 0;
  }

  /**
   * Nothing of the slice is committed yet: a lease lost while the loop
   * yields drops it all. False when it was lost (the shard is forgotten).
   */
  async #yield(state: ShardState, progress: Progress): Promise<boolean> {
    progress.report?.(progress.left);
    await yieldToLoop();
    if (!this.#live.holds(state)) {
      this.#ownership.forget(state);
      return false;
    }
    return this.#takeAhead(state);
  }

  /**
   * Waits for a commit of the shard to go (room for a slice, or the turn of
   * the one a slice filled), taking live batches ahead meanwhile when the
   * batch being applied takes them: that wait is for the oldest commit on
   * its way, seconds while Redis takes a catch-up's commits of tens of MB,
   * and a live reading read meanwhile would wait with it.
   */
  async #takingAhead(state: ShardState, wait: Promise<boolean>): Promise<boolean> {
    if (this.#ahead === undefined) return wait;
    let over = false;
    const end = () => {
      over = true;
    };
    const settled = wait.then(end, end);
    while (!over) {
      await Promise.race([settled, delay(AHEAD_POLL_MS)]);
      if (!over && !(await this.#takeAhead(state))) return false;
    }
    return wait;
  }

  /**
   * A live batch read meanwhile, if one is ready: its entries applied now,
   * but those that name a node in hand, or a node of an entry deferred
   * before them, which wait until neither holds (looked at again once a
   * slice was applied; see splitAhead). False when the shard was lost
   * meanwhile.
   */
  async #takeAhead(state: ShardState): Promise<boolean> {
    const ahead = this.#ahead;
    if (ahead === undefined) return true;
    const side = ahead.overtaking.take();
    // The deferred entries again once a slice was applied: some may go now.
    if (side === undefined && (ahead.deferred.length === 0 || ahead.sortedAt === ahead.at)) return true;
    const entries = side === undefined ? ahead.deferred : [...ahead.deferred, ...side.entries];
    const { now, later } = splitAhead(entries, (node) => inHand(ahead, node));
    ahead.deferred = later;
    ahead.sortedAt = ahead.at;
    if (now.length === 0) return true;
    return this.#applyAhead({ shard: ahead.shard, entries: now }, state, ahead);
  }

  /**
   * Applies a live batch taken beside the batch in hand (see Overtaking):
   * its slices, each staged with the pending commit. False when the shard
   * was lost meanwhile.
   */
  async #applyAhead(side: DeliveredBatch, state: ShardState, ahead: Ahead): Promise<boolean> {
    // Not re-entered: the live batch's own yields take nothing.
    const outer = this.#ahead;
    this.#ahead = undefined;
    try {
      const progress: Progress = { left: 0, report: undefined };
      for (const slice of slicesOf(
        side.entries,
        this.#live.options.sliceReadings ?? Number.POSITIVE_INFINITY,
      )) {
        progress.left += slice.readings;
        const sent = await this.#applySlice(
          { shard: side.shard, entries: slice.entries },
          slice,
          state,
          ahead.nodes,
          progress,
          true,
        );
        if (sent === undefined) return false;
        ahead.commits.push(sent.committed);
      }
      return this.#live.holds(state);
    } finally {
      this.#ahead = outer;
    }
  }

  /**
   * Writes the changed nodes' latest values and metadata (`nodes`, whose
   * ids are `changed`; the list of nodes with the added ones, and the
   * replayed), and notifies; the
   * promise settles once Redis has them (a failure is the commit's).
   */
  #writeLatest(
    nodes: readonly LiveNode[],
    changed: ReadonlySet<string>,
    added: readonly string[],
    replayed: ReadonlySet<string>,
    now: number,
  ): Promise<void> {
    const writer = this.#live.latestWriter;
    // Nodes whose metadata was written too, and the others: a dashboard
    // reads a node's metadata again only when told it changed.
    const withMetadata: string[] = [];
    const latestOnly: string[] = [];
    for (const node of nodes) {
      const { windows } = node;
      const id = windows.nodeId;
      // A record made when asked: once.
      const latest = windows.latest;
      writer.writeNode({
        nodeId: id,
        metrics: NO_METRICS,
        ...(latest !== undefined && { latest: packedLatest(latest) }),
        ...(windows.metadataChanged && { metadata: metadataHash(id, windows.metadata) }),
      });
      (windows.metadataChanged ? withMetadata : latestOnly).push(id);
      windows.metadataChanged = false;
      this.#rounds.owe(node);
    }
    writer.listNodes(replayed.size === 0 ? added : [...added, ...replayed]);
    const at = isoTime(now);
    if (withMetadata.length > 0)
      writer.notify({ cause: 'readings', keys: 'latest', at, nodes: withMetadata });
    if (latestOnly.length > 0)
      writer.notify({ cause: 'readings', keys: 'latest-only', at, nodes: latestOnly });
    const written = this.#live
      .persist(() => writer.flush(), 'read model')
      .then(() =>
        this.#live.options.onLatestWritten?.(changed, (id) =>
          unlessNaN(this.#live.nodes.get(id)?.windows.latestTime ?? Number.NaN),
        ),
      );
    // Waited for by the commit, which may first wait behind the ones before.
    written.catch(ignore);
    return written;
  }

  /**
   * The detectors see a node's readings of an entry in event-time order: a
   * gateway that sends its buffer newest first would otherwise have all but
   * its newest reading judged late (not examined), and a condition could
   * never be confirmed. Per entry, not per slice or batch: an entry is what
   * every delivery has whole, so a redelivery after a crash sees the same.
   */
  #detect(
    node: LiveNode,
    { byNode, applied }: Scratch,
    work: { detected: Set<string>; events: AnomalyEvent[] },
    from: number,
    to: number,
    budget: number,
  ): number {
    const timestamp = (at: number) => byNode.reading(at).timestamp;
    let start = from;
    // Whole entries' runs of applied[from, to), at least one, until `budget` readings are observed; returns where it stopped.
    do {
      const entry = byNode.entry(applied[start] as number);
      let end = start + 1;
      let inOrder = true;
      for (; end < to && byNode.entry(applied[end] as number) === entry; end++) {
        if (timestamp(applied[end] as number) < timestamp(applied[end - 1] as number)) inOrder = false;
      }
      if (!inOrder) {
        // A stable sort: readings of one event time keep the order they came in.
        const run = applied.slice(start, end).sort((a, b) => timestamp(a) - timestamp(b));
        for (let k = 0; k < run.length; k++) applied[start + k] = run[k] as number;
      }
      for (let k = start; k < end; k++) {
        const observed = node.detector.observe(byNode.reading(applied[k] as number));
        if (observed.examined) work.detected.add(node.windows.nodeId);
        if (observed.events.length > 0) work.events.push(...observed.events);
      }
      start = end;
    } while (start < to && start - from < budget);
    return start;
  }
}

/** A batch's readings not yet applied, reported at each yield to the event loop. */
interface Progress {
  left: number;
  readonly report: ((left: number) => void) | undefined;
}

/** A slice of a batch: its entries, the nodes their readings name, and how many readings. */
interface Slice {
  readonly entries: DeliveredEntry[];
  readonly nodes: Set<string>;
  readings: number;
}

/**
 * Splits a batch's entries, in order, into slices of at most `limit`
 * readings and about SLICE_NODES distinct nodes (an entry holding more than
 * that is a slice of its own). The node bound keeps a slice within what one
 * commit, a script that holds Redis while it runs, writes: 50,000 readings
 * of as many new nodes made scripts long enough for ingest's writes to time
 * out behind them. Entries moved from the catch-up lane start a slice of
 * their own.
 */
function slicesOf(entries: readonly DeliveredEntry[], limit: number): Slice[] {
  const slices: Slice[] = [];
  let slice: Slice = { entries: [], nodes: new Set(), readings: 0 };
  let caughtUp = false;
  const cut = () => {
    slices.push(slice);
    slice = { entries: [], nodes: new Set(), readings: 0 };
  };
  for (const entry of entries) {
    const held = 'readings' in entry ? entry.readings : [];
    // The stream's own entries before what came from the catch-up lane, in a
    // slice of their own: their keys are written before the backlog is applied.
    const fromLane = 'readings' in entry && entry.fromLane === true;
    if (slice.entries.length > 0 && fromLane && !caughtUp) cut();
    caughtUp = fromLane;
    const nodes = slice.nodes;
    if (
      slice.entries.length > 0 &&
      (slice.readings + held.length > limit || nodes.size + held.length > SLICE_NODES)
    ) {
      // The node count is only checked when it could pass the bound.
      let fits = slice.readings + held.length <= limit;
      if (fits) {
        const seen = new Set<string>();
        for (const reading of held) if (!nodes.has(reading.node_id)) seen.add(reading.node_id);
        fits = nodes.size + seen.size <= SLICE_NODES;
      }
      if (!fits) cut();
    }
    slice.entries.push(entry);
    slice.readings += held.length;
    for (const reading of held) slice.nodes.add(reading.node_id);
  }
  if (slice.entries.length > 0) slices.push(slice);
  return slices;
}

/** Whether a batch has readings of a node `matches`. */
export function namesNode(batch: DeliveredBatch, matches: (node: string) => boolean): boolean {
  for (const entry of batch.entries) {
    if (!('readings' in entry)) continue;
    for (const reading of entry.readings) if (matches(reading.node_id)) return true;
  }
  return false;
}

/**
 * Entries read beside a batch (those deferred before first, then a live
 * batch's, in order) that may go ahead of the slices in hand (`now`), and
 * those that must follow them (`later`): an entry naming a node `held`, or
 * a node of an entry that stays, stays too, so that each node's readings
 * keep their order. Entries of other nodes are not held up: a catch-up's
 * backlog that reached the stream (before the lane took it, or once the
 * lane had emptied) would otherwise hold every live reading after it
 * behind the chunk.
 */
function splitAhead(
  entries: readonly DeliveredEntry[],
  held: (node: string) => boolean,
): { readonly now: DeliveredEntry[]; readonly later: DeliveredEntry[] } {
  const now: DeliveredEntry[] = [];
  const later: DeliveredEntry[] = [];
  const waiting = new Set<string>();
  for (const entry of entries) {
    const readings = 'readings' in entry ? entry.readings : [];
    if (!readings.some((r) => waiting.has(r.node_id) || held(r.node_id))) {
      now.push(entry);
      continue;
    }
    later.push(entry);
    for (const reading of readings) waiting.add(reading.node_id);
  }
  return { now, later };
}

/** Whether a node has readings in a slice in hand (the one being applied, or a later one). */
function inHand(ahead: Ahead, node: string): boolean {
  for (let i = ahead.at; i < ahead.slices.length; i++) {
    if ((ahead.slices[i] as Slice).nodes.has(node)) return true;
  }
  return false;
}

/** Dead letters are errors; failed entries that will be retried, warnings. */
function logEntries(logger: Logger, stream: string, sorted: Triage): void {
  for (const dead of sorted.dead) logger.error({ stream, ...dead }, 'entry dead-lettered');
  for (const failure of sorted.failures) {
    logger.warn({ stream, ...failure }, 'entry failed; it stays pending and will be delivered again');
  }
}
