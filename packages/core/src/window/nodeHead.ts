import { type LatestValues, METADATA_KEYS, type NodeMetadata, type NodeWindows } from './nodeWindows.ts';
import { PANE_WIDTH, SERIES_WIDTH } from './pane.ts';
import { type ByteArena, MAX_PANE_BYTES, readPaneAt, writeHeldPane } from './paneCodec.ts';
import { NO_PANE } from './paneRing.ts';

/**
 * A node's head: what an in-order reading changes, as one value. The
 * latest values, the metadata (each value with the event time of the
 * reading that carried it) and every ring's newest pane (as last persisted,
 * `ring.persistedNewest`; the ring's older panes are persisted apart).
 *
 * One value rather than a field each because a commit's cost is mostly per
 * argument (the client's encoding and the script's reading of each): a node
 * with one new reading had 16 arguments, it now has 3.
 *
 * Layout, little-endian:
 * - `[format u8 = 1]`
 * - `[latest mask u8]`: 0x80 when there is a latest reading, then a bit per
 *   measurement (flow, pressure, temperature, volume); `[timestamp f64]`
 *   and each measurement present `[f64]`;
 * - `[metadata mask u8]`: a bit per METADATA_KEYS entry; each present
 *   `[timestamp f64][utf-8 length u16][utf-8]`;
 * - to the end, per ring whose newest pane is held: `[ring u8][pane]`
 *   (paneCodec's `[number i32][pane]`).
 */
const FORMAT = 1;
const HAS_LATEST = 0x80;
const MEASUREMENTS = ['flow_rate', 'pressure', 'temperature', 'volume'] as const;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** Encodes the node's head into `arena`. */
export function encodeNodeHead(node: NodeWindows, arena: ByteArena): Uint8Array {
  const { latest, metadata } = node;
  let room = 3 + 8 + MEASUREMENTS.length * 8 + node.rings.length * (1 + MAX_PANE_BYTES);
  for (const key of METADATA_KEYS) {
    const field = metadata[key];
    if (field !== undefined) room += 10 + 3 * field.value.length;
  }
  arena.room(room);
  const { bytes, view } = arena;
  const start = arena.used;
  let o = start;
  view.setUint8(o++, FORMAT);

  const maskAt = o++;
  let mask = 0;
  if (latest !== undefined) {
    mask = HAS_LATEST;
    view.setFloat64(o, latest.timestamp, true);
    o += 8;
    MEASUREMENTS.forEach((m, bit) => {
      const value = latest[m];
      if (value === undefined) return;
      mask |= 1 << bit;
      view.setFloat64(o, value, true);
      o += 8;
    });
  }
  view.setUint8(maskAt, mask);

  const metaAt = o++;
  let meta = 0;
  METADATA_KEYS.forEach((key, bit) => {
    const field = metadata[key];
    if (field === undefined) return;
    meta |= 1 << bit;
    view.setFloat64(o, field.timestamp, true);
    const length = writeUtf8(field.value, bytes, o + 10);
    view.setUint16(o + 8, length, true);
    o += 10 + length;
  });
  view.setUint8(metaAt, meta);

  node.rings.forEach((ring, r) => {
    const newest = ring.persistedNewest;
    if (newest === NO_PANE) return;
    const after = writeHeldPane(ring, newest, view, o + 1);
    if (after === o + 1) return;
    view.setUint8(o, r);
    o = after;
  });
  arena.used = o;
  return bytes.subarray(start, o);
}

/**
 * Restores a head into the node: its latest values and metadata, and each
 * ring's newest pane (which becomes the ring's `persistedNewest`).
 */
export function decodeNodeHead(node: NodeWindows, bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = view.getUint8(0);
  if (format !== FORMAT) throw new Error(`a node head of format ${format} (this build reads ${FORMAT})`);
  let o = 1;
  const mask = view.getUint8(o++);
  if (mask & HAS_LATEST) {
    const latest: { -readonly [K in keyof LatestValues]: LatestValues[K] } = {
      timestamp: view.getFloat64(o, true),
    };
    o += 8;
    MEASUREMENTS.forEach((m, bit) => {
      if (!(mask & (1 << bit))) return;
      latest[m] = view.getFloat64(o, true);
      o += 8;
    });
    node.latest = latest;
  } else {
    node.latest = undefined;
  }

  const meta = view.getUint8(o++);
  const metadata: NodeMetadata = {};
  METADATA_KEYS.forEach((key, bit) => {
    if (!(meta & (1 << bit))) return;
    const timestamp = view.getFloat64(o, true);
    const length = view.getUint16(o + 8, true);
    metadata[key] = { value: fromUtf8.decode(bytes.subarray(o + 10, o + 10 + length)), timestamp };
    o += 10 + length;
  });
  node.metadata = metadata;

  const pane = new Float64Array(PANE_WIDTH);
  const series = new Float64Array(SERIES_WIDTH);
  while (o < bytes.byteLength) {
    const ring = node.rings[view.getUint8(o)];
    if (ring === undefined)
      throw new Error(`a node head names ring ${view.getUint8(o)}, which this build lacks`);
    const number = view.getInt32(o + 1, true);
    const scratch = ring.layout.name === 'series' ? series : pane;
    o = readPaneAt(ring, view, o + 1, scratch);
    ring.put(number, scratch);
    ring.persistedNewest = number;
  }
}

/** Writes `text` as UTF-8 at `at` (room for 3 bytes per UTF-16 unit); returns the bytes written. */
function writeUtf8(text: string, bytes: Uint8Array, at: number): number {
  // Metadata is ASCII in practice: byte by byte is cheaper than a subarray per value.
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) return utf8.encodeInto(text, bytes.subarray(at)).written;
    bytes[at + i] = code;
  }
  return text.length;
}
