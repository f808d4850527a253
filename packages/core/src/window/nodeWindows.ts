import { unlessNaN } from '../missing.ts';
import type { Range } from '../ranges.ts';
import type { Reading } from '../reading.ts';
import { emptyPane, FULL_LAYOUT, mergePane, PANE, SERIES, SERIES_LAYOUT } from './pane.ts';
import { PaneRing, type RingShape, ringShape } from './paneRing.ts';
import {
  PANE_SIZES,
  RING_OF_RANGE,
  RINGS,
  SERIES_PANE_MS,
  SERIES_RING,
  type WindowBounds,
  windowBounds,
} from './windows.ts';

export interface LatestValues {
  readonly timestamp: number;
  readonly flow_rate?: number;
  readonly pressure?: number;
  readonly temperature?: number;
  readonly volume?: number;
}

export const METADATA_KEYS = ['node_name', 'node_type', 'district_id'] as const;
export type MetadataKey = (typeof METADATA_KEYS)[number];
/** Each metadata field with the event time of the reading that carried it. */
export type NodeMetadata = Partial<Record<MetadataKey, { value: string; timestamp: number }>>;

export interface WindowSummary {
  readonly range: Range;
  readonly bounds: WindowBounds;
  /** Event time the window covers up to: T, or a newer (future-stamped) reading in its last pane. */
  readonly end: number;
  /** A pane (PANE layout) merged over the window. */
  readonly pane: Float64Array;
}

/** One hour of the 7-day series: its start, and the mean flow and pressure (absent without values). */
export interface HourlyPoint {
  readonly hour: number;
  readonly at: number;
  readonly flow: number | undefined;
  readonly pressure: number | undefined;
}

/** The rings' shapes for each `aheadMs` in use (one, from the configuration), shared by every node. */
const SHAPES = new Map<number, readonly RingShape[]>();

function shapesFor(aheadMs: number): readonly RingShape[] {
  let shapes = SHAPES.get(aheadMs);
  if (shapes === undefined) {
    shapes = RINGS.map(({ paneMs, history, series }) =>
      ringShape(paneMs, history, Math.ceil(aheadMs / paneMs), series ? SERIES_LAYOUT : FULL_LAYOUT),
    );
    SHAPES.set(aheadMs, shapes);
  }
  return shapes;
}

/**
 * A node's identity numbers, in one Float64Array (NaN: absent): the latest
 * reading's event time and values, then each metadata field's event time.
 */
const LATEST_TIME = 0;
const LATEST_VALUES = ['flow_rate', 'pressure', 'temperature', 'volume'] as const;
const LATEST_AT = 1;
const METADATA_TIME = LATEST_AT + LATEST_VALUES.length;
const IDENTITY_NUMBERS = METADATA_TIME + METADATA_KEYS.length;

/** The windows' coarsest ring: its reach is the live horizon. */
const HORIZON_RING = PANE_SIZES.length - 1;

export type AddOutcome = 'applied' | 'too_late' | 'too_early';

/**
 * Everything the live windows know about one node: a ring of panes per pane
 * size, the 7-day series' hourly ring, the latest reading's values and the
 * metadata. The cost of a reading is one pane update per ring, whatever the
 * window or the number of nodes; its memory, what the rings hold.
 *
 * An evaluation merges the window's panes (at most 61, ~2 µs). It is done
 * when a node's metrics are written (once per metrics round, not per
 * reading), so no merged result is cached: at 100,000 nodes a cache per
 * range cost ~1.5 KB a node and a good share of the garbage collector's time.
 */
