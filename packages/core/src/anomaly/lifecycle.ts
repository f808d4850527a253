import {
  type AnomalyEvent,
  type AnomalyRecord,
  type AnomalyType,
  type Breach,
  DEMOTED,
  type PendingAnomaly,
  SELF_CONFIRMING,
  SEVERITY,
} from './types.ts';

/** The types whose rules ran: a Set of them, or the detectors' EvaluatedTypes. */
export interface Evaluated {
  forEach(visit: (type: AnomalyType) => void): void;
}

/** What most readings cause: one frozen array for all, not a new one each. */
export const NO_EVENTS: readonly AnomalyEvent[] = Object.freeze([]);
/** What a lifecycle with nothing open, or nothing pending, lists. */
const NO_OPEN: ReadonlyMap<AnomalyType, AnomalyRecord> = new Map();
const NO_PENDING: ReadonlyMap<AnomalyType, PendingAnomaly> = new Map();

/**
 * Opens, extends and closes one node's anomalies. Breaches of a type are
 * confirmed first: `confirmReadings` breaching readings in a row (one
 * reading is a glitch as often as an event), or one breach of a rule that
 * is persistence by construction; and for a statistical rule, one reading
 * of the run must have been unlikely (a material deviation this node
 * shows every day is not news). A confirmed run opens a record dated
 * from its first breach, with its type's severity when a breach of the run
 * was strong and one level lower otherwise. Further breaches extend it; a
 * type whose rule ran and found no breach starts its clear time, and the
 * record closes once it has been clear for `clearMs` (hysteresis): a value
 * wobbling around a threshold stays one anomaly instead of flapping.
 */
export class AnomalyLifecycle {
  /**
   * Made on a node's first pending run and dropped once empty again: two
   * empty Maps were ~0.35 KB of every node, and most nodes have nothing
   * open or pending most of the time.
   */
  #open: Map<AnomalyType, AnomalyRecord> | undefined;
  #pending: Map<AnomalyType, PendingAnomaly> | undefined;
  readonly #nodeId: string;
  readonly #clearMs: number;
  readonly #confirmReadings: number;

  constructor(
    nodeId: string,
    options: { readonly clearMs: number; readonly confirmReadings: number },
    open: Iterable<AnomalyRecord> = [],
    pending: Iterable<PendingAnomaly> = [],
  ) {
    this.#nodeId = nodeId;
    this.#clearMs = options.clearMs;
    this.#confirmReadings = options.confirmReadings;
    for (const record of open) this.#setOpen(record);
    for (const run of pending) this.#setPending(run);
  }

  get open(): ReadonlyMap<AnomalyType, AnomalyRecord> {
    return this.#open ?? NO_OPEN;
  }

  get pending(): ReadonlyMap<AnomalyType, PendingAnomaly> {
    return this.#pending ?? NO_PENDING;
  }

  /** Nothing open or pending: a reading without a breach changes nothing. */
  get idle(): boolean {
    return this.#open === undefined && this.#pending === undefined;
  }

