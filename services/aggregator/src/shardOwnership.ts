import { RANGES } from '@streamgauge/core';
import { LeaseLostError } from '@streamgauge/redis';
import { type LiveState, NODE_CHUNK, type ShardState, yieldToLoop } from './liveState.ts';
import type { MetricsRounds } from './metricsRounds.ts';
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

  constructor(live: LiveState, rounds: MetricsRounds, sums: SystemSums) {
    this.#live = live;
    this.#rounds = rounds;
    this.#sums = sums;
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
      const prepared = state.store.prepare({ ...empty, group: options.group, counters: {} });
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
        live.nodes.set(id, { windows, shard: state, detector: live.detector(id, detector) });
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
      const detectors = live.detectorStates(ids.slice(from, from + CHECKPOINT_CHUNK), true, everything);
      if (detectors.size === 0) continue;
      const commit = state.store.prepare({
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
    const forgotten: string[] = [];
    for (const [id, node] of live.nodes) {
      if (node.shard !== state) continue;
      live.forget(id);
      forgotten.push(id);
    }
    this.#rounds.forgetShard(state, forgotten);
  }

  /**
   * Runs a prepared commit once the shard's previous one is done (a shard's
   * commits never overtake each other, and none runs after one was
   * refused); false when the shard is no longer held: the lease was lost
   * (the commit was refused), or it was dropped meanwhile. Either way
   * everything of this acquisition is forgotten, and a refused commit is
   * never retried: the holder applies the entries instead.
   */
  commit(state: ShardState, commit: () => Promise<string | undefined>): Promise<boolean> {
    const previous = this.#inFlight.get(state);
    const sent =
      previous === undefined
        ? this.#run(state, commit)
        : previous.then((held) => (held ? this.#run(state, commit) : this.#behindRefused(state)));
    this.#inFlight.set(state, sent);
    const settled = () => {
      if (this.#inFlight.get(state) === sent) this.#inFlight.delete(state);
    };
    // (Also marks a failure as handled here: whoever waits for the commit still gets it.)
    sent.then(settled, settled);
    return sent;
  }

  /**
   * The shard's last commit sent, once it is done: true while the shard is
   * held. Rejects with that commit's failure (one that ends the pipeline).
   */
  committed(state: ShardState): Promise<boolean> {
    return this.#inFlight.get(state) ?? Promise.resolve(this.#live.holds(state));
  }

  /** Every shard's commits in flight, once they are done (rejects with the first failure). */
  async allCommitted(): Promise<void> {
    await Promise.all(this.#inFlight.values());
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
