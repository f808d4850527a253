import { type AnomalyEvent, isoTime, RANGES, type Range, windowBounds } from '@streamgauge/core';
import type { LiveState, ShardState } from './liveState.ts';
import type { MetricsRounds } from './metricsRounds.ts';
import type { ShardOwnership } from './shardOwnership.ts';
import type { SystemSums } from './systemSums.ts';

/**
 * Nodes a step of the clock's sweep goes through: at ~10–60 µs a node (the
 * full ranges and the series are due hourly), a step holds the loop, and the
 * batches waiting behind it, for at most a few tens of ms.
 */
export const SWEEP_CHUNK = 500;

/** A step of the clock's sweep. */
export interface ClockStep {
  /** The ranges re-evaluated, once the sweep is done; undefined while it goes on. */
  readonly ranges: Range[] | undefined;
  /**
   * Settles once the step's keys and commits (and, at the end of the sweep,
   * the system metrics) are written; rejects with a failure that ends the pipeline.
   */
  readonly written: Promise<void>;
}

/** A pass of the clock over every node, a step at a time. */
interface Sweep {
  readonly due: Range[];
  readonly hourly: boolean;
  readonly all: boolean;
  readonly ids: string[];
  from: number;
  /** The commits its steps' anomaly events were staged with (ShardOwnership.stageClocked). */
  readonly staged: Promise<boolean>[];
}

/** The clock's part: windows slide, anomalies close, silent nodes are forgotten, with no reading arriving. */
export class ClockTick {
  readonly #live: LiveState;
  readonly #ownership: ShardOwnership;
  readonly #rounds: MetricsRounds;
  readonly #sums: SystemSums;
  /** Per range, the pane it was last evaluated in. */
  readonly #evaluatedPane = new Map<Range, number>();
  /** The sweep in progress. */
  #sweep: Sweep | undefined;
  /** The last step's writes (see `settled`). */
  #written: Promise<void> = Promise.resolve();

  constructor(live: LiveState, ownership: ShardOwnership, rounds: MetricsRounds, sums: SystemSums) {
    this.#live = live;
    this.#ownership = ownership;
    this.#rounds = rounds;
    this.#sums = sums;
  }

  /**
   * Slides the windows with the clock: re-evaluates, for every node, the
   * ranges whose current pane changed since they were last evaluated, so a
   * silent node's metrics empty out with no reading arriving. Hourly, nodes
   * with nothing left in any window are forgotten.
   *
   * A call takes one step of SWEEP_CHUNK nodes (`ranges` undefined while
   * the sweep goes on): the caller runs the batches that are waiting, then
   * calls again. A pass over 100,000 nodes holds the loop for seconds, and
   * freshness (`latest`) would wait that long behind it every minute. Each
   * step is evaluated at its own time and stages its nodes' events with the
   * shard's pending commit, in order with the batches' (or, when it forgets
   * nodes, commits them itself), so a batch in between never sees its
   * events overtaken by older ones.
   *
   * A step's writes and commits are sent, not waited for (`written`): they
   * queue behind the metrics chunk in flight, and waiting for them held the
   * batches behind the step for 40–260 ms at 100,000 nodes, five times the
   * step's own work. Sent in order, they keep their order.
   */
  tick(all = false): ClockStep {
    const sweep = this.#sweep ?? this.#start(all);
    if (sweep === undefined) return { ranges: [], written: Promise.resolve() };
    const live = this.#live;
    const now = live.options.clock.now();
    const step = sweep.ids.slice(sweep.from, sweep.from + SWEEP_CHUNK);
    sweep.from += step.length;
    // A step that forgets nodes deletes their state in a commit of its own:
    // the batches' commits still pending go first, from the state they left
    // (before the step moves the detectors). Otherwise its events go with
    // what is pending (see ShardOwnership.stageClocked).
    const silent = sweep.hourly
      ? new Set(step.filter((id) => live.nodes.get(id)?.windows.isSilent(now) === true))
      : undefined;
    const forgets = silent !== undefined && silent.size > 0;
    if (forgets) this.#ownership.sendPending();
    const forgotten = new Map<ShardState, string[]>();
    // Silence and hysteresis are seen by the clock: offline nodes, anomalies clear long enough to close.
    const clocked = new Map<ShardState, Map<string, AnomalyEvent[]>>();
    for (const id of step) {
      const node = live.nodes.get(id);
      if (node === undefined) continue;
      const events = node.detector.tick(now);
      if (events.length > 0) {
        const nodes = clocked.get(node.shard) ?? new Map<string, AnomalyEvent[]>();
        nodes.set(id, events);
        clocked.set(node.shard, nodes);
      }
      if (silent?.has(id) === true) {
        live.forget(id);
        const list = forgotten.get(node.shard);
        if (list === undefined) forgotten.set(node.shard, [id]);
        else list.push(id);
        continue;
      }
      this.#rounds.writeNode(id, now, sweep.due, { series: sweep.due.includes('7d'), identity: false });
      // Hourly, latest and metadata are rewritten too, which renews their TTL:
      // on the connection batches write `latest` on, so that a batch after
      // this step lands after it (the metrics connection may be seconds behind).
      if (sweep.hourly) this.#rounds.writeIdentity(id, live.latestWriter);
    }
    const removed = [...forgotten.values()].flat();
    if (removed.length > 0) {
      live.writer.unlistNodes(removed);
      live.options.logger.info({ nodes: removed.length }, 'forgot nodes silent for 30 days');
    }
    if (!forgets) {
      for (const [state, nodes] of clocked) {
        if (!live.holds(state)) continue;
        sweep.staged.push(this.#ownership.stageClocked(state, [...nodes.keys()], [...nodes.values()].flat()));
      }
    }
    const keys = Promise.all([
      live.persist(() => live.writer.flush(), 'read model'),
      sweep.hourly && live.persist(() => live.latestWriter.flush(), 'read model'),
      forgets && this.#commitStep(forgotten, clocked),
    ]);
    // A step waits for its keys, not for the commit its events were staged
    // with (it may linger for the batches to come); the sweep's end waits
    // for all of them.
    if (sweep.from < sweep.ids.length) return this.#step(undefined, keys);

    this.#sweep = undefined;
    // Hourly (and at start) every node is listed again: cheap, and it repairs a
    // `nodes:all` that expired or was deleted.
    if (sweep.all || sweep.hourly) live.writer.listNodes(live.nodes.keys());
    live.writer.notify({ cause: 'clock', at: isoTime(now), ranges: sweep.due });
    const listed = live.persist(() => live.writer.flush(), 'read model');
    // Summed once every node's keys are written, from the state then: a
    // round's merge in between must not be overtaken by older sums.
    return this.#step(
      sweep.due,
      Promise.all([keys, listed, ...sweep.staged]).then(() => this.#sums.write(sweep.due, now)),
    );
  }

  #step(ranges: Range[] | undefined, written: Promise<unknown>): ClockStep {
    const step = { ranges, written: written.then(() => {}) };
    this.#written = step.written.catch(() => {});
    return step;
  }

