/**
 * The σ rule's window of one measurement: its last values with their event
 * times, oldest first, as a ring inside an array of doubles that holds
 * more (the detector's numbers), from `at`:
 *
 *   [start, length, capacity, value 0, time 0, value 1, time 1, …]
 *
 * Not an object of its own: the window was an object holding a typed array
 * holding its memory, three loads one after the other before the first
 * value, each a cache miss at 10,000 nodes (about 0.3 µs a measurement,
 * docs/benchmarks.md, "The σ windows inside the detector's numbers").
 * Here the ring's slots are found from the detector's array, which a
 * reading has in hand already, and a slot's value and time share a line.
 * The owner grows the ring (recentMove into a larger array) by doubling up
 * to the window's limit: a node of ten readings holds 16 slots, not the
 * limit's (up to 10,000, ANOMALY_WINDOW_READINGS).
 */

const START = 0;
const LENGTH = 1;
const CAPACITY = 2;
const SLOTS = 3;
/** A new window's slots (and the least it grows by). */
const FIRST_CAPACITY = 8;

/** The doubles a window of `capacity` slots takes. */
export function recentDoubles(capacity: number): number {
  return SLOTS + 2 * capacity;
}

/** The capacity a window of `count` values starts with, for windows of at most `limit`. */
export function recentCapacityFor(count: number, limit: number): number {
  let capacity = FIRST_CAPACITY;
  while (capacity < count) capacity *= 2;
  return Math.min(capacity, limit);
}

/** The capacity a full window of `capacity` slots grows to, for windows of at most `limit`. */
export function recentGrown(capacity: number, limit: number): number {
  return Math.min(limit, Math.max(FIRST_CAPACITY, 2 * capacity));
}

/**
 * Lays out an empty window of `capacity` slots at `at`, then pushes the
 * newest `capacity` of `values` (oldest first) with their `times`
 * (persisted ones beyond it, the oldest, are dropped).
 */
export function recentInit(
  n: Float64Array,
  at: number,
  capacity: number,
  values: readonly number[] = [],
  times: readonly number[] = [],
): void {
  n[at + START] = 0;
  n[at + LENGTH] = 0;
  n[at + CAPACITY] = capacity;
  for (let i = Math.max(0, values.length - capacity); i < values.length; i++) {
    recentPush(n, at, values[i] as number, times[i] as number);
  }
}

/** Copies the window at `from[at]` to `to[toAt]` as a window of `capacity` slots (at least its length), oldest first. */
export function recentMove(
  from: Float64Array,
  at: number,
  to: Float64Array,
  toAt: number,
  capacity: number,
): void {
  const length = recentLength(from, at);
  if (capacity < length) throw new RangeError(`a window of ${length} values does not fit ${capacity} slots`);
  to[toAt + START] = 0;
  to[toAt + LENGTH] = length;
  to[toAt + CAPACITY] = capacity;
  for (let i = 0; i < length; i++) {
    const slot = slotAt(from, at, i);
    to[toAt + SLOTS + 2 * i] = from[slot] as number;
    to[toAt + SLOTS + 2 * i + 1] = from[slot + 1] as number;
  }
}

export function recentLength(n: Float64Array, at: number): number {
  return n[at + LENGTH] as number;
}

/** Its slots: a push needs one free (see recentMove). */
export function recentCapacity(n: Float64Array, at: number): number {
  return n[at + CAPACITY] as number;
}

/** The oldest value's event time (NaN when empty). */
export function recentOldestTime(n: Float64Array, at: number): number {
  return n[at + LENGTH] === 0 ? Number.NaN : (n[at + SLOTS + 2 * (n[at + START] as number) + 1] as number);
}

/** The newest value (NaN when empty). */
export function recentNewest(n: Float64Array, at: number): number {
  const length = n[at + LENGTH] as number;
  return length === 0 ? Number.NaN : (n[slotAt(n, at, length - 1)] as number);
}

/** Appends a value; a window with no free slot is moved into a larger one first (recentMove). */
export function recentPush(n: Float64Array, at: number, value: number, time: number): void {
  const length = n[at + LENGTH] as number;
  if (length === n[at + CAPACITY]) throw new RangeError('the window has no free slot');
  const slot = slotAt(n, at, length);
  n[slot] = value;
  n[slot + 1] = time;
  n[at + LENGTH] = length + 1;
}

/** Removes the oldest value and returns it (the window must hold one). */
export function recentDropOldest(n: Float64Array, at: number): number {
  const start = n[at + START] as number;
  const value = n[at + SLOTS + 2 * start] as number;
  n[at + START] = start + 1 === n[at + CAPACITY] ? 0 : start + 1;
  n[at + LENGTH] = (n[at + LENGTH] as number) - 1;
  return value;
}

/** The values, oldest first. */
export function recentValues(n: Float64Array, at: number): number[] {
  return Array.from({ length: recentLength(n, at) }, (_, i) => n[slotAt(n, at, i)] as number);
}

/** Their event times, oldest first. */
export function recentTimes(n: Float64Array, at: number): number[] {
  return Array.from({ length: recentLength(n, at) }, (_, i) => n[slotAt(n, at, i) + 1] as number);
}

/**
 * Writes the values, oldest first, then the seconds from each one's time
 * to `last` (rounded), as doubles from `o` (little-endian), as a
 * persisted state lays them out; returns the offset after them.
 */
export function recentWriteWithAges(
  n: Float64Array,
  at: number,
  view: DataView,
  o: number,
  last: number,
): number {
  const length = recentLength(n, at);
  for (let i = 0; i < length; i++, o += 8) view.setFloat64(o, n[slotAt(n, at, i)] as number, true);
  for (let i = 0; i < length; i++, o += 8) {
    view.setFloat64(o, Math.round((last - (n[slotAt(n, at, i) + 1] as number)) / 1000), true);
  }
  return o;
}

/** Σ values and Σ values², oldest first (as a running sum over the window would add them). */
export function recentSums(n: Float64Array, at: number): { sum: number; squares: number } {
  let sum = 0;
  let squares = 0;
  const length = recentLength(n, at);
  for (let i = 0; i < length; i++) {
    const v = n[slotAt(n, at, i)] as number;
    sum += v;
    squares += v * v;
  }
  return { sum, squares };
}

/** Where the i-th value from the oldest is (its time after it). */
function slotAt(n: Float64Array, at: number, i: number): number {
  const capacity = n[at + CAPACITY] as number;
  const slot = (n[at + START] as number) + i;
  return at + SLOTS + 2 * (slot >= capacity ? slot - capacity : slot);
}
