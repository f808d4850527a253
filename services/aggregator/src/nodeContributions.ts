import {
  addInto,
  type NodeContribution,
  RANGES,
  type Range,
  type SystemSums,
  unlessNaN,
} from '@streamgauge/core';

type MutableSums = { -readonly [K in keyof SystemSums]: number };

/** A contribution's doubles: mean flow, mean pressure (NaN: none), uptime (NaN: not evaluated). */
const FIELDS = 3;
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
 * last one, so the rows stay dense and the sums run over them in order.
 */
export class NodeContributions {
  readonly #rows = new Map<string, number>();
  readonly #ids: string[] = [];
  #shards = new Int32Array(FIRST_ROWS);
  #values = new Float64Array(FIRST_ROWS * ROW);
  /** One record for every row `addTo` passes to core's addInto: none per node. */
  readonly #scratch: { avgFlow: number | undefined; avgPressure: number | undefined; uptime: number } = {
    avgFlow: undefined,
    avgPressure: undefined,
    uptime: 0,
  };

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
    this.#values[o] = contribution.avgFlow ?? Number.NaN;
    this.#values[o + 1] = contribution.avgPressure ?? Number.NaN;
    this.#values[o + 2] = contribution.uptime;
  }

  /** The node's contribution in `range` (undefined while it has none). */
  get(id: string, range: Range): NodeContribution | undefined {
    const row = this.#rows.get(id);
    const at = RANGE_AT.get(range);
    if (row === undefined || at === undefined) return undefined;
    const o = row * ROW + at;
    const uptime = this.#values[o + 2] as number;
    if (Number.isNaN(uptime)) return undefined;
    return {
      avgFlow: unlessNaN(this.#values[o] as number),
      avgPressure: unlessNaN(this.#values[o + 1] as number),
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
    const scratch = this.#scratch;
    for (let row = 0, o = at; row < this.#ids.length; row++, o += ROW) {
      const uptime = values[o + 2] as number;
      if (Number.isNaN(uptime)) continue;
      const sums = into.get(this.#shards[row] as number);
      if (sums === undefined) continue;
      scratch.avgFlow = unlessNaN(values[o] as number);
      scratch.avgPressure = unlessNaN(values[o + 1] as number);
      scratch.uptime = uptime;
      addInto(sums, scratch);
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