  /**
   * Settles once the last step's writes are done (never rejects: a failure
   * is the step's to raise). A graceful release, a reconcile and a stop
   * wait for it: those writes must not land after theirs.
   */
  settled(): Promise<void> {
    return this.#written;
  }

  /** A sweep over every node if a range's pane changed (or `all`); undefined when none did. */
  #start(all: boolean): Sweep | undefined {
    const now = this.#live.options.clock.now();
    const due = RANGES.filter((r) => all || this.#evaluatedPane.get(r) !== windowBounds(r, now).last);
    if (due.length === 0) return undefined;
    for (const r of due) this.#evaluatedPane.set(r, windowBounds(r, now).last);
    const sweep = {
      due,
      hourly: due.includes('30d'),
      all,
      ids: [...this.#live.nodes.keys()],
      from: 0,
      staged: [],
    };
    this.#sweep = sweep;
    return sweep;
  }

  /**
   * Commits the detector states and events of a step that forgets nodes,
   * and deletes the forgotten nodes' state (their last events go with the
   * deletion): a step's nodes per commit.
   */
  #commitStep(
    forgotten: ReadonlyMap<ShardState, string[]>,
    clocked: ReadonlyMap<ShardState, Map<string, AnomalyEvent[]>>,
  ): Promise<unknown> {
    const live = this.#live;
    // Queued now (ShardOwnership.commit keeps a shard's commits in order), done together.
    const commits: Promise<boolean>[] = [];
    for (const state of new Set([...forgotten.keys(), ...clocked.keys()])) {
      if (!live.holds(state)) continue;
      const removed = forgotten.get(state) ?? [];
      const gone = new Set(removed);
      const anomalies = [...(clocked.get(state) ?? [])];
      const commit = () =>
        state.store.prepare({
          changed: [],
          added: [],
          removed,
          group: live.options.group,
          ackIds: [],
          deadLetters: [],
          failures: [],
          counters: {},
          detectors: live.detectorStates(anomalies.filter(([id]) => !gone.has(id)).map(([id]) => id)),
          events: anomalies.flatMap(([, events]) => events),
        });
      commits.push(this.#ownership.commit(state, commit));
    }
    return Promise.all(commits);
  }
}
