import { PANE, PANE_WIDTH, SERIES, SERIES_WIDTH, STAT_AT } from './pane.ts';
import type { PaneRing } from './paneRing.ts';

/**
 * Panes as bytes, for the state the aggregator persists: compact, since
 * Redis holds every node's panes. Counts go as u32 and only the
 * measurements a pane holds are written (a presence mask); what follows
 * from the rest is left out, and the doubles keep every bit (windows stay
 * exact after a restart):
 * - a pane of one reading (a 1-minute pane at one reading a minute) writes
 *   each value once: mean, min and max are that value, M2 is 0;
 * - a measurement's count, and the flowing count, go only when they differ
 *   from the pane's count (a meter sends every measurement every time);
 * - a series hour's two counts likewise;
 * - the newest event time goes as its offset in the pane (whole ms, u32).
 * So a pane of flow and pressure takes 81 bytes at most, 37 with one value
 * each of the four measurements, a series hour 28 (20 with its counts
 * implied), plus a share of their run's 6 bytes; format 2 wrote 4 + 85, 4 + 129 and 4 + 28.
 *
 * A list goes in runs of consecutive panes, each number written once (see
 * encodePanes), little-endian. Encodings written before the runs, the
 * implied counts and the single panes (their flag bits clear) read the same.
 */

const FLOW = 1;
const PRESSURE = 2;
const TEMPERATURE = 4;
const VOLUME = 8;
/** One reading: each value once (see writeSingle). */
const SINGLE = 16;
/** Every present measurement's count is the pane's (not written). */
const COUNTS_IMPLIED = 32;
/** The flowing count is the pane's count (not written). */
const ALL_FLOWING = 64;
/** The newest event time goes as a u32 offset from the pane's start (ms), not an f64. */
const NEWEST_OFFSET = 128;
/** A series hour whose flow and pressure counts are its count (not written): the count's top bit. */
const SERIES_COUNTS_IMPLIED = 0x80000000;

const F = STAT_AT.flow;
const P = STAT_AT.pressure;
const T = STAT_AT.temperature;
const V = STAT_AT.volume;

/** Upper bound of one encoded pane, any layout (number included). */
export const MAX_PANE_BYTES = 4 + 1 + 4 + 4 + 8 + (4 + 32) + (4 + 24) + (4 + 24) + 16;

/**
 * Where encodings are written, one after another: a commit encodes a few
 * panes for each of thousands of nodes, and one buffer per encoding (with
 * its view) was most of that work's allocation. What was handed out is
 * never written again (a full chunk is left to the encodings in it).
 */
export class ByteArena {
  bytes: Uint8Array;
  view: DataView;
  used = 0;
  readonly #chunkBytes: number;

