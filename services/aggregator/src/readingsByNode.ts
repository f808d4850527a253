import type { Reading } from '@streamgauge/core';

/**
 * A slice's readings grouped by node: each node's in the order they came,
 * with the entry each came in, and the nodes in the order they first
 * appeared. Reused from slice to slice.
 *
 * Why: a node's state (its rings and detectors, ~50 KB) is far from the
 * last node's in memory, so a reading applied in stream order mostly waits
 * for memory. Applied node by node, a node's later readings find its state
 * in the cache. With five readings a node (10,000 nodes, slices of 50,000)
 * the windows and detectors took about half the time (docs/benchmarks.md).
 * Each node's readings keep their order, and nodes share no state, so every
 * node ends exactly as in stream order.
 */
export class ReadingsByNode<Node> {
  readonly #groupOf = new Map<Node, number>();
  readonly #nodes: Node[] = [];
  readonly #first: number[] = [];
  readonly #last: number[] = [];
  readonly #readings: Reading[] = [];
  readonly #entries: number[] = [];
  /** Per reading, the next reading of its node (-1: none). */
  #next = new Int32Array(1024);

  /** Nodes held. */
  get size(): number {
    return this.#nodes.length;
  }

  add(node: Node, reading: Reading, entry: number): void {
    const at = this.#readings.length;
    this.#readings.push(reading);
    this.#entries.push(entry);
    if (at === this.#next.length) {
      const next = new Int32Array(at * 2);
      next.set(this.#next);
      this.#next = next;
    }
    this.#next[at] = -1;
    const group = this.#groupOf.get(node);
    if (group === undefined) {
      this.#groupOf.set(node, this.#nodes.length);
      this.#nodes.push(node);
      this.#first.push(at);
      this.#last.push(at);
    } else {
      this.#next[this.#last[group] as number] = at;
      this.#last[group] = at;
    }
  }

  /** The `group`-th node, in order of first appearance. */
  node(group: number): Node {
    return this.#nodes[group] as Node;
  }

  /** The node's first reading (an index for `reading`, `entry` and `next`). */
  first(group: number): number {
    return this.#first[group] as number;
  }

  /** The node's reading after `at`, or -1. */
  next(at: number): number {
    return this.#next[at] as number;
  }

  reading(at: number): Reading {
    return this.#readings[at] as Reading;
  }

  /** The index, in the slice, of the entry the reading came in. */
  entry(at: number): number {
    return this.#entries[at] as number;
  }

  clear(): void {
    this.#groupOf.clear();
    this.#nodes.length = 0;
    this.#first.length = 0;
    this.#last.length = 0;
    this.#readings.length = 0;
    this.#entries.length = 0;
  }
}