  #setOpen(record: AnomalyRecord): void {
    this.#open ??= new Map();
    this.#open.set(record.type, record);
  }

  #setPending(run: PendingAnomaly): void {
    this.#pending ??= new Map();
    this.#pending.set(run.type, run);
  }

  #deleteOpen(type: AnomalyType): void {
    if (this.#open?.delete(type) === true && this.#open.size === 0) this.#open = undefined;
  }

  #deletePending(type: AnomalyType): void {
    if (this.#pending?.delete(type) === true && this.#pending.size === 0) this.#pending = undefined;
  }

  /**
   * Applies what the rules found at `at`: `breaches`, and the types they
   * evaluated (a type not evaluated keeps its state: a nightly rule says
   * nothing between nights).
   */
  update(
    at: number,
    breaches: readonly Breach[],
    evaluated: Evaluated,
    reading?: { readonly flow_rate?: number; readonly pressure?: number },
  ): readonly AnomalyEvent[] {
    // Most readings: nothing breached, nothing open or pending.
    if (breaches.length === 0 && this.idle) return NO_EVENTS;
    const events: AnomalyEvent[] = [];
    const byType = new Map<AnomalyType, Breach[]>();
    for (const b of breaches) byType.set(b.type, [...(byType.get(b.type) ?? []), b]);
    for (const [type, found] of byType) {
      const worst = found.reduce((a, b) => (b.score > a.score ? b : a));
      const record = this.open.get(type);
      if (record === undefined) {
        const run = this.#extendPending(type, at, found, worst, reading);
        const confirmed =
          run.unlikely &&
          (run.count >= this.#confirmReadings || found.some((b) => SELF_CONFIRMING.has(b.rule)));
        if (!confirmed) continue;
        this.#deletePending(type);
        const opened: AnomalyRecord = {
          id: `${this.#nodeId}:${type}:${run.since}`,
          node_id: this.#nodeId,
          type,
          severity: run.strong ? SEVERITY[type] : DEMOTED[SEVERITY[type]],
          rules: run.rules,
          opened_at: run.since,
          last_at: at,
          values: run.values,
          expected: { ...worst.expected },
          ...(run.reading && { reading: run.reading }),
        };
        this.#setOpen(opened);
        events.push({ event: 'open', anomaly: { ...opened, values: { ...opened.values } } });
        continue;
      }
      record.last_at = at;
      delete record.clear_since;
      for (const rule of found.map((b) => b.rule)) if (!record.rules.includes(rule)) record.rules.push(rule);
      const v = record.values;
      v.last = worst.value;
      v.min = Math.min(v.min, worst.value);
      v.max = Math.max(v.max, worst.value);
      v.count++;
      record.expected = { ...worst.expected };
    }
    evaluated.forEach((type) => {
      if (byType.has(type)) return;
      this.#deletePending(type);
      const record = this.open.get(type);
      if (record === undefined) return;
      record.clear_since ??= at;
      if (at - record.clear_since >= this.#clearMs) events.push(this.#close(record, at));
    });
    return events;
  }

  /** The unconfirmed run of `type`, started or extended by this reading's breaches. */
  #extendPending(
    type: AnomalyType,
    at: number,
    found: readonly Breach[],
    worst: Breach,
    reading: { readonly flow_rate?: number; readonly pressure?: number } | undefined,
  ): PendingAnomaly {
    let run = this.pending.get(type);
    if (run === undefined) {
      const v = worst.value;
      run = {
        type,
        since: at,
        count: 0,
        strong: false,
        unlikely: false,
        rules: [],
        values: { first: v, last: v, min: v, max: v, count: 0 },
        ...(reading && {
          reading: {
            ...(reading.flow_rate !== undefined && { flow_rate: reading.flow_rate }),
            ...(reading.pressure !== undefined && { pressure: reading.pressure }),
          },
        }),
      };
      this.#setPending(run);
    }
    run.count++;
    for (const b of found) {
      if (b.strong) run.strong = true;
      if (b.unlikely) run.unlikely = true;
      if (!run.rules.includes(b.rule)) run.rules.push(b.rule);
    }
    const v = run.values;
    v.last = worst.value;
    v.min = Math.min(v.min, worst.value);
    v.max = Math.max(v.max, worst.value);
    v.count++;
    return run;
  }

  /** Closes what has been clear long enough by `now` with no new evaluation (the clock moved on). */
  expire(now: number): AnomalyEvent[] {
    const events: AnomalyEvent[] = [];
    for (const record of [...this.open.values()]) {
      if (record.clear_since !== undefined && now - record.clear_since >= this.#clearMs) {
        events.push(this.#close(record, now));
      }
    }
    return events;
  }

  #close(record: AnomalyRecord, at: number): AnomalyEvent {
    this.#deleteOpen(record.type);
    const closed: AnomalyRecord = { ...record, values: { ...record.values }, closed_at: at };
    delete closed.clear_since;
    return { event: 'close', anomaly: closed };
  }
}
