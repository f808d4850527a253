import { type AnomalyEvent, RANGES } from '@streamgauge/core';
import { LeaseLostError } from '@streamgauge/redis';
import { type LiveState, NODE_CHUNK, type ShardState, yieldToLoop } from './liveState.ts';
import type { MetricsRounds } from './metricsRounds.ts';
import { PendingCommit, type SliceCommit } from './pendingCommit.ts';
import type { SystemSums } from './systemSums.ts';

/** Nodes whose detector states one checkpoint commit carries. */
const CHECKPOINT_CHUNK = 500;

/**
 * How long a graceful hand-over spends, per shard, persisting quiet nodes'
 * unsaved learning after the nodes in an anomaly (always all of them): all
 * of it for thousands of nodes, a bounded part at 100,000 (~1 GB), so a
 * stop stays well inside a pod's grace period.
 */
const QUIET_CHECKPOINT_MS = 5_000;

/**
 * Distinct nodes a commit writes at most: at ~5–12 µs of Redis a node as
 * a script (~2–5 as a transaction), a commit of 20,000 holds Redis
 * 100–250 ms (a script or a transaction holds every client).
 */
export const COMMIT_NODES = 20_000;

/** Readings a commit acknowledges at most, however few nodes they touch. */
export const COMMIT_READINGS = 250_000;

/**
 * Commits of a shard on their way at once (one running, the next prepared
 * behind it): a slice that fills the pending one while this many are
 * waits for the oldest. Each prepared commit holds its encoded bytes (~40
 * MB for 10,000 nodes). With one, the slice that filled a commit waited
 * for the one running, and the shard's loop with it: 0.2–1.8 s a time
 * while a catch-up's backlog was appended, and every live reading behind
 * it (docs/benchmarks.md, "Room for a chunk"); with two, the next commit
 * is on its way as the one running ends.
 */
const COMMITS_SENT = 2;

/**
 * After a commit, a shard's next one waits this many times as long as that
 * one took (its encoding here and its round trip: since commits go as
 * transactions the round trip is the smaller part, and counting it alone
 * made commits more frequent and the aggregator busier; see stage), and
 * never longer than MAX_LINGER_MS. At 50,000
 * readings/s over 10,000 nodes, 8 against 3 and 1: Redis 45 % of a core
 * against 47–49 and 53, freshness p50 57–133 ms against 115–152 and 224–378
 * (docs/benchmarks.md, "Commits that wait for each other").
 */
const LINGER_FACTOR = 8;
const MAX_LINGER_MS = 1_000;

/**
 * The aggregator's side of the lease rules (LeaseKeeper decides which shards
 * to hold): taking a shard over and letting it go, which acquisition is the
 * current one (LiveState.holds, changed only here), and what a refused commit
 * means (the lease was lost: the acquisition's state is dropped, never
 * committed).
 */
export class ShardOwnership {
  readonly #live: LiveState;
  readonly #rounds: MetricsRounds;
  readonly #sums: SystemSums;
  /** Per acquisition, its last commit sent (resolving false once the shard is no longer held). */
  readonly #inFlight = new Map<ShardState, Promise<boolean>>();
  /** Per acquisition, the slices applied and not yet sent (see stage). */
  readonly #pending = new Map<ShardState, PendingCommit>();
  /** Per acquisition, the earliest moment (performance.now) its next pending commit goes. */
  readonly #lingerUntil = new Map<ShardState, number>();
  /** Acquisitions whose pending commit is already due to be sent (a timer, or behind the commit in flight). */
  readonly #waking = new Set<ShardState>();
  /**
   * Per acquisition, its slices being applied (a live slice may be applied
   * while a lane chunk's is, BatchApplier's overtaking): their state is
   * ahead of what is pending, and nothing may be prepared.
   */
  readonly #applying = new Map<ShardState, number>();
  /** Per acquisition, the commits sent and not done yet, oldest first. */
  readonly #sent = new Map<ShardState, Promise<boolean>[]>();
  /** Per acquisition, the last pending commit sent (its slices' outcomes are counted when it settles). */
  readonly #lastSent = new Map<ShardState, Promise<boolean>>();
  /** Acquisitions whose commit failed (not refused): nothing more of theirs is committed. */
  readonly #failed = new Map<ShardState, { readonly error: unknown }>();
  readonly #commitReadings: number;

  constructor(live: LiveState, rounds: MetricsRounds, sums: SystemSums) {
    this.#live = live;
    this.#rounds = rounds;
    this.#sums = sums;
    this.#commitReadings = live.options.commitReadings ?? COMMIT_READINGS;
  }

