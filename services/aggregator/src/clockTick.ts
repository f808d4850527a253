import { type AnomalyEvent, isoTime, RANGES, type Range, windowBounds } from '@streamgauge/core';
import { type LiveState, NODE_CHUNK, type ShardState, yieldToLoop } from './liveState.ts';
import type { MetricsRounds } from './metricsRounds.ts';
import type { ShardOwnership } from './shardOwnership.ts';
import type { SystemSums } from './systemSums.ts';

/** The clock's part: windows slide, anomalies close, silent nodes are forgotten, with no reading arriving. */
export class ClockTick {
  readonly #live: LiveState;
  readonly #ownership: ShardOwnership;
  readonly #rounds: MetricsRounds;
  readonly #sums: SystemSums;
  /** Per range, the pane it was last evaluated in. */
  readonly #evaluatedPane = new Map<Range, number>();

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
   */
  async tick(all = false): Promise<Range[]> {
    const now = this.#live.options.clock.now();
    const due = RANGES.filter((r) => all || this.#evaluatedPane.get(r) !== windowBounds(r, now).last);
    if (due.length === 0) return due;
    for (const r of due) this.#evaluatedPane.set(r, windowBounds(r, now).last);
    // Pending key writes go first, so the tick's writes are the newest.
    await this.#rounds.flush();
    const hourly = due.includes('30d');
    const forgotten = new Map<ShardState, string[]>();
    // Silence and hysteresis are seen by the clock: offline nodes, anomalies clear long enough to close.
    const clocked = new Map<ShardState, Map<string, AnomalyEvent[]>>();
    const ids = [...this.#live.nodes.keys()];
    for (let from = 0; from < ids.length; from += NODE_CHUNK) {
      if (from > 0) {
        // A chunk at a time, each written out before the next, yielding in
        // between, so the leases are renewed meanwhile; a shard lost
        // meanwhile has taken its nodes with it.
        await this.#live.persist(() => this.#live.writer.flush(), 'read model');
        await yieldToLoop();
      }
      for (const id of ids.slice(from, from + NODE_CHUNK)) {
        const node = this.#live.nodes.get(id);
        if (node === undefined) continue;
        const events = node.detector.tick(now);
        if (events.length > 0) {
          const nodes = clocked.get(node.shard) ?? new Map<string, AnomalyEvent[]>();
          nodes.set(id, events);
          clocked.set(node.shard, nodes);
        }
        if (hourly && node.windows.isSilent(now)) {
          this.#live.forget(id);
          const list = forgotten.get(node.shard);
          if (list === undefined) forgotten.set(node.shard, [id]);
          else list.push(id);
          continue;
        }
        // Hourly, latest and metadata are rewritten too, which renews their TTL.
        this.#rounds.writeNode(id, now, due, { series: due.includes('7d'), identity: hourly });
      }
    }
    // Hourly (and at start) every node is listed again: cheap, and it repairs a
    // `nodes:all` that expired or was deleted.
    if (all || hourly) this.#live.writer.listNodes(this.#live.nodes.keys());
    this.#live.writer.notify({ cause: 'clock', at: isoTime(now), ranges: due });
    const removed = [...forgotten.values()].flat();
    if (removed.length > 0) {
      this.#live.writer.unlistNodes(removed);
      this.#live.options.logger.info({ nodes: removed.length }, 'forgot nodes silent for 30 days');
    }
    await this.#live.persist(() => this.#live.writer.flush(), 'read model');
    await this.#sums.write(due, now);
    for (const state of new Set([...forgotten.keys(), ...clocked.keys()])) {
      // A chunk of nodes per commit, each node's state with its events: a
      // fleet gone silent at once (a network outage) opens an anomaly on
      // every node, and one commit of 50,000 held Redis 0.85 s.
      // A forgotten node's last events go with the deletion of its state.
      let removed = forgotten.get(state) ?? [];
      const gone = new Set(removed);
      const anomalies = [...(clocked.get(state) ?? [])];
      let last = anomalies.filter(([id]) => gone.has(id)).flatMap(([, events]) => events);
      const live = anomalies.filter(([id]) => !gone.has(id));
      for (let from = 0; from === 0 || from < live.length; from += NODE_CHUNK) {
        if (!this.#live.holds(state)) break;
        const chunk = live.slice(from, from + NODE_CHUNK);
        const commit = state.store.prepare({
          changed: [],
          added: [],
          removed,
          group: this.#live.options.group,
          ackIds: [],
          deadLetters: [],
          failures: [],
          counters: {},
          detectors: this.#live.detectorStates(chunk.map(([id]) => id)),
          events: [...last, ...chunk.flatMap(([, events]) => events)],
        });
        if (!(await this.#ownership.commit(state, commit))) break;
        removed = [];
        last = [];
      }
    }
    return due;
  }
}