export class NodeWindows {
  readonly nodeId: string;
  /** The rings; each marks the panes changed since it was last persisted (PaneRing.changed). */
  readonly rings: readonly PaneRing[];
  /**
   * The latest values and the metadata's event times (see LATEST_TIME),
   * updated in place with each reading; `latest` and `metadata` are made
   * from them when asked (records that die young). As records held here,
   * with a heap number per value and time, they were eight to eleven
   * objects a node that every full collection marked.
   */
  readonly #numbers = new Float64Array(IDENTITY_NUMBERS).fill(Number.NaN);
  /** The metadata's values, in METADATA_KEYS' order (each with its time in #numbers). */
  #nodeName: string | undefined;
  #nodeType: string | undefined;
  #districtId: string | undefined;
  /** Latest values or metadata (a value or its event time) changed since the state was last persisted. */
  latestChanged = false;
  /** A metadata value changed since the dashboard's `metadata` key was last written (a new node: true). */
  metadataChanged = true;
  readonly #aheadMs: number;

  constructor(nodeId: string, aheadMs: number) {
    this.nodeId = nodeId;
    this.#aheadMs = aheadMs;
    const rings: PaneRing[] = [];
    for (const shape of shapesFor(aheadMs)) rings.push(new PaneRing(shape, rings));
    this.rings = rings;
  }

  add(reading: Reading, now: number): AddOutcome {
    if (reading.timestamp > now + this.#aheadMs) return 'too_early';
    const coarsest = this.rings[HORIZON_RING] as PaneRing;
    if (coarsest.paneOf(reading.timestamp) < coarsest.paneOf(now) - coarsest.history) return 'too_late';
    for (let i = 0; i < this.rings.length; i++) (this.rings[i] as PaneRing).add(reading, now);
    const numbers = this.#numbers;
    // NaN (no latest yet) compares false: the first reading is the latest.
    if (!(reading.timestamp <= (numbers[LATEST_TIME] as number))) {
      this.#setLatest(reading);
      this.latestChanged = true;
    }
    for (let k = 0; k < METADATA_KEYS.length; k++) {
      const value = reading[METADATA_KEYS[k] as MetadataKey];
      const at = METADATA_TIME + k;
      const time = numbers[at] as number;
      if (value === undefined || reading.timestamp < time) continue;
      const known = this.#metadataValue(k);
      if (known === undefined) {
        this.#setMetadataValue(k, value);
        numbers[at] = reading.timestamp;
        this.metadataChanged = true;
        this.latestChanged = true;
        continue;
      }
      if (known !== value) this.metadataChanged = true;
      if (known !== value || time !== reading.timestamp) this.latestChanged = true;
      this.#setMetadataValue(k, value);
      numbers[at] = reading.timestamp;
    }
    return 'applied';
  }

  /** The values of the reading with the newest event time (undefined before any); a record of its own. */
  get latest(): LatestValues | undefined {
    const numbers = this.#numbers;
    const timestamp = numbers[LATEST_TIME] as number;
    if (Number.isNaN(timestamp)) return undefined;
    // Every field always present (undefined when the reading lacked it): one shape for every record.
    return {
      timestamp,
      flow_rate: unlessNaN(numbers[LATEST_AT] as number),
      pressure: unlessNaN(numbers[LATEST_AT + 1] as number),
      temperature: unlessNaN(numbers[LATEST_AT + 2] as number),
      volume: unlessNaN(numbers[LATEST_AT + 3] as number),
    };
  }

  /** The latest reading's event time (NaN before any), without a record. */
  get latestTime(): number {
    return this.#numbers[LATEST_TIME] as number;
  }

  /** Copied in. */
  set latest(values: LatestValues | undefined) {
    if (values === undefined) this.#numbers.fill(Number.NaN, LATEST_TIME, METADATA_TIME);
    else this.#setLatest(values);
  }

  /** Each metadata field with the event time of the reading that carried it; a record of its own. */
  get metadata(): NodeMetadata {
    const metadata: NodeMetadata = {};
    for (let k = 0; k < METADATA_KEYS.length; k++) {
      const value = this.#metadataValue(k);
      if (value !== undefined) {
        metadata[METADATA_KEYS[k] as MetadataKey] = {
          value,
          timestamp: this.#numbers[METADATA_TIME + k] as number,
        };
      }
    }
    return metadata;
  }

  /** Copied in, field by field. */
  set metadata(metadata: NodeMetadata) {
    for (let k = 0; k < METADATA_KEYS.length; k++) {
      const field = metadata[METADATA_KEYS[k] as MetadataKey];
      this.#setMetadataValue(k, field?.value);
      this.#numbers[METADATA_TIME + k] = field === undefined ? Number.NaN : field.timestamp;
    }
  }

  #metadataValue(k: number): string | undefined {
    return k === 0 ? this.#nodeName : k === 1 ? this.#nodeType : this.#districtId;
  }