  /**
   * Takes over a shard: loads its persisted state and rewrites its nodes'
   * keys from it (they may have expired meanwhile, or been written by a
   * replica that died before committing).
   */
  async acquire(state: ShardState): Promise<void> {
    const live = this.#live;
    const { options, writer } = live;
    const [loaded, applied] = await live.persist(
      () => Promise.all([state.store.load(options.aheadMs), state.store.appliedThrough()]),
      'state (loading)',
    );
    live.shards.set(state.shard.stream, state);
    if (applied !== undefined) live.applied.set(state, applied);
    else if (loaded.size > 0) {
      // State persisted before the applied mark existed: an empty commit sets
      // it from the group's position, as every commit does.
      const empty = { changed: [], added: [], removed: [], ackIds: [], deadLetters: [], failures: [] };
      const prepared = () => state.store.prepare({ ...empty, group: options.group, counters: {} });
      if (!(await this.commit(state, prepared))) return;
    }
    const now = options.clock.now();
    const nodes = [...loaded];
    for (let from = 0; from < nodes.length; from += NODE_CHUNK) {
      if (from > 0) {
        // A chunk at a time, each written out before the next, yielding in
        // between: a lease lost meanwhile stops the acquisition (the drop
        // took the nodes loaded so far).
        await live.persist(() => writer.flush(), 'read model');
        await yieldToLoop();
        if (!live.holds(state)) {
          options.logger.warn({ stream: state.shard.stream }, 'shard lost while it was being acquired');
          return;
        }
      }
      for (const [id, { windows, detector }] of nodes.slice(from, from + NODE_CHUNK)) {
        live.nodes.set(id, { windows, shard: state, detector: live.detector(id, detector), owedIn: 0 });
        this.#rounds.writeNode(id, now, RANGES, { series: true, identity: true });
      }
    }
    writer.listNodes(loaded.keys());
    await live.persist(() => writer.flush(), 'read model');
    await this.#sums.write(RANGES, now);
    options.logger.info({ stream: state.shard.stream, nodes: loaded.size }, 'shard acquired');
  }

