import type { Reading } from '../reading.ts';
import { FULL_LAYOUT, type PaneLayout } from './pane.ts';

/** A slot that holds no pane. Pane numbers are far above it (1-minute panes of 1973 are ~2e6). */
const EMPTY = -2_147_483_648;
/** Slots allocated on a ring's first pane. */
const FIRST_CAPACITY = 2;
/** Change marks (see `markChanged`): no pane changed, or more than one. Pane numbers are above both. */
const UNCHANGED = EMPTY;
/**
 * No pane (`persistedFrom`, `lowestChanged`): small integers, not NaN or
 * Infinity, so the fields stay small integers in V8 rather than a boxed
 * number each (~0.3 KB a node over its rings).
 */
export const NO_PANE = -1_073_741_824;
const NONE_CHANGED = 1_073_741_823;
const SEVERAL = EMPTY + 1;

/** The slot of `pane` in a ring of `capacity` slots (pane numbers below 0 wrap as well). */
function slotOf(pane: number, capacity: number): number {
  const slot = pane % capacity;
  return slot < 0 ? slot + capacity : slot;
}

/**
 * The panes of one size for one node: a ring indexed by pane number
 * (`floor(timestamp / paneMs)`). It holds the `history` panes a window needs
 * behind the current one, the current one, and `ahead` panes for readings
 * stamped slightly in the future. A slot holding an older pane number is
 * stale: that pane has left every window, so it is simply overwritten.
 *
 * A node costs what it holds: the ring starts with no slots and doubles
 * when a pane it must keep would land on a slot still holding another pane
 * within reach, up to `maxCapacity` (history + 1 + ahead), where a clash
 * can only be with a stale pane. A node that sent ten readings holds a few
 * slots per ring, not the 30 days' worth.
 */
export class PaneRing {
  /** Shared by every node's ring of this size (six fields a ring, at 100,000 nodes × 6 rings). */
  readonly shape: RingShape;
  /** Pane number held by each slot, EMPTY when none. */
  numbers: Int32Array;
  data: Float64Array;
  /** The newest pane as last persisted (the store keeps it apart from the others; see aggregateStore). */
  persistedNewest = Number.NaN;
  /**
   * The first pane of the recent panes the store keeps apart (from it up to
   * the newest, see aggregateStore); NO_PANE while it keeps none.
   */
  persistedFrom = NO_PANE;
  /**
   * What changed since the state was last persisted: UNCHANGED, one pane
   * (its number) or SEVERAL. The store needs no more than that (is it only
   * the newest pane?), and a Set of pane numbers per ring was the costliest
   * line of a reading's window update.
   */
  #change = UNCHANGED;
  /** The lowest pane changed since the state was last persisted (NONE_CHANGED: none). */
  #lowest = NONE_CHANGED;

  constructor(shape: RingShape) {
    this.shape = shape;
    this.numbers = NO_NUMBERS;
    this.data = NO_DATA;
  }

  get paneMs(): number {
    return this.shape.paneMs;
  }

  get history(): number {
    return this.shape.history;
  }

  get ahead(): number {
    return this.shape.ahead;
  }

  get maxCapacity(): number {
    return this.shape.maxCapacity;
  }

  get layout(): PaneLayout {
    return this.shape.layout;
  }

  get width(): number {
    return this.shape.width;
  }

  get capacity(): number {
    return this.numbers.length;
  }

  paneOf(timestamp: number): number {
    return Math.floor(timestamp / this.paneMs);
  }

  /** Whether `pane` is within the ring's reach at `nowMs`. */
  reaches(pane: number, nowMs: number): boolean {
    const current = Math.floor(nowMs / this.paneMs);
    return pane >= current - this.history && pane <= current + this.ahead;
  }

  /**
   * Adds a reading if its pane is within the ring at `nowMs`.
   * @returns the pane number, or undefined when it is outside.
   */
  add(reading: Reading, nowMs: number): number | undefined {
    const pane = Math.floor(reading.timestamp / this.paneMs);
    if (!this.reaches(pane, nowMs)) return undefined;
    // The slot first: finding it may grow (replace) `data`.
    const at = this.#slotFor(pane);
    this.layout.add(this.data, at, reading);
    this.markChanged(pane);
    return pane;
  }

