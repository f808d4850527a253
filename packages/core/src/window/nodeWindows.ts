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

interface MutableLatest {
  timestamp: number;
  flow_rate: number | undefined;
  pressure: number | undefined;
  temperature: number | undefined;
  volume: number | undefined;
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
   * The latest values and the metadata are records this node owns and
   * updates in place with each reading (set from outside, they are copied
   * in): made anew per reading, each lived until the node's next reading,
   * seconds, long enough to be copied by the young generation's collections
   * and to end as garbage in the old one (three to four objects a reading).
   */
  #latest: MutableLatest | undefined;
  #metadata: NodeMetadata = {};
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
    if (this.#latest === undefined || reading.timestamp > this.#latest.timestamp) {
      this.#setLatest(reading);
      this.latestChanged = true;
    }
    for (const key of METADATA_KEYS) {
      const value = reading[key];
      const known = this.#metadata[key];
      if (value === undefined || (known !== undefined && reading.timestamp < known.timestamp)) continue;
      if (known === undefined) {
        this.#metadata[key] = { value, timestamp: reading.timestamp };
        this.metadataChanged = true;
        this.latestChanged = true;
        continue;
      }
      if (known.value !== value) this.metadataChanged = true;
      if (known.value !== value || known.timestamp !== reading.timestamp) this.latestChanged = true;
      known.value = value;
      known.timestamp = reading.timestamp;
    }
    return 'applied';
  }

  /** The values of the reading with the newest event time (undefined before any). */
  get latest(): LatestValues | undefined {
    return this.#latest;
  }

  /** Copied in: the node's record stays its own. */
  set latest(values: LatestValues | undefined) {
    if (values === undefined) this.#latest = undefined;
    else this.#setLatest(values);
  }

  /** Each metadata field with the event time of the reading that carried it. */
  get metadata(): NodeMetadata {
    return this.#metadata;
  }

  /** Copied in, field by field: the node's records stay its own. */
  set metadata(metadata: NodeMetadata) {
    const owned: NodeMetadata = {};
    for (const key of METADATA_KEYS) {
      const field = metadata[key];
      if (field !== undefined) owned[key] = { value: field.value, timestamp: field.timestamp };
    }
    this.#metadata = owned;
  }

  #setLatest(values: LatestValues): void {
    // Every field always present (undefined when the reading lacks it): one shape for every node.
    this.#latest ??= {
      timestamp: 0,
      flow_rate: undefined,
      pressure: undefined,
      temperature: undefined,
      volume: undefined,
    };
    const latest = this.#latest;
    latest.timestamp = values.timestamp;
    latest.flow_rate = values.flow_rate;
    latest.pressure = values.pressure;
    latest.temperature = values.temperature;
    latest.volume = values.volume;
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