  /**
   * Lets go of a shard. Gracefully (another replica is to take it) its keys
   * are written out first; after a lost lease its state is just dropped (it
   * may hold changes that were never committed).
   */
  async release(state: ShardState, graceful: boolean): Promise<void> {
    if (!this.#live.holds(state)) return;
    if (graceful) {
      // The lease is given up once this returns: a commit still in flight would then be refused.
      await this.committed(state);
      await this.#rounds.flush();
      await this.checkpoint(state);
    }
    this.forget(state);
    this.#live.options.logger.info({ stream: state.shard.stream, graceful }, 'shard released');
  }

  /**
   * After a shard's pending entries are done: every entry the group has
   * delivered is applied (or dead-lettered, or failed), so the keys, once
   * written, reflect the stream up to the group's position.
   */
  async settle(state: ShardState): Promise<void> {
    if (!(await this.committed(state))) return;
    const delivered = await this.#live.persist(
      () => state.store.lastDelivered(this.#live.options.group),
      'group position',
    );
    if (delivered !== undefined) this.#live.advance(state, delivered);
    await this.#rounds.flush();
  }

  /**
   * Commits what a graceful hand-over owes of the detectors: first the
   * unsaved state of every node with an anomaly open or pending
   * (NodeDetector.checkpoint), so the next holder goes on exactly from
   * there; then, for QUIET_CHECKPOINT_MS at most, every other node's unsaved
   * learning, so a restart changes nothing where it has the time (what is
   * left is logged). CHECKPOINT_CHUNK nodes per commit (a state is ~10 KB),
   * yielding in between.
   */
  async checkpoint(state: ShardState): Promise<void> {
    const live = this.#live;
    const ids: string[] = [];
    for (const [id, node] of live.nodes) if (node.shard === state) ids.push(id);
    if (!(await this.#checkpointChunks(state, ids, false))) return;
    const until = performance.now() + QUIET_CHECKPOINT_MS;
    for (let from = 0; from < ids.length; from += CHECKPOINT_CHUNK) {
      if (performance.now() > until) {
        live.options.logger.info(
          { stream: state.shard.stream, nodes: ids.length - from },
          "hand-over: quiet nodes' latest detector learning left unsaved (out of time)",
        );
        return;
      }
      if (!(await this.#checkpointChunks(state, ids.slice(from, from + CHECKPOINT_CHUNK), true))) return;
    }
  }

  /** Commits the detector states these nodes owe (every unsaved one with `everything`); false once the shard is gone. */
  async #checkpointChunks(state: ShardState, ids: readonly string[], everything: boolean): Promise<boolean> {
    const live = this.#live;
    for (let from = 0; from < ids.length; from += CHECKPOINT_CHUNK) {
      if (!live.holds(state)) return false;
      // What is pending takes its nodes' detector states first.
      this.#send(state);
      const detectors = live.detectorStates(ids.slice(from, from + CHECKPOINT_CHUNK), true, everything);
      if (detectors.size === 0) continue;
      const commit = () =>
        state.store.prepare({
          changed: [],
          added: [],
          removed: [],
          group: live.options.group,
          ackIds: [],
          deadLetters: [],
          failures: [],
          counters: {},
          detectors,
        });
      if (!(await this.commit(state, commit))) return false;
      await yieldToLoop();
    }
    return true;
  }

  /** Forgets a shard at once (its lease is gone): its state may hold uncommitted changes. */
  drop(state: ShardState): void {
    if (this.#live.holds(state)) this.forget(state);
  }

  /** Forgets everything of `state` (an acquisition that may no longer be the held one). */
  forget(state: ShardState): void {
    const live = this.#live;
    if (live.holds(state)) live.shards.delete(state.shard.stream);
    live.committed.delete(state);
    live.applied.delete(state);
    this.#pending.get(state)?.settle(false);
    this.#pending.delete(state);
    this.#lingerUntil.delete(state);
    this.#applying.delete(state);
    this.#lastSent.delete(state);
    const forgotten: string[] = [];
    for (const [id, node] of live.nodes) {
      if (node.shard !== state) continue;
      live.forget(id);
      forgotten.push(id);
    }
    this.#rounds.forgetShard(state, forgotten);
  }

  /**
   * Makes room for a slice naming `nodes` with `readings` readings, before
   * it is applied: once applied, it can only be committed with what is
   * pending, so what is pending goes first if the slice could take it past
   * COMMIT_NODES or COMMIT_READINGS. Resolves once that one is sent
   * (#sendInTurn): false when the shard is no longer held.
   */
  room(state: ShardState, nodes: ReadonlySet<string>, readings: number): Promise<boolean> {
    const pending = this.#pending.get(state);
    let full = pending !== undefined && pending.readings + readings > this.#commitReadings;
    if (pending !== undefined && !full && pending.nodes + nodes.size > COMMIT_NODES) {
      let added = 0;
      for (const id of nodes) if (!pending.has(id)) added++;
      full = pending.nodes + added > COMMIT_NODES;
    }
    return full ? this.#sendInTurn(state) : this.#held(state);
  }

  /**
   * Whether slices of `readings` more, applied now, would fill the pending
   * commit while COMMITS_SENT are on their way: the slice that fills it
   * waits for the oldest of them (room, stage), and the shard's loop with it.
   */
  wouldWait(state: ShardState, readings: number): boolean {
    if ((this.#sent.get(state)?.length ?? 0) < COMMITS_SENT) return false;
    return (this.#pending.get(state)?.readings ?? 0) + readings >= this.#commitReadings;
  }

  /**
   * A slice is being applied to the shard's state: until it is staged, no
   * commit of the shard may be prepared (it would write state whose entries
   * it does not acknowledge).
   */
  applying(state: ShardState): void {
    this.#applying.set(state, (this.#applying.get(state) ?? 0) + 1);
  }

  /**
   * Stages an applied slice's commit: slices applied while a commit runs,
   * or soon after, are merged and committed together (PendingCommit). A
   * shard's next commit goes LINGER_FACTOR times the last one's duration
   * after it ended (at most MAX_LINGER_MS), or at once when the pending
   * commit reaches COMMIT_NODES nodes or COMMIT_READINGS readings, or
   * when anyone waits for it (committed, a commit of the shard's own).
   *
   * Why: at thousands of readings a second per thousand nodes, every read's
   * slice holds most of a shard's nodes, and each node commit cost Redis
   * 5–12 µs and the aggregator a head's encoding whatever the readings it
   * carried; a commit is durability, not freshness (`latest` is written per
   * slice), and an idle shard's commit still goes at once. `committed`
   * resolves with the outcome of the commit that holds the slice; `before`
   * once it is sent when the slice filled it (#sendInTurn: the next read
   * waits for it), at once when it stays pending.
   */
  stage(
    state: ShardState,
    slice: SliceCommit,
  ): { readonly committed: Promise<boolean>; readonly before: Promise<boolean> } {
    const applying = (this.#applying.get(state) ?? 1) - 1;
    if (applying > 0) this.#applying.set(state, applying);
    else this.#applying.delete(state);
    const pending = this.#pendingOf(state);
    pending.add(slice);
    const committed = pending.done;
    if (this.#full(pending)) return { committed, before: this.#sendInTurn(state) };
    this.#schedule(state);
    return { committed, before: this.#held(state) };
  }

  /**
   * Stages anomaly events the clock raised on the shard's nodes with its
   * pending commit (PendingCommit.addClocked), which goes as a slice's
   * does. Not a commit of their own: that one would have to send what is
   * pending first, from the state the slices left, before the clock moved
   * the detectors, and a sweep's step every few batches then cut the
   * slices' commits apart, each encoding the shard's nodes again (with
   * 10,000 nodes catching up, the clock's share of the aggregator rose to
   * 21–41 % for 14 s after each minute, 80 % of it those commits; see
   * docs/benchmarks.md). Resolves with the outcome of the commit that holds them.
   */
  stageClocked(state: ShardState, ids: readonly string[], events: readonly AnomalyEvent[]): Promise<boolean> {
    const pending = this.#pendingOf(state);
    pending.addClocked(ids, events);
    if (this.#full(pending)) this.#send(state);
    else this.#schedule(state);
    return pending.done;
  }

  #pendingOf(state: ShardState): PendingCommit {
    let pending = this.#pending.get(state);
    if (pending === undefined) {
      pending = new PendingCommit();
      this.#pending.set(state, pending);
    }
    return pending;
  }

  #full(pending: PendingCommit): boolean {
    return pending.nodes >= COMMIT_NODES || pending.readings >= this.#commitReadings;
  }

  /**
   * Prepares a commit of the shard's own (`prepare` encodes it from the
   * state now, and returns what runs it) once what is pending is sent, so
   * that it sees the detectors' state after that commit took its part, and
   * runs it once the shard's previous commits are done: a shard's commits
   * never overtake each other, and none runs after one was refused or
   * failed. False when the shard is no longer held: the lease was lost (the
   * commit was refused), or it was dropped meanwhile. Either way everything
   * of this acquisition is forgotten, and a refused commit is never
   * retried: the holder applies the entries instead.
   */
  commit(state: ShardState, prepare: () => () => Promise<string | undefined>): Promise<boolean> {
    this.#send(state);
    return this.#chain(state, prepare());
  }

  /**
   * The shard's last commit, once it is done and its slices' outcomes are
   * counted (what is pending is sent first): true while the shard is held.
   * Rejects with a commit's failure (one that ends the pipeline).
   */
  committed(state: ShardState): Promise<boolean> {
    this.#send(state);
    const failure = this.#failed.get(state);
    if (failure !== undefined) return Promise.reject(failure.error);
    const inFlight = this.#inFlight.get(state);
    const sent = this.#lastSent.get(state);
    if (inFlight === undefined && sent === undefined) return Promise.resolve(this.#live.holds(state));
    // After the handlers the slices put on their commit (the committed
    // position advances there): a reconcile reads it next.
    return Promise.all([inFlight, sent]).then(() => inFlight ?? (sent as Promise<boolean>));
  }

  /**
   * Sends every shard's pending commit now (but one whose slice is half
   * applied, which goes when the slice is staged): before the clock moves
   * the detectors or forgets nodes, the slices applied before it are
   * committed from the state they left.
   */
  sendPending(): void {
    for (const state of [...this.#pending.keys()]) this.#send(state);
  }

  /** Every shard's commits, pending ones sent, once they are done (rejects with the first failure). */
  async allCommitted(): Promise<void> {
    this.sendPending();
    await Promise.all([...this.#inFlight.values(), ...this.#lastSent.values()]);
    for (const failure of this.#failed.values()) throw failure.error;
  }

  /**
   * Sends the pending commit behind those on their way: at once while fewer
   * than COMMITS_SENT are, otherwise once the oldest of them is done.
   * Resolves once it is sent (`#held`); the caller applies nothing more
   * meanwhile, so the commit holds exactly the slices staged.
   */
  #sendInTurn(state: ShardState): Promise<boolean> {
    const sent = this.#sent.get(state);
    if (this.#failed.has(state) || sent === undefined || sent.length < COMMITS_SENT) {
      this.#send(state);
      return this.#held(state);
    }
    return (sent[0] as Promise<boolean>).then(() => {
      this.#send(state);
      return this.#held(state);
    });
  }

  /** What a slice left pending waits for: nothing, but a failure rejects; false once the shard is not held. */
  #held(state: ShardState): Promise<boolean> {
    const failure = this.#failed.get(state);
    if (failure !== undefined) return Promise.reject(failure.error);
    return Promise.resolve(this.#live.holds(state));
  }

  #chain(state: ShardState, commit: () => Promise<string | undefined>): Promise<boolean> {
    const failure = this.#failed.get(state);
    if (failure !== undefined) return Promise.reject(failure.error);
    const previous = this.#inFlight.get(state);
    const sent =
      previous === undefined
        ? this.#run(state, commit)
        : previous.then((held) => (held ? this.#run(state, commit) : this.#behindRefused(state)));
    this.#inFlight.set(state, sent);
    const queue = this.#sent.get(state) ?? [];
    queue.push(sent);
    this.#sent.set(state, queue);
    const done = () => {
      queue.splice(queue.indexOf(sent), 1);
      if (queue.length === 0 && this.#sent.get(state) === queue) this.#sent.delete(state);
    };
    sent.then(done, done);
    sent.then(
      () => {
        if (this.#inFlight.get(state) === sent) this.#inFlight.delete(state);
      },
      (error: unknown) => {
        // Nothing of this shard runs after a failure (it ends the pipeline):
        // a later commit would write state holding this one's readings
        // without acknowledging their entries.
        if (!this.#failed.has(state)) this.#failed.set(state, { error });
        this.#pending.get(state)?.settle(Promise.reject(error));
        this.#pending.delete(state);
      },
    );
    return sent;
  }

  /** Sends the pending commit once nothing is in flight and its linger is over. */
  #schedule(state: ShardState): void {
    if (!this.#pending.has(state) || this.#waking.has(state)) return;
    const inFlight = this.#inFlight.get(state);
    const wait = (this.#lingerUntil.get(state) ?? 0) - performance.now();
    if ((inFlight === undefined && wait <= 0) || this.#failed.has(state)) {
      this.#send(state);
      return;
    }
    this.#waking.add(state);
    const wake = () => {
      this.#waking.delete(state);
      this.#schedule(state);
    };
    if (inFlight !== undefined) inFlight.then(wake, wake);
    else setTimeout(wake, wait);
  }

  /**
   * Prepares the pending commit from the state now and sends it behind the
   * one in flight. Not while a slice is being applied: `stage` sends it then.
   */
  #send(state: ShardState): void {
    const pending = this.#pending.get(state);
    if (pending === undefined || this.#applying.has(state)) return;
    this.#pending.delete(state);
    const failure = this.#failed.get(state);
    if (failure !== undefined) {
      pending.settle(Promise.reject(failure.error));
      return;
    }
    this.#lastSent.set(state, pending.done);
    let prepared: () => Promise<string | undefined>;
    const encodingStarted = performance.now();
    try {
      prepared = state.store.prepare(pending.commit(this.#live));
    } catch (error) {
      this.#failed.set(state, { error });
      pending.settle(Promise.reject(error));
      return;
    }
    // The commit's cost is its encoding here and its round trip, both.
    const encoding = performance.now() - encodingStarted;
    const written = pending.written();
    pending.settle(
      this.#chain(state, async () => {
        await written;
        const started = performance.now();
        try {
          return await prepared();
        } finally {
          const ended = performance.now();
          this.#lingerUntil.set(
            state,
            ended + Math.min(MAX_LINGER_MS, LINGER_FACTOR * (encoding + ended - started)),
          );
        }
      }),
    );
  }

  /** A commit behind a refused one is not sent; nodes this acquisition created meanwhile are forgotten too. */
  #behindRefused(state: ShardState): false {
    this.forget(state);
    return false;
  }

  async #run(state: ShardState, commit: () => Promise<string | undefined>): Promise<boolean> {
    const live = this.#live;
    try {
      const mark = await live.persist(commit, 'state');
      if (!live.holds(state)) {
        // Dropped while the commit was in flight: nodes it created since are forgotten too.
        this.forget(state);
        return false;
      }
      if (mark !== undefined) live.applied.set(state, mark);
      return true;
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
      const held = live.holds(state);
      this.forget(state);
      // Reported once: a shard dropped already (its lease seen expired) may be held again under a new acquisition.
      if (held) {
        live.options.logger.warn(
          { stream: state.shard.stream },
          'lease lost to another replica; dropping the shard',
        );
        live.options.onLeaseLost?.(state.shard);
      }
      return false;
    }
  }
}
