import type { AnomalyEvent } from '@streamgauge/core';
import type { DeadLetter, ShardCommit } from '@streamgauge/redis';
import type { LiveState } from './liveState.ts';

/** What one applied slice owes its shard's commit. */
export interface SliceCommit {
  /** Nodes whose state the slice changed. */
  readonly changed: Iterable<string>;
  /** Nodes the slice created. */
  readonly added: readonly string[];
  readonly acks: readonly string[];
  readonly deadLetters: readonly DeadLetter[];
  readonly failures: readonly { readonly id: string; readonly error: string }[];
  readonly counters: Readonly<Record<string, number>>;
  /** Nodes whose detectors examined a reading: their state is due. */
  readonly detected: Iterable<string>;
  readonly events: readonly AnomalyEvent[];
  readonly readings: number;
  /** Settles once the slice's `latest` keys are written: the commit runs only then. */
  readonly written: Promise<unknown>;
}

/**
 * Slices applied to a shard's state and not yet committed, merged into one
 * commit (ShardOwnership.stage): a node changed by several of them is
 * encoded and written once, from its state when the commit is prepared,
 * and the commit acknowledges every slice's entries, so the state it
 * writes holds exactly the entries it acknowledges.
 */
export class PendingCommit {
  readonly #changed = new Set<string>();
  readonly #detected = new Set<string>();
  /** Nodes only the clock's events bring to the commit (their detectors, not their windows). */
  readonly #clocked = new Set<string>();
  readonly #added: string[] = [];
  readonly #acks: string[] = [];
  readonly #deadLetters: DeadLetter[] = [];
  readonly #failures: { readonly id: string; readonly error: string }[] = [];
  readonly #counters: Record<string, number> = {};
  readonly #events: AnomalyEvent[] = [];
  readonly #written: Promise<unknown>[] = [];
  #readings = 0;
  /** Settles with the commit's outcome (true: done while the shard is held). */
  readonly done: Promise<boolean>;
  #settle!: (outcome: Promise<boolean> | boolean) => void;

  constructor() {
    this.done = new Promise<boolean>((resolve) => {
      this.#settle = resolve;
    });
    // Whoever waits for a slice's commit gets its failure; it is not unhandled here.
    this.done.catch(() => {});
  }

  add(slice: SliceCommit): void {
    for (const id of slice.changed) this.#changed.add(id);
    if (this.#clocked.size > 0) for (const id of slice.changed) this.#clocked.delete(id);
    for (const id of slice.detected) this.#detected.add(id);
    append(this.#added, slice.added);
    append(this.#acks, slice.acks);
    append(this.#deadLetters, slice.deadLetters);
    append(this.#failures, slice.failures);
    append(this.#events, slice.events);
    for (const [name, by] of Object.entries(slice.counters))
      this.#counters[name] = (this.#counters[name] ?? 0) + by;
    this.#written.push(slice.written);
    this.#readings += slice.readings;
  }

  /**
   * Anomaly events the clock raised (ClockTick), and the nodes whose
   * detectors raised them: committed with the slices, from the detectors'
   * state when the commit is prepared, which holds the events.
   */
  addClocked(ids: readonly string[], events: readonly AnomalyEvent[]): void {
    for (const id of ids) {
      this.#detected.add(id);
      if (!this.#changed.has(id)) this.#clocked.add(id);
    }
    append(this.#events, events);
  }

  /** Whether the commit writes this node. */
  has(id: string): boolean {
    return this.#changed.has(id) || this.#clocked.has(id);
  }

  /** Nodes the commit writes. */
  get nodes(): number {
    return this.#changed.size + this.#clocked.size;
  }

  get readings(): number {
    return this.#readings;
  }

  /** Settles once every slice's `latest` keys are written. */
  written(): Promise<unknown> {
    return Promise.all(this.#written);
  }

  /** The commit, from the nodes' state now (their change marks since the last commit). */
  commit(live: LiveState): ShardCommit {
    return {
      changed: [...this.#changed].flatMap((id) => {
        const node = live.nodes.get(id);
        return node ? [node.windows] : [];
      }),
      added: this.#added,
      removed: [],
      group: live.options.group,
      ackIds: this.#acks,
      deadLetters: this.#deadLetters,
      failures: this.#failures,
      counters: this.#counters,
      detectors: live.detectorStates(this.#detected),
      events: this.#events,
    };
  }

  /** Settles `done` with the commit's outcome (false: never sent, the shard is gone). */
  settle(outcome: Promise<boolean> | boolean): void {
    this.#settle(outcome);
  }
}

/** `to.push(...from)` without a call's argument limit (a slice may acknowledge 50,000 entries). */
function append<T>(to: T[], from: readonly T[]): void {
  for (const item of from) to.push(item);
}
