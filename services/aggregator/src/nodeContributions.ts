import { addValuesInto, type NodeContribution, RANGES, type Range, type SystemSums } from '@streamgauge/core';

type MutableSums = { -readonly [K in keyof SystemSums]: number };

/**
 * A contribution's doubles: mean flow, mean pressure, uptime (NaN: not
 * evaluated in the range), and which means it has (FLOW_HELD | PRESSURE_HELD).
 * Held apart from the values: a mean can itself be NaN (readings whose sum
 * overflows), and counts as such in the sums.
 */
const FIELDS = 4;
const FLOW_HELD = 1;
const PRESSURE_HELD = 2;
const ROW = RANGES.length * FIELDS;
const RANGE_AT = new Map<Range, number>(RANGES.map((range, i) => [range, i * FIELDS]));
const FIRST_ROWS = 64;

/**
 * Per node and range, what the node adds to the system sums (as last
 * evaluated), and the shard it counts in: a row of doubles per node in one
 * array. As an object per node and range, with a heap number per field,
 * they were about 24 objects a node that every full collection marked, at
 * 100,000 nodes a quarter of the aggregator's.
 *
 * A node's row is its place in `#ids`; a forgotten node's row takes the
 * last one, so the rows stay dense and the sums run over them in order
 * (not in the order nodes were first evaluated in each range: a sum may
 * differ in its last bits from one over the same values in another order).
 */
export class NodeContributions {
  readonly #rows = new Map<string, number>();
  readonly #ids: string[] = [];
  #shards = new Int32Array(FIRST_ROWS);
  #values = new Float64Array(FIRST_ROWS * ROW);

  get size(): number {
    return this.#ids.length;
  }

  /** Records what a node adds in `range`, replacing what it added before. */
  set(id: string, shard: number, range: Range, contribution: NodeContribution): void {
    const at = RANGE_AT.get(range);
    if (at === undefined) throw new RangeError(`no range ${range}`);
    let row = this.#rows.get(id);
    if (row === undefined) row = this.#add(id, shard);
    const o = row * ROW + at;
    const { avgFlow, avgPressure } = contribution;
    this.#values[o] = avgFlow ?? 0;
    this.#values[o + 1] = avgPressure ?? 0;
    this.#values[o + 2] = contribution.uptime;
    this.#values[o + 3] =
      (avgFlow === undefined ? 0 : FLOW_HELD) | (avgPressure === undefined ? 0 : PRESSURE_HELD);
  }

  /** The node's contribution in `range` (undefined while it has none). */
  get(id: string, range: Range): NodeContribution | undefined {
    const row = this.#rows.get(id);
    const at = RANGE_AT.get(range);
    if (row === undefined || at === undefined) return undefined;
    const o = row * ROW + at;
    const uptime = this.#values[o + 2] as number;
    if (Number.isNaN(uptime)) return undefined;
    const held = this.#values[o + 3] as number;
    return {
      avgFlow: held & FLOW_HELD ? (this.#values[o] as number) : undefined,
      avgPressure: held & PRESSURE_HELD ? (this.#values[o + 1] as number) : undefined,
      uptime,
    };
  }

  /** Forgets a node's contributions (the node is gone). */
  delete(id: string): void {
    const row = this.#rows.get(id);
    if (row === undefined) return;
    this.#rows.delete(id);
    const last = this.#ids.length - 1;
    const moved = this.#ids.pop() as string;
    if (row === last) return;
    this.#ids[row] = moved;
    this.#rows.set(moved, row);
    this.#shards[row] = this.#shards[last] as number;
    this.#values.copyWithin(row * ROW, last * ROW, (last + 1) * ROW);
  }

  /**
   * Adds each node's contribution in `range` to its shard's sums in `into`,
   * row by row (a shard not in `into` is skipped), in place.
   */
  addTo(range: Range, into: ReadonlyMap<number, MutableSums>): void {
    const at = RANGE_AT.get(range);
    if (at === undefined) throw new RangeError(`no range ${range}`);
    const values = this.#values;
    for (let row = 0, o = at; row < this.#ids.length; row++, o += ROW) {
      const uptime = values[o + 2] as number;
      if (Number.isNaN(uptime)) continue;
      const sums = into.get(this.#shards[row] as number);
      if (sums === undefined) continue;
      const held = values[o + 3] as number;
      addValuesInto(
        sums,
        values[o] as number,
        (held & FLOW_HELD) !== 0,
        values[o + 1] as number,
        (held & PRESSURE_HELD) !== 0,
        uptime,
      );
    }
  }

  #add(id: string, shard: number): number {
    const row = this.#ids.length;
    if (row === this.#shards.length) {
      const shards = new Int32Array(row * 2);
      shards.set(this.#shards);
      this.#shards = shards;
      const values = new Float64Array(row * 2 * ROW);
      values.set(this.#values);
      this.#values = values;
    }
    this.#ids.push(id);
    this.#rows.set(id, row);
    this.#shards[row] = shard;
    this.#values.fill(Number.NaN, row * ROW, (row + 1) * ROW);
    return row;
  }
}
