import type { Reading } from '../reading.ts';
import { addToPane, clearPane, mergePane, PANE, PANE_WIDTH } from './pane.ts';

/**
 * The panes of one size for one node: a ring indexed by pane number
 * (`floor(timestamp / paneMs)`). It holds the `history` panes a window needs
 * behind the current one, the current one, and `ahead` panes for readings
 * stamped slightly in the future. A slot holding an older pane number is
 * stale: that pane has left every window, so it is simply overwritten.
 */
export class PaneRing {
  readonly paneMs: number;
  readonly history: number;
  readonly ahead: number;
  readonly capacity: number;
  /** Pane number held by each slot, NaN when empty. */
  readonly numbers: Float64Array;
  readonly data: Float64Array;

  constructor(paneMs: number, history: number, ahead: number) {
    this.paneMs = paneMs;
    this.history = history;
    this.ahead = ahead;
    this.capacity = history + 1 + ahead;
    this.numbers = new Float64Array(this.capacity).fill(Number.NaN);
    this.data = new Float64Array(this.capacity * PANE_WIDTH);
  }

  paneOf(timestamp: number): number {
    return Math.floor(timestamp / this.paneMs);
  }

  /**
   * Adds a reading if its pane is within the ring at `nowMs`.
   * @returns the pane number, or undefined when it is outside.
   */
  add(reading: Reading, nowMs: number): number | undefined {
    const pane = this.paneOf(reading.timestamp);
    const current = this.paneOf(nowMs);
    if (pane < current - this.history || pane > current + this.ahead) return undefined;
    addToPane(this.data, this.#slotFor(pane), reading);
    return pane;
  }

  /** Offset of the pane's data, or -1 when the ring does not hold it. */
  offsetOf(pane: number): number {
    const slot = mod(pane, this.capacity);
    return this.numbers[slot] === pane ? slot * PANE_WIDTH : -1;
  }

  /** Merges panes `first..last` (inclusive) into `into` at offset 0. */
  mergeRange(into: Float64Array, first: number, last: number): void {
    for (let pane = first; pane <= last; pane++) {
      const at = this.offsetOf(pane);
      if (at >= 0) mergePane(into, 0, this.data, at);
    }
  }

  /** Sets a pane's content (restoring persisted state, or a reconcile). */
  put(pane: number, content: Float64Array, from = 0): void {
    const at = this.#slotFor(pane);
    this.data.set(content.subarray(from, from + PANE_WIDTH), at);
  }

  /** Pane numbers held with at least one reading, oldest first. */
  panes(): number[] {
    const held: number[] = [];
    for (let slot = 0; slot < this.capacity; slot++) {
      const pane = this.numbers[slot] as number;
      if (!Number.isNaN(pane) && (this.data[slot * PANE_WIDTH + PANE.count] as number) > 0) held.push(pane);
    }
    return held.sort((a, b) => a - b);
  }

  #slotFor(pane: number): number {
    const slot = mod(pane, this.capacity);
    const at = slot * PANE_WIDTH;
    if (this.numbers[slot] !== pane) {
      this.numbers[slot] = pane;
      clearPane(this.data, at);
    }
    return at;
  }
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
