import type { Reading } from '../reading.ts';
import { FULL_LAYOUT, type PaneLayout } from './pane.ts';

/** Below every pane number (1-minute panes of 1973 are ~2e6). */
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
 * stamped slightly in the future.
 *
 * Its slots hold the `capacity` panes up to the newest it has taken (`top`),
 * each in slot `pane mod capacity`, so a slot's pane number follows from
 * its place and `top` and none is stored: a slot of those panes that no
 * reading reached is an empty pane. A pane newer than `top` takes over the
 * slots of the oldest ones, which have left every window.
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
  /**
   * The slots' panes, `width` doubles each, from `offsetOf`'s offsets: with
   * siblings, one view of the node's buffer shared by its rings, each ring
   * from its own base.
   */
  data: Float64Array;
  /** Where this ring's slots start in `data`. */
  #base = 0;
  /** The newest pane the slots hold (EMPTY before the first). */
  #top = EMPTY;
  #capacity = 0;
  /**
   * The newest pane as last persisted (the store keeps it apart from the
   * others; see aggregateStore); NO_PANE while none is. A small integer
   * either way: NaN here kept a boxed number per ring, six objects a node
   * for the collector to mark.
   */
  persistedNewest = NO_PANE;
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
  /** The node's rings, this one among them, when they share one buffer (see `#oneBuffer`). */
  readonly #siblings: readonly PaneRing[] | undefined;

  /** `siblings`: the node's rings (this one to be added), sharing one buffer; without, a buffer of its own. */
  constructor(shape: RingShape, siblings?: readonly PaneRing[]) {
    this.shape = shape;
    this.data = NO_DATA;
    this.#siblings = siblings;
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
    return this.#capacity;
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
    const at = this.#slotFor(pane, Math.floor(nowMs / this.paneMs) - this.history);
    // Older than every pane a full ring holds: only after the clock went back.
    if (at < 0) return undefined;
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

  /** Offset of the pane's data (an empty pane when no reading reached it), or -1 when the ring does not hold it. */
  offsetOf(pane: number): number {
    const capacity = this.#capacity;
    if (pane > this.#top || pane <= this.#top - capacity) return -1;
    return this.#base + slotOf(pane, capacity) * this.width;
  }

  /** Merges panes `first..last` (inclusive) into `into` at offset 0, oldest first. */
  mergeRange(into: Float64Array, first: number, last: number, merge: MergeFn): void {
    if (this.#capacity === 0) return;
    for (let pane = first; pane <= last; pane++) {
      const at = this.offsetOf(pane);
      if (at >= 0) merge(into, 0, this.data, at);
    }
  }

  /** Sets a pane's content, in the ring's own layout (restoring persisted state). */
  put(pane: number, content: Float64Array, from = 0): void {
    const at = this.#slotFor(pane);
    if (at >= 0) this.data.set(content.subarray(from, from + this.width), at);
  }

  /** Sets a pane from a full pane (the backfill's panes, for any ring). */
  putFull(pane: number, full: Float64Array, from = 0): void {
    const at = this.#slotFor(pane);
    if (at >= 0) this.layout.fromFull(this.data, at, full, from);
  }

  /** Pane numbers held with at least one reading, oldest first. */
  panes(): number[] {
    const held: number[] = [];
    const capacity = this.#capacity;
    for (let pane = this.#top - capacity + 1; pane <= this.#top; pane++) {
      // Both layouts keep the pane's reading count first.
      if ((this.data[this.#base + slotOf(pane, capacity) * this.width] as number) > 0) held.push(pane);
    }
    return held;
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
    let capacity = Math.max(this.#capacity, FIRST_CAPACITY);
    while (capacity < count) capacity *= 2;
    capacity = Math.min(capacity, this.maxCapacity);
    if (capacity > this.#capacity) this.#grow(capacity, EMPTY);
  }

  /** Bytes of the slots this ring holds (memory accounting). */
  get bytes(): number {
    return this.#capacity * this.width * Float64Array.BYTES_PER_ELEMENT;
  }

  /**
   * The offset of `pane`'s slot, growing the ring when it must; -1 when the
   * pane is older than every pane a full ring holds (it left every window).
   * A newer pane takes over the slots of the oldest: below the full
   * capacity, only those of panes that left every window, those below
   * `reachFrom` (when known: a reading's `add`) or a full ring older than
   * `pane`. Without `reachFrom` a ring of 1-minute panes fed once a minute
   * went from 64 slots to its maximum of 67 as soon as the clock moved on.
   */
  #slotFor(pane: number, reachFrom = NO_PANE): number {
    for (;;) {
      const capacity = this.#capacity;
      const top = this.#top;
      if (capacity > 0) {
        if (pane <= top) {
          if (pane > top - capacity) return this.#base + slotOf(pane, capacity) * this.width;
          if (capacity === this.maxCapacity || top - pane >= this.maxCapacity) return -1;
        } else if (capacity === this.maxCapacity || this.#leftBehind(pane, reachFrom)) {
          this.#advance(pane);
          return this.#base + slotOf(pane, capacity) * this.width;
        }
      }
      this.#grow(Math.min(Math.max(FIRST_CAPACITY, capacity * 2), this.maxCapacity), pane);
    }
  }

  /** Whether every pane held that `pane` (newer than `top`) would take the slot of has left every window. */
  #leftBehind(pane: number, reachFrom: number): boolean {
    const capacity = this.#capacity;
    const oldest = this.#top - capacity + 1;
    // The newest of the panes that lose their slot decides: the others are older.
    for (let lost = Math.min(this.#top, pane - capacity); lost >= oldest; lost--) {
      if ((this.data[this.#base + slotOf(lost, capacity) * this.width] as number) > 0) {
        return lost < reachFrom || pane - lost >= this.maxCapacity;
      }
    }
    return true;
  }

  /** Makes `pane` the newest: the slots of the panes it passes are emptied for them. */
  #advance(pane: number): void {
    const capacity = this.#capacity;
    const width = this.width;
    for (let next = Math.max(this.#top + 1, pane - capacity + 1); next <= pane; next++) {
      this.layout.clear(this.data, this.#base + slotOf(next, capacity) * width);
    }
    this.#top = pane;
  }

  /** Grows to `capacity` slots, keeping every pane held; `pane` becomes the newest if the ring held none. */
  #grow(capacity: number, pane: number): void {
    const width = this.width;
    const old = this.#capacity;
    const oldData = this.data;
    const oldBase = this.#base;
    let data: Float64Array = NO_DATA;
    let base = 0;
    if (this.#siblings === undefined) data = new Float64Array(capacity * width);
    else ({ data, base } = PaneRing.#oneBuffer(this.#siblings, this, capacity * width));
    for (let slot = 0; slot < capacity; slot++) this.layout.clear(data, base + slot * width);
    if (old === 0) {
      this.#top = pane;
    } else {
      // The same newest pane: the slots now reach further back, and hold every pane they held.
      for (let held = this.#top - old + 1; held <= this.#top; held++) {
        const from = oldBase + slotOf(held, old) * width;
        data.set(oldData.subarray(from, from + width), base + slotOf(held, capacity) * width);
      }
    }
    this.data = data;
    this.#base = base;
    this.#capacity = capacity;
  }

  /**
   * One buffer for the rings of a node, and one view of it they share,
   * where `ring` gets `length` doubles (returned, with the view: its old
   * `data` stays as it was, for the caller to copy from) and every other
   * ring's slots move, copied, to their part.
   *
   * A ring of its own held a `Float64Array`, an `ArrayBuffer` and a backing
   * store: three objects a ring for the collector to mark and sweep, 18 a
   * node; a view of one buffer each made it eight; one view for them all,
   * three. A ring that grows moves the node's every pane (rings grow a few
   * times in a node's life). Only a ring's own methods grow it, one at a
   * time, so no ring's `data` is replaced in the middle of another's work.
   */
  static #oneBuffer(
    rings: readonly PaneRing[],
    ring: PaneRing,
    length: number,
  ): { data: Float64Array; base: number } {
    let total = length;
    for (const held of rings) if (held !== ring) total += held.#capacity * held.width;
    const data = new Float64Array(total);
    let offset = 0;
    let base = 0;
    for (const held of rings) {
      if (held === ring) {
        base = offset;
        offset += length;
        continue;
      }
      const part = held.#capacity * held.width;
      if (part === 0) continue;
      data.set(held.data.subarray(held.#base, held.#base + part), offset);
      held.data = data;
      held.#base = offset;
      offset += part;
    }
    return { data, base };
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

const NO_DATA = new Float64Array(0);
