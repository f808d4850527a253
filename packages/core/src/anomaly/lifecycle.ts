import { type AnomalyEvent, type AnomalyRecord, type AnomalyType, type Breach, SEVERITY } from './types.ts';

/**
 * Opens, extends and closes one node's anomalies. A breach opens a record
 * (or extends the open one of its type); a type whose rule ran and found no
 * breach starts its clear time, and the record closes once it has been
 * clear for `clearMs` (hysteresis): a value wobbling around a threshold
 * stays one anomaly instead of flapping.
 */
export class AnomalyLifecycle {
  readonly open: Map<AnomalyType, AnomalyRecord>;
  readonly #nodeId: string;
  readonly #clearMs: number;

  constructor(nodeId: string, clearMs: number, open: Iterable<AnomalyRecord> = []) {
    this.#nodeId = nodeId;
    this.#clearMs = clearMs;
    this.open = new Map([...open].map((r) => [r.type, r]));
  }

  /**
   * Applies what the rules found at `at`: `breaches`, and the types they
   * evaluated (a type not evaluated keeps its state: a nightly rule says
   * nothing between nights).
   */
  update(
    at: number,
    breaches: readonly Breach[],
    evaluated: ReadonlySet<AnomalyType>,
    reading?: { readonly flow_rate?: number; readonly pressure?: number },
  ): AnomalyEvent[] {
    // Most readings: nothing breached, nothing open.
    if (breaches.length === 0 && this.open.size === 0) return [];
    const events: AnomalyEvent[] = [];
    const byType = new Map<AnomalyType, Breach[]>();
    for (const b of breaches) byType.set(b.type, [...(byType.get(b.type) ?? []), b]);
    for (const [type, found] of byType) {
      const worst = found.reduce((a, b) => (b.score > a.score ? b : a));
      const record = this.open.get(type);
      if (record === undefined) {
        const opened: AnomalyRecord = {
          id: `${this.#nodeId}:${type}:${at}`,
          node_id: this.#nodeId,
          type,
          severity: SEVERITY[type],
          rules: [...new Set(found.map((b) => b.rule))],
          opened_at: at,
          last_at: at,
          values: { first: worst.value, last: worst.value, min: worst.value, max: worst.value, count: 1 },
          expected: { ...worst.expected },
          ...(reading && {
            reading: {
              ...(reading.flow_rate !== undefined && { flow_rate: reading.flow_rate }),
              ...(reading.pressure !== undefined && { pressure: reading.pressure }),
            },
          }),
        };
        this.open.set(type, opened);
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
    for (const type of evaluated) {
      if (byType.has(type)) continue;
      const record = this.open.get(type);
      if (record === undefined) continue;
      record.clear_since ??= at;
      if (at - record.clear_since >= this.#clearMs) events.push(this.#close(record, at));
    }
    return events;
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
    this.open.delete(record.type);
    const closed: AnomalyRecord = { ...record, values: { ...record.values }, closed_at: at };
    delete closed.clear_since;
    return { event: 'close', anomaly: closed };
  }
}