  #setMetadataValue(k: number, value: string | undefined): void {
    if (k === 0) this.#nodeName = value;
    else if (k === 1) this.#nodeType = value;
    else this.#districtId = value;
  }

  #setLatest(values: LatestValues): void {
    const numbers = this.#numbers;
    numbers[LATEST_TIME] = values.timestamp;
    for (let i = 0; i < LATEST_VALUES.length; i++) {
      numbers[LATEST_AT + i] = values[LATEST_VALUES[i] as (typeof LATEST_VALUES)[number]] ?? Number.NaN;
    }
  }

  /** The window of `range` at time `at`, merged. */
  evaluate(range: Range, at: number): WindowSummary {
    const bounds = windowBounds(range, at);
    const ring = this.rings[RING_OF_RANGE[range]] as PaneRing;
    const pane = emptyPane();
    ring.mergeRange(pane, bounds.first, bounds.last, mergePane);
    return { range, bounds, end: Math.max(at, pane[PANE.newest] as number), pane };
  }

  /** The hours with at least one reading in the 7d window at `at`, oldest first. */
  hourlySeries(at: number): HourlyPoint[] {
    const points: HourlyPoint[] = [];
    this.forEachSeriesHour(at, (start, flow, pressure) => {
      points.push({ hour: start / SERIES_PANE_MS, at: start, flow, pressure });
    });
    return points;
  }

  /**
   * `hourlySeries` without an object per hour (a full metrics round writes
   * every node's series): `visit` gets each hour's start (ms) and its mean
   * flow and pressure, undefined without one.
   */
  forEachSeriesHour(
    at: number,
    visit: (start: number, flow: number | undefined, pressure: number | undefined) => void,
  ): void {
    const bounds = windowBounds('7d', at);
    const ring = this.rings[SERIES_RING] as PaneRing;
    const data = ring.data;
    for (let hour = ring.paneOf(bounds.start), last = ring.paneOf(at); hour <= last; hour++) {
      const o = ring.offsetOf(hour);
      if (o < 0 || (data[o + SERIES.count] as number) === 0) continue;
      visit(
        hour * ring.paneMs,
        (data[o + SERIES.flowN] as number) > 0 ? (data[o + SERIES.flowMean] as number) : undefined,
        (data[o + SERIES.pressureN] as number) > 0 ? (data[o + SERIES.pressureMean] as number) : undefined,
      );
    }
  }

  /**
   * True when no window at `at` holds a reading: the node can be forgotten.
   * The 30-day window holds every reading any shorter window holds.
   */
  isSilent(at: number): boolean {
    return (this.evaluate('30d', at).pane[PANE.count] as number) === 0;
  }

  /** Restores a persisted pane, in its ring's layout (on start, or from a reconcile). */
  restorePane(ring: number, pane: number, content: Float64Array, from = 0): void {
    (this.rings[ring] as PaneRing).put(pane, content, from);
  }

  /** Sets a pane of any ring from a full pane (the backfill's). */
  restoreFullPane(ring: number, pane: number, full: Float64Array, from = 0): void {
    (this.rings[ring] as PaneRing).putFull(pane, full, from);
  }

  /** Bytes of pane data this node holds (memory accounting). */
  get paneBytes(): number {
    let bytes = 0;
    for (const ring of this.rings) bytes += ring.bytes;
    return bytes;
  }
}
