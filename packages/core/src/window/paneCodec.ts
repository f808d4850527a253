import { PANE, PANE_WIDTH, SERIES, SERIES_WIDTH, STAT_AT } from './pane.ts';
import type { PaneRing } from './paneRing.ts';

/**
 * Panes as bytes, for the state the aggregator persists: compact, since
 * Redis holds every node's panes. Counts go as u32 and only the
 * measurements a pane holds are written (a presence mask), so a pane of
 * flow and pressure takes 85 bytes, one with all four 129, a series hour 32;
 * the doubles keep every bit (windows stay exact after a restart).
 *
 * A list is `[pane number i32][pane]...`, little-endian.
 */

const FLOW = 1;
const PRESSURE = 2;
const TEMPERATURE = 4;
const VOLUME = 8;

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

/** Encodes the given panes of a ring (each must be held), in `arena` when given. */
export function encodePanes(ring: PaneRing, panes: readonly number[], arena?: ByteArena): Uint8Array {
  const room = panes.length * MAX_PANE_BYTES;
  const into = arena ?? new ByteArena(room);
  into.room(room);
  const start = into.used;
  let o = start;
  for (const pane of panes) o = writeHeldPane(ring, pane, into.view, o);
  into.used = o;
  return into.bytes.subarray(start, o);
}

/** Decodes a list into `ring`'s panes (see encodePanes); returns the pane numbers read. */
export function decodePanes(ring: PaneRing, bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scratch = new Float64Array(ring.layout.name === 'series' ? SERIES_WIDTH : PANE_WIDTH);
  const read: number[] = [];
  const panes: Float64Array[] = [];
  let o = 0;
  while (o < bytes.byteLength) {
    read.push(view.getInt32(o, true));
    o = readPaneAt(ring, view, o, scratch);
    panes.push(scratch.slice());
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
  return ring.layout.name === 'series'
    ? writeSeries(view, o + 4, ring.data, at)
    : writePane(view, o + 4, ring.data, at);
}

/**
 * Reads the pane written at `o` (see writeHeldPane; its number is
 * `view.getInt32(o, true)`) into `scratch`, in the ring's layout; returns
 * the offset after it.
 */
export function readPaneAt(ring: PaneRing, view: DataView, o: number, scratch: Float64Array): number {
  return ring.layout.name === 'series' ? readSeries(view, o + 4, scratch) : readPane(view, o + 4, scratch);
}

function writePane(view: DataView, o: number, d: Float64Array, at: number): number {
  const mask =
    ((d[at + (F.n as number)] as number) > 0 ? FLOW : 0) |
    ((d[at + (P.n as number)] as number) > 0 ? PRESSURE : 0) |
    ((d[at + (T.n as number)] as number) > 0 ? TEMPERATURE : 0) |
    ((d[at + (V.min as number)] as number) <= (d[at + (V.max as number)] as number) ? VOLUME : 0);
  view.setUint8(o, mask);
  view.setUint32(o + 1, d[at + PANE.count] as number, true);
  view.setUint32(o + 5, d[at + PANE.flowing] as number, true);
  view.setFloat64(o + 9, d[at + PANE.newest] as number, true);
  o += 17;
  if (mask & FLOW) {
    view.setUint32(o, d[at + (F.n as number)] as number, true);
    o = doubles(view, o + 4, d, at + (F.mean as number), 4);
  }
  if (mask & PRESSURE) {
    view.setUint32(o, d[at + (P.n as number)] as number, true);
    o = doubles(view, o + 4, d, at + (P.mean as number), 3);
  }
  if (mask & TEMPERATURE) {
    view.setUint32(o, d[at + (T.n as number)] as number, true);
    o = doubles(view, o + 4, d, at + (T.mean as number), 3);
  }
  if (mask & VOLUME) o = doubles(view, o, d, at + (V.min as number), 2);
  return o;
}

function readPane(view: DataView, o: number, pane: Float64Array): number {
  pane.fill(0);
  pane[PANE.newest] = Number.NEGATIVE_INFINITY;
  for (const stats of [F, P, T, V]) {
    pane[stats.min as number] = Number.POSITIVE_INFINITY;
    pane[stats.max as number] = Number.NEGATIVE_INFINITY;
  }
  const mask = view.getUint8(o);
  pane[PANE.count] = view.getUint32(o + 1, true);
  pane[PANE.flowing] = view.getUint32(o + 5, true);
  pane[PANE.newest] = view.getFloat64(o + 9, true);
  o += 17;
  if (mask & FLOW) {
    pane[F.n as number] = view.getUint32(o, true);
    o = readDoubles(view, o + 4, pane, F.mean as number, 4);
  }
  if (mask & PRESSURE) {
    pane[P.n as number] = view.getUint32(o, true);
    o = readDoubles(view, o + 4, pane, P.mean as number, 3);
  }
  if (mask & TEMPERATURE) {
    pane[T.n as number] = view.getUint32(o, true);
    o = readDoubles(view, o + 4, pane, T.mean as number, 3);
  }
  if (mask & VOLUME) o = readDoubles(view, o, pane, V.min as number, 2);
  return o;
}

function writeSeries(view: DataView, o: number, d: Float64Array, at: number): number {
  view.setUint32(o, d[at + SERIES.count] as number, true);
  view.setUint32(o + 4, d[at + SERIES.flowN] as number, true);
  view.setUint32(o + 8, d[at + SERIES.pressureN] as number, true);
  view.setFloat64(o + 12, d[at + SERIES.flowMean] as number, true);
  view.setFloat64(o + 20, d[at + SERIES.pressureMean] as number, true);
  return o + 28;
}

function readSeries(view: DataView, o: number, pane: Float64Array): number {
  pane[SERIES.count] = view.getUint32(o, true);
  pane[SERIES.flowN] = view.getUint32(o + 4, true);
  pane[SERIES.pressureN] = view.getUint32(o + 8, true);
  pane[SERIES.flowMean] = view.getFloat64(o + 12, true);
  pane[SERIES.pressureMean] = view.getFloat64(o + 20, true);
  return o + 28;
}

function doubles(view: DataView, o: number, d: Float64Array, from: number, count: number): number {
  for (let i = 0; i < count; i++) view.setFloat64(o + i * 8, d[from + i] as number, true);
  return o + count * 8;
}

function readDoubles(view: DataView, o: number, pane: Float64Array, from: number, count: number): number {
  for (let i = 0; i < count; i++) pane[from + i] = view.getFloat64(o + i * 8, true);
  return o + count * 8;
}