  /** Records that `pane` changed (a reading, a reconcile or a migration) and must be persisted. */
  markChanged(pane: number): void {
    const change = this.#change;
    if (change !== pane && change !== SEVERAL) this.#change = change === UNCHANGED ? pane : SEVERAL;
    if (pane < this.#lowest) this.#lowest = pane;
  }

  /** The lowest pane changed since `clearChanges()` (above every pane number when none). */
  get lowestChanged(): number {
    return this.#lowest;
  }

  /** Whether any pane changed since `clearChanges()`. */
  get changed(): boolean {
    return this.#change !== UNCHANGED;
  }

  /** Whether `pane` is the only pane changed since `clearChanges()`. */
  changedOnly(pane: number): boolean {
    return this.#change === pane;
  }

  clearChanges(): void {
    this.#change = UNCHANGED;
    this.#lowest = NONE_CHANGED;
  }

  /** Offset of the pane's data, or -1 when the ring does not hold it. */
  offsetOf(pane: number): number {
    const capacity = this.numbers.length;
    if (capacity === 0) return -1;
    const slot = slotOf(pane, capacity);
    return this.numbers[slot] === pane ? slot * this.width : -1;
  }

  /** Merges panes `first..last` (inclusive) into `into` at offset 0, oldest first. */
  mergeRange(into: Float64Array, first: number, last: number, merge: MergeFn): void {
    if (this.numbers.length === 0) return;
    for (let pane = first; pane <= last; pane++) {
      const at = this.offsetOf(pane);
      if (at >= 0) merge(into, 0, this.data, at);
    }
  }

  /** Sets a pane's content, in the ring's own layout (restoring persisted state). */
  put(pane: number, content: Float64Array, from = 0): void {
    const at = this.#slotFor(pane);
    this.data.set(content.subarray(from, from + this.width), at);
  }

  /** Sets a pane from a full pane (the backfill's panes, for any ring). */
  putFull(pane: number, full: Float64Array, from = 0): void {
    const at = this.#slotFor(pane);
    this.layout.fromFull(this.data, at, full, from);
  }

  /** Pane numbers held with at least one reading, oldest first. */
  panes(): number[] {
    const held: number[] = [];
    for (let slot = 0; slot < this.numbers.length; slot++) {
      const pane = this.numbers[slot] as number;
      // Both layouts keep the pane's reading count first.
      if (pane !== EMPTY && (this.data[slot * this.width] as number) > 0) held.push(pane);
    }
    return held.sort((a, b) => a - b);
  }

  /**
   * The held panes still in reach at `nowMs`, oldest first: a slot keeps a
   * pane that has left every window until the slot is reused. What is worth
   * persisting.
   */
  livePanes(nowMs: number): number[] {
    return this.panes().filter((pane) => this.reaches(pane, nowMs));
  }

  /** Makes room for `count` panes at once (restoring a persisted ring). */
  reserve(count: number): void {
    let capacity = Math.max(this.numbers.length, FIRST_CAPACITY);
    while (capacity < count) capacity *= 2;
    capacity = Math.min(capacity, this.maxCapacity);
    if (capacity > this.numbers.length) this.#grow(capacity);
  }

  /** Bytes of the typed arrays this ring holds (memory accounting). */
  get bytes(): number {
    return this.numbers.byteLength + this.data.byteLength;
  }

  #slotFor(pane: number): number {
    for (;;) {
      const capacity = this.numbers.length;
      if (capacity > 0) {
        const slot = slotOf(pane, capacity);
        const held = this.numbers[slot] as number;
        const at = slot * this.width;
        if (held === pane) return at;
        // At full capacity two panes within reach never share a slot, so the
        // one there is stale. Below it, a pane less than a full ring away may
        // still be in reach: grow rather than lose it.
        if (held === EMPTY || capacity === this.maxCapacity || Math.abs(pane - held) >= this.maxCapacity) {
          this.numbers[slot] = pane;
          this.layout.clear(this.data, at);
          return at;
        }
      }
      this.#grow(Math.min(Math.max(FIRST_CAPACITY, capacity * 2), this.maxCapacity));
    }
  }

  #grow(capacity: number): void {
    const width = this.width;
    // Both in one buffer: a typed array's own buffer costs ~100 bytes of heap besides its contents.
    const buffer = new ArrayBuffer(capacity * (width * 8 + 4));
    const data = new Float64Array(buffer, 0, capacity * width);
    const numbers = new Int32Array(buffer, capacity * width * 8, capacity).fill(EMPTY);
    for (let old = 0; old < this.numbers.length; old++) {
      const pane = this.numbers[old] as number;
      if (pane === EMPTY) continue;
      const slot = slotOf(pane, capacity);
      // Two panes meet in a slot only when a full ring apart (capacity is the
      // maximum here): the older has left every window.
      if ((numbers[slot] as number) !== EMPTY && (numbers[slot] as number) > pane) continue;
      numbers[slot] = pane;
      data.set(this.data.subarray(old * width, old * width + width), slot * width);
    }
    this.numbers = numbers;
    this.data = data;
  }
}

/** A ring's size and reach: `history` panes behind the current one, `ahead` beyond it. */
export interface RingShape {
  readonly paneMs: number;
  readonly history: number;
  readonly ahead: number;
  /** history + 1 + ahead. */
  readonly maxCapacity: number;
  readonly layout: PaneLayout;
  readonly width: number;
}

export function ringShape(
  paneMs: number,
  history: number,
  ahead: number,
  layout: PaneLayout = FULL_LAYOUT,
): RingShape {
  return { paneMs, history, ahead, maxCapacity: history + 1 + ahead, layout, width: layout.width };
}

export type MergeFn = (dst: Float64Array, to: number, src: Float64Array, from: number) => void;

const NO_NUMBERS = new Int32Array(0);
const NO_DATA = new Float64Array(0);
