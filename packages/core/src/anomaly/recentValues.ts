/**
 * The σ rule's window of one measurement: its last values with their event
 * times, oldest first, in a ring in one typed array that grows by doubling
 * up to `limit` (a node of ten readings holds ten). Arrays shifted at the
 * front on every reading cost a copy of the window per reading and kept up
 * to half their length again as spare capacity.
 */
export class RecentValues {
  /** Values in [0, capacity), their times in [capacity, 2 × capacity). */
  #slots: Float64Array = NONE;
  #capacity = 0;
  readonly #limit: number;
  #start = 0;
  #length = 0;

  /** Holds at most `limit` values (persisted ones beyond it, the oldest, are dropped). */
  constructor(limit: number, values: readonly number[] = [], times: readonly number[] = []) {
    this.#limit = limit;
    const from = Math.max(0, values.length - limit);
    // Sized once, as the pushes would have grown it (one array, not up to
    // five): every node's two windows are restored when its shard is acquired.
    if (values.length > from) this.#resize(this.#capacityFor(values.length - from));
    for (let i = from; i < values.length; i++) this.push(values[i] as number, times[i] as number);
  }

  get length(): number {
    return this.#length;
  }

  /** The oldest value's event time (NaN when empty). */
  get oldestTime(): number {
    return this.#length === 0 ? Number.NaN : (this.#slots[this.#capacity + this.#start] as number);
  }

  /** The newest value (undefined when empty). */
  get newest(): number | undefined {
    return this.#length === 0 ? undefined : this.#slots[this.#at(this.#length - 1)];
  }

  /** Appends a value; the caller drops the oldest first when full (see `full`). */
  push(value: number, time: number): void {
    if (this.#length === this.#capacity) this.#grow();
    const at = this.#at(this.#length);
    this.#slots[at] = value;
    this.#slots[this.#capacity + at] = time;
    this.#length++;
  }

  /** Whether it holds `limit` values. */
  get full(): boolean {
    return this.#length === this.#limit;
  }

  /** Removes the oldest value and returns it. */
  dropOldest(): number {
    const value = this.#slots[this.#start] as number;
    this.#start = this.#start + 1 === this.#capacity ? 0 : this.#start + 1;
    this.#length--;
    return value;
  }

  /** The values, oldest first. */
  values(): number[] {
    return Array.from({ length: this.#length }, (_, i) => this.#slots[this.#at(i)] as number);
  }

  /** Their event times, oldest first. */
  times(): number[] {
    return Array.from(
      { length: this.#length },
      (_, i) => this.#slots[this.#capacity + this.#at(i)] as number,
    );
  }

  /**
   * Writes the values, oldest first, then the seconds from each one's time
   * to `last` (rounded), as doubles from `o` (little-endian), as a
   * persisted state lays them out; returns the offset after them.
   */
  writeWithAges(view: DataView, o: number, last: number): number {
    for (let i = 0; i < this.#length; i++, o += 8)
      view.setFloat64(o, this.#slots[this.#at(i)] as number, true);
    for (let i = 0; i < this.#length; i++, o += 8) {
      const t = this.#slots[this.#capacity + this.#at(i)] as number;
      view.setFloat64(o, Math.round((last - t) / 1000), true);
    }
    return o;
  }

  /** Σ values and Σ values², oldest first (as a running sum over the window would add them). */
  sums(): { sum: number; squares: number } {
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < this.#length; i++) {
      const v = this.#slots[this.#at(i)] as number;
      sum += v;
      squares += v * v;
    }
    return { sum, squares };
  }

  #grow(): void {
    if (this.#capacity === this.#limit) throw new RangeError('RecentValues is full');
    this.#resize(Math.min(this.#limit, Math.max(FIRST_CAPACITY, 2 * this.#capacity)));
  }

  /** The capacity pushing `count` values from empty grows to. */
  #capacityFor(count: number): number {
    let capacity = FIRST_CAPACITY;
    while (capacity < count) capacity *= 2;
    return Math.min(capacity, this.#limit);
  }

  #resize(capacity: number): void {
    const slots = new Float64Array(2 * capacity);
    for (let i = 0; i < this.#length; i++) {
      const at = this.#at(i);
      slots[i] = this.#slots[at] as number;
      slots[capacity + i] = this.#slots[this.#capacity + at] as number;
    }
    this.#slots = slots;
    this.#capacity = capacity;
    this.#start = 0;
  }

  #at(i: number): number {
    const at = this.#start + i;
    return at >= this.#capacity ? at - this.#capacity : at;
  }
}

const NONE = new Float64Array(0);
const FIRST_CAPACITY = 8;