  constructor(chunkBytes: number) {
    this.#chunkBytes = chunkBytes;
    this.bytes = new Uint8Array(chunkBytes);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Makes room for `n` more bytes at `used`. */
  room(n: number): void {
    if (this.used + n <= this.bytes.length) return;
    this.bytes = new Uint8Array(Math.max(this.#chunkBytes, n));
    this.view = new DataView(this.bytes.buffer);
    this.used = 0;
  }
}

/**
 * An arena whose encodings stay one run of bytes: it grows by copying
 * instead of starting a chunk, so what is written into it can be sent as
 * one value (encodings handed out before a growth are views of the old bytes).
 */
export class GrowingArena extends ByteArena {
  /**
   * Starts over at the first byte, with room for `n`: the memory is used
   * again. Fresh memory costs its first touch (3 ms a MB on these VMs, in
   * page faults), which a commit of 10–20 MB paid every time
   * (docs/benchmarks.md, "A commit's bytes written once"). Whatever was
   * handed out before is overwritten.
   */
  reset(n: number): void {
    this.used = 0;
    this.room(n);
  }

  override room(n: number): void {
    if (this.used + n <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(2 * this.bytes.length, this.used + n));
    grown.set(this.bytes.subarray(0, this.used));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }
}

/**
 * A list in runs: `[RUNS i32]`, then per run of consecutive pane numbers
 * `[first number i32][panes u16]` and the panes without their numbers. A
 * list of format 2 is `[number i32][pane]...`; a pane number is never RUNS
 * (the rings' empty slot), so the first four bytes tell the two apart.
 */
const RUNS = -2_147_483_648;
/** A run's number and length. */
const RUN_BYTES = 6;

/**
 * Encodes the given panes of a ring (ascending; each must be held), in
 * `arena` when given. No pane held: no bytes (commitShard deletes the field).
 */
export function encodePanes(ring: PaneRing, panes: readonly number[], arena?: ByteArena): Uint8Array {
  const room = 4 + panes.length * (RUN_BYTES + MAX_PANE_BYTES);
  const into = arena ?? new ByteArena(room);
  into.room(room);
  const { view } = into;
  const start = into.used;
  view.setInt32(start, RUNS, true);
  let o = start + 4;
  let run = -1;
  let length = 0;
  let last = Number.NaN;
  for (const pane of panes) {
    const at = ring.offsetOf(pane);
    if (at < 0) continue;
    if (run < 0 || pane !== last + 1 || length === 0xffff) {
      run = o;
      length = 0;
      view.setInt32(o, pane, true);
      o += RUN_BYTES;
    }
    o = writeBody(ring, pane, at, view, o);
    view.setUint16(run + 4, ++length, true);
    last = pane;
  }
  if (run < 0) o = start;
  into.used = o;
  return into.bytes.subarray(start, o);
}

/** The first pane number of a list (see encodePanes); undefined when it holds none. */
export function firstPaneOf(bytes: Uint8Array): number | undefined {
  if (bytes.byteLength < 4) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getInt32(0, true) !== RUNS) return view.getInt32(0, true);
  return bytes.byteLength >= 8 ? view.getInt32(4, true) : undefined;
}

/** Decodes a list into `ring`'s panes (see encodePanes); returns the pane numbers read. */
export function decodePanes(ring: PaneRing, bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scratch = new Float64Array(ring.layout.name === 'series' ? SERIES_WIDTH : PANE_WIDTH);
  const read: number[] = [];
  const panes: Float64Array[] = [];
  const take = (number: number, o: number) => {
    read.push(number);
    o = readBody(ring, number, view, o, scratch);
    panes.push(scratch.slice());
    return o;
  };
  if (bytes.byteLength >= 4 && view.getInt32(0, true) === RUNS) {
    let o = 4;
    while (o < bytes.byteLength) {
      const first = view.getInt32(o, true);
      const length = view.getUint16(o + 4, true);
      o += RUN_BYTES;
      for (let i = 0; i < length; i++) o = take(first + i, o);
    }
  } else {
    let o = 0;
    while (o < bytes.byteLength) o = take(view.getInt32(o, true), o + 4);
  }
  // Sized once for what it will hold, rather than doubling pane by pane.
  ring.reserve(read.length);
  read.forEach((number, i) => {
    ring.put(number, panes[i] as Float64Array);
  });
  return read;
}

/**
 * Writes `[pane number i32][pane]` at `o` (room for MAX_PANE_BYTES);
 * returns the offset after it, `o` itself when the ring does not hold the pane.
 */
export function writeHeldPane(ring: PaneRing, pane: number, view: DataView, o: number): number {
  const at = ring.offsetOf(pane);
  if (at < 0) return o;
  view.setInt32(o, pane, true);
  return writeBody(ring, pane, at, view, o + 4);
}

/**
 * Reads the pane written at `o` (see writeHeldPane; its number is
 * `view.getInt32(o, true)`) into `scratch`, in the ring's layout; returns
 * the offset after it.
 */
export function readPaneAt(ring: PaneRing, view: DataView, o: number, scratch: Float64Array): number {
  return readBody(ring, view.getInt32(o, true), view, o + 4, scratch);
}

/** A pane's content, without its number. */
function writeBody(ring: PaneRing, pane: number, at: number, view: DataView, o: number): number {
  return ring.layout.name === 'series'
    ? writeSeries(view, o, ring.data, at)
    : writePane(view, o, ring.data, at, pane * ring.paneMs);
}

function readBody(ring: PaneRing, pane: number, view: DataView, o: number, scratch: Float64Array): number {
  return ring.layout.name === 'series'
    ? readSeries(view, o, scratch)
    : readPane(view, o, scratch, pane * ring.paneMs);
}

function writePane(view: DataView, o: number, d: Float64Array, at: number, start: number): number {
  const count = d[at + PANE.count] as number;
  const newest = d[at + PANE.newest] as number;
  const offset = newest - start;
  const short =
    Number.isInteger(offset) && offset >= 0 && offset <= 0xffffffff && Object.is(start + offset, newest);
  const mask =
    ((d[at + (F.n as number)] as number) > 0 ? FLOW : 0) |
    ((d[at + (P.n as number)] as number) > 0 ? PRESSURE : 0) |
    ((d[at + (T.n as number)] as number) > 0 ? TEMPERATURE : 0) |
    ((d[at + (V.min as number)] as number) <= (d[at + (V.max as number)] as number) ? VOLUME : 0) |
    (short ? NEWEST_OFFSET : 0);
  if (count === 1 && isSingle(d, at, mask)) return writeSingle(view, o, d, at, mask, offset);
  const implied =
    (!(mask & FLOW) || d[at + (F.n as number)] === count) &&
    (!(mask & PRESSURE) || d[at + (P.n as number)] === count) &&
    (!(mask & TEMPERATURE) || d[at + (T.n as number)] === count);
  const flowing = d[at + PANE.flowing] === count;
  view.setUint8(o, mask | (implied ? COUNTS_IMPLIED : 0) | (flowing ? ALL_FLOWING : 0));
  view.setUint32(o + 1, count, true);
  o += 5;
  if (!flowing) {
    view.setUint32(o, d[at + PANE.flowing] as number, true);
    o += 4;
  }
  o = writeNewest(view, o, mask, newest, offset);
  if (mask & FLOW) o = measurement(view, o, d, at + (F.n as number), 4, implied);
  if (mask & PRESSURE) o = measurement(view, o, d, at + (P.n as number), 3, implied);
  if (mask & TEMPERATURE) o = measurement(view, o, d, at + (T.n as number), 3, implied);
  if (mask & VOLUME) o = doubles(view, o, d, at + (V.min as number), 2);
  return o;
}

function readPane(view: DataView, o: number, pane: Float64Array, start: number): number {
  pane.fill(0);
  pane[PANE.newest] = Number.NEGATIVE_INFINITY;
  for (const stats of [F, P, T, V]) {
    pane[stats.min as number] = Number.POSITIVE_INFINITY;
    pane[stats.max as number] = Number.NEGATIVE_INFINITY;
  }
  const mask = view.getUint8(o);
  if (mask & SINGLE) return readSingle(view, o, pane, mask, start);
  const count = view.getUint32(o + 1, true);
  const implied = (mask & COUNTS_IMPLIED) !== 0;
  pane[PANE.count] = count;
  o += 5;
  if (mask & ALL_FLOWING) {
    pane[PANE.flowing] = count;
  } else {
    pane[PANE.flowing] = view.getUint32(o, true);
    o += 4;
  }
  o = readNewest(view, o, pane, mask, start);
  if (mask & FLOW) o = readMeasurement(view, o, pane, F.n as number, 4, implied ? count : undefined);
  if (mask & PRESSURE) o = readMeasurement(view, o, pane, P.n as number, 3, implied ? count : undefined);
  if (mask & TEMPERATURE) o = readMeasurement(view, o, pane, T.n as number, 3, implied ? count : undefined);
  if (mask & VOLUME) o = readDoubles(view, o, pane, V.min as number, 2);
  return o;
}

/** A measurement's count (unless implied), then its `stats` doubles from the mean on. */
function measurement(
  view: DataView,
  o: number,
  d: Float64Array,
  n: number,
  stats: number,
  implied: boolean,
): number {
  if (!implied) {
    view.setUint32(o, d[n] as number, true);
    o += 4;
  }
  return doubles(view, o, d, n + 1, stats);
}

function readMeasurement(
  view: DataView,
  o: number,
  pane: Float64Array,
  n: number,
  stats: number,
  count: number | undefined,
): number {
  if (count === undefined) {
    pane[n] = view.getUint32(o, true);
    o += 4;
  } else {
    pane[n] = count;
  }
  return readDoubles(view, o, pane, n + 1, stats);
}

/**
 * Whether a pane of one reading is exactly what its values alone restore
 * (checked bit for bit, not assumed: a pane merged from elsewhere, or a
 * signed zero, is written in full).
 */
function isSingle(d: Float64Array, at: number, mask: number): boolean {
  if (mask & FLOW) {
    if (!oneValue(d, at, F) || !Object.is(d[at + (F.m2 as number)], 0)) return false;
    if (d[at + PANE.flowing] !== ((d[at + (F.mean as number)] as number) > 0 ? 1 : 0)) return false;
  } else if (d[at + PANE.flowing] !== 0) {
    return false;
  }
  if (mask & PRESSURE && !oneValue(d, at, P)) return false;
  if (mask & TEMPERATURE && !oneValue(d, at, T)) return false;
  if (mask & VOLUME && !Object.is(d[at + (V.min as number)], d[at + (V.max as number)])) return false;
  return true;
}

/** A measurement of one value: its count is 1, its mean, min and max the same double. */
function oneValue(d: Float64Array, at: number, stats: (typeof STAT_AT)[keyof typeof STAT_AT]): boolean {
  const mean = d[at + (stats.mean as number)];
  return (
    d[at + (stats.n as number)] === 1 &&
    Object.is(mean, d[at + (stats.min as number)]) &&
    Object.is(mean, d[at + (stats.max as number)])
  );
}

/** `[mask][newest]` and one f64 per measurement present. */
function writeSingle(
  view: DataView,
  o: number,
  d: Float64Array,
  at: number,
  mask: number,
  offset: number,
): number {
  view.setUint8(o, mask | SINGLE);
  o = writeNewest(view, o + 1, mask, d[at + PANE.newest] as number, offset);
  for (const [bit, from] of SINGLE_VALUE_AT) {
    if (!(mask & bit)) continue;
    view.setFloat64(o, d[at + from] as number, true);
    o += 8;
  }
  return o;
}

function readSingle(view: DataView, o: number, pane: Float64Array, mask: number, start: number): number {
  pane[PANE.count] = 1;
  o = readNewest(view, o + 1, pane, mask, start);
  for (const [bit, stats] of [
    [FLOW, F],
    [PRESSURE, P],
    [TEMPERATURE, T],
  ] as const) {
    if (!(mask & bit)) continue;
    const x = view.getFloat64(o, true);
    o += 8;
    pane[stats.n as number] = 1;
    pane[stats.mean as number] = x;
    pane[stats.min as number] = x;
    pane[stats.max as number] = x;
    if (bit === FLOW) pane[PANE.flowing] = x > 0 ? 1 : 0;
  }
  if (mask & VOLUME) {
    const x = view.getFloat64(o, true);
    o += 8;
    pane[V.min as number] = x;
    pane[V.max as number] = x;
  }
  return o;
}

/** The newest event time: its offset in the pane (u32) with NEWEST_OFFSET, else itself (f64). */
function writeNewest(view: DataView, o: number, mask: number, newest: number, offset: number): number {
  if (mask & NEWEST_OFFSET) {
    view.setUint32(o, offset, true);
    return o + 4;
  }
  view.setFloat64(o, newest, true);
  return o + 8;
}

function readNewest(view: DataView, o: number, pane: Float64Array, mask: number, start: number): number {
  if (mask & NEWEST_OFFSET) {
    pane[PANE.newest] = start + view.getUint32(o, true);
    return o + 4;
  }
  pane[PANE.newest] = view.getFloat64(o, true);
  return o + 8;
}

/** Where a single pane's one value per measurement is read from (the mean; volume's min). */
const SINGLE_VALUE_AT: readonly (readonly [number, number])[] = [
  [FLOW, F.mean as number],
  [PRESSURE, P.mean as number],
  [TEMPERATURE, T.mean as number],
  [VOLUME, V.min as number],
];

function writeSeries(view: DataView, o: number, d: Float64Array, at: number): number {
  const count = d[at + SERIES.count] as number;
  if (d[at + SERIES.flowN] === count && d[at + SERIES.pressureN] === count) {
    view.setUint32(o, (count | SERIES_COUNTS_IMPLIED) >>> 0, true);
    o += 4;
  } else {
    view.setUint32(o, count, true);
    view.setUint32(o + 4, d[at + SERIES.flowN] as number, true);
    view.setUint32(o + 8, d[at + SERIES.pressureN] as number, true);
    o += 12;
  }
  view.setFloat64(o, d[at + SERIES.flowMean] as number, true);
  view.setFloat64(o + 8, d[at + SERIES.pressureMean] as number, true);
  return o + 16;
}

function readSeries(view: DataView, o: number, pane: Float64Array): number {
  const head = view.getUint32(o, true);
  if (head & SERIES_COUNTS_IMPLIED) {
    const count = head & ~SERIES_COUNTS_IMPLIED;
    pane[SERIES.count] = count;
    pane[SERIES.flowN] = count;
    pane[SERIES.pressureN] = count;
    o += 4;
  } else {
    pane[SERIES.count] = head;
    pane[SERIES.flowN] = view.getUint32(o + 4, true);
    pane[SERIES.pressureN] = view.getUint32(o + 8, true);
    o += 12;
  }
  pane[SERIES.flowMean] = view.getFloat64(o, true);
  pane[SERIES.pressureMean] = view.getFloat64(o + 8, true);
  return o + 16;
}

function doubles(view: DataView, o: number, d: Float64Array, from: number, count: number): number {
  for (let i = 0; i < count; i++) view.setFloat64(o + i * 8, d[from + i] as number, true);
  return o + count * 8;
}

function readDoubles(view: DataView, o: number, pane: Float64Array, from: number, count: number): number {
  for (let i = 0; i < count; i++) pane[from + i] = view.getFloat64(o + i * 8, true);
  return o + count * 8;
}
