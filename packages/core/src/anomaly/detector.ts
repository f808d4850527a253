import { touchLines } from '../cacheLines.ts';
import { unlessNaN } from '../missing.ts';
import type { Reading } from '../reading.ts';
import type { ByteArena } from '../window/paneCodec.ts';
import { EvaluatedTypes } from './evaluatedTypes.ts';
import { AnomalyLifecycle, NO_EVENTS } from './lifecycle.ts';
import {
  recentCapacity,
  recentCapacityFor,
  recentDoubles,
  recentDropOldest,
  recentGrown,
  recentInit,
  recentLength,
  recentMove,
  recentNewest,
  recentOldestTime,
  recentPush,
  recentSums,
  recentTimes,
  recentValues,
  recentWriteWithAges,
} from './recentValues.ts';
import { type AnomalySettings, type Bounds, boundsFor } from './settings.ts';
import type { AnomalyEvent, AnomalyRecord, Breach, PendingAnomaly } from './types.ts';
import { VALUE_SCORE_BYTES, ValueScore } from './valueScore.ts';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** Nights kept for the leak baseline. */
const BASELINE_NIGHTS = 14;

type Measured = 'flow_rate' | 'pressure';

/**
 * A detector's state to persist now (`NodeDetector.checkpoint`). It reads
 * the detector as it is: encode it before the detector observes or ticks
 * again.
 *
 * `part`: `'state'`, the whole state (`encode`), and the scores with it
 * when `scores`; `'lifecycle'`, only what decides the anomalies' events
 * (`encodeLifecycle`: node type, runs, anomalies open and pending), the
 * state's JSON part, persisted apart and newer than the state's own; the
 * learning (windows, baselines, scores) waits for its checkpoint.
 */
export interface DetectorCheckpoint {
  readonly part: 'state' | 'lifecycle';
  readonly scores: boolean;
  /** A whole state that replaces a lifecycle persisted apart before it: delete that. */
  readonly replacesLifecycle: boolean;
  /** The state as records (made when asked). */
  readonly state: PersistedDetectorState;
  /** Writes the state as persisted into `arena` (NodeDetector.encodeState). */
  encode(arena: ByteArena): void;
  /** Writes the lifecycle part as persisted apart into `arena` (NodeDetector.encodeLifecycle). */
  encodeLifecycle(arena: ByteArena): void;
  /** A measurement's score state, as persisted (undefined before any). */
  scoreBytes(m: Measured): Uint8Array | undefined;
}

/** A detector's state as persisted (see `NodeDetector.state` and `checkpoint`). */
export type PersistedDetectorState = DetectorState & {
  /** The σ rule's window: the last `windowReadings` values of each measurement, oldest first. */
  window: { flow_rate: number[]; pressure: number[] };
  /** Per window value, seconds before the last reading. */
  windowAge: { flow_rate: number[]; pressure: number[] };
  /**
   * The lifecycle part was loaded from where it is persisted apart
   * (decodeEncodedState), so the next whole state replaces it.
   */
  lifecycleApart?: true;
};

/**
 * The types whose rules ran for the reading being observed, and what
 * breached: one of each for every detector (one per reading cost the hot
 * path, one per node memory); observe runs to its end before another
 * starts, and the lifecycle keeps neither.
 */
const EVALUATED = new EvaluatedTypes();
const BREACHES: Breach[] = [];
const NO_BREACHES: readonly Breach[] = Object.freeze([]);
const NOT_EXAMINED: Observation = Object.freeze({
  events: NO_EVENTS,
  breaches: NO_BREACHES,
  score: 0,
  examined: false,
});
const MEASURED = ['flow_rate', 'pressure'] as const;
/** A score's bytes in the persisted doubles. */
const SCORE_DOUBLES = VALUE_SCORE_BYTES / 8;

/*
 * A detector's numbers, in one Float64Array (NaN: absent). As fields of
 * plain objects (the state's `last` and `interval`, a run, the night, the
 * σ window's running sums, the hours' arrays) each double was a heap
 * number of its own: with the records and arrays, 27 of the 90 objects a
 * node held, which every full collection marks (test/bench/nodeObjects.ts).
 */
const LAST = 0;
const INTERVAL = 1;
const NIGHT_DAY = 2;
const NIGHT_MIN = 3;
/** A measurement's run of one repeated value: value, since, count (count 0: none). */
const RUN_AT: Readonly<Record<Measured, number>> = { flow_rate: 4, pressure: 7 };
/** A measurement's σ window's running sums: sum, squares, updates (updates NaN: not computed). */
const SUMS_AT: Readonly<Record<Measured, number>> = { flow_rate: 10, pressure: 13 };
/** 1 once the hours below learn (persisted only then). */
const HOURS_KEPT = 16;
/** Flow by hour of day: 24 means, then 24 variances, then 24 counts. */
const HOUR_MEAN = 17;
const HOUR_VARIANCE = HOUR_MEAN + 24;
const HOUR_N = HOUR_VARIANCE + 24;
const HOURS_END = HOUR_N + 24;
/**
 * When (checkpoint's `now`) the whole state and the scores were last
 * handed out (not persisted: a load starts with none).
 */
const STATE_AT = HOURS_END;
const SCORED_AT = STATE_AT + 1;
/**
 * Then the σ rule's windows, flow's and pressure's, of one capacity (see
 * recentValues.ts): the numbers are replaced by larger ones as they grow.
 */
const WINDOW_CAPACITY = SCORED_AT + 1;
const WINDOWS_AT = WINDOW_CAPACITY + 1;

/** Where measurement `m`'s σ window is in the numbers `n`. */
function windowAt(n: Float64Array, m: Measured): number {
  return m === 'flow_rate' ? WINDOWS_AT : WINDOWS_AT + recentDoubles(n[WINDOW_CAPACITY] as number);
}

/** Numbers with room for σ windows of `capacity` slots, every number NaN. */
function numbersFor(capacity: number): Float64Array {
  const n = new Float64Array(WINDOWS_AT + 2 * recentDoubles(capacity)).fill(Number.NaN);
  n[WINDOW_CAPACITY] = capacity;
  return n;
}

/** The numbers of a persisted state (or of a new detector), with σ windows of at most `limit` values. */
function numbersOf(persisted: PersistedDetectorState | undefined, limit: number): Float64Array {
  const kept = Math.max(persisted?.window.flow_rate.length ?? 0, persisted?.window.pressure.length ?? 0);
  const capacity = recentCapacityFor(Math.min(kept, limit), limit);
  const n = numbersFor(capacity);
  const last = persisted?.last ?? 0;
  for (const m of MEASURED) {
    recentInit(
      n,
      windowAt(n, m),
      capacity,
      persisted?.window[m],
      persisted?.windowAge[m].map((age) => last - age * 1000),
    );
  }
  for (const m of MEASURED) n[RUN_AT[m] + 2] = 0;
  n[HOURS_KEPT] = 0;
  n.fill(0, HOUR_MEAN, HOURS_END);
  n[STATE_AT] = Number.NEGATIVE_INFINITY;
  n[SCORED_AT] = Number.NEGATIVE_INFINITY;
  if (persisted === undefined) return n;
  n[LAST] = persisted.last ?? Number.NaN;
  n[INTERVAL] = persisted.interval ?? Number.NaN;
  if (persisted.night !== undefined) {
    n[NIGHT_DAY] = persisted.night.day;
    n[NIGHT_MIN] = persisted.night.min;
  }
  for (const m of MEASURED) {
    const run = persisted.runs[m];
    if (run === undefined) continue;
    n[RUN_AT[m]] = run.value;
    n[RUN_AT[m] + 1] = run.since;
    n[RUN_AT[m] + 2] = run.count;
  }
  const hours = persisted.hours;
  if (hours !== undefined) {
    n[HOURS_KEPT] = 1;
    n.set(hours.mean, HOUR_MEAN);
    n.set(hours.variance, HOUR_VARIANCE);
    n.set(hours.n, HOUR_N);
  }
  return n;
}

/** A node's detector state, as persisted with its windows (plain data; the σ rule's windows apart). */
export interface DetectorState {
  /** Event time of the last reading observed (older ones are not examined). */
  last?: number;
  /** Usual interval between readings (EWMA of the gaps, ms). */
  interval?: number;
  nodeType?: string;
  /** Flow by hour of day (UTC): an exponentially weighted mean and variance per hour. */
  hours?: { mean: number[]; variance: number[]; n: number[] };
  /** The current run of one repeated value per measurement. */
  runs: { flow_rate?: Run; pressure?: Run };
  /** The night being measured (its day number) and its lowest flow so far. */
  night?: { day: number; min: number };
  /** Minimum night flow of recent normal nights; nights above the baseline in a row. */
  nights: number[];
  above: number;
  /** Each measurement's calibrated score (its state's bytes, see ValueScore). */
  scores: { flow_rate?: Uint8Array; pressure?: Uint8Array };
  open: AnomalyRecord[];
  /** Breach runs not yet confirmed. */
  pending: PendingAnomaly[];
}

interface Run {
  value: number;
  since: number;
  count: number;
}

/** What one reading did: the events it caused, what breached, and how anomalous it was. */
export interface Observation {
  readonly events: readonly AnomalyEvent[];
  readonly breaches: readonly Breach[];
  /** The reading's calibrated anomaly score (0..1; the larger of its measurements'). */
  readonly score: number;
  /** False for a reading older than the last one observed (not examined). */
  readonly examined: boolean;
}

/**
 * Every detector for one node, applied one reading at a time in event-time
 * order, and to the clock (`tick`) for what only silence reveals. Pure: its
 * state is plain data, persisted with the node's windows, so a restart
 * resumes it without opening anything twice or losing a close.
 */
export class NodeDetector {
  readonly nodeId: string;
  readonly #settings: AnomalySettings;
  /** The state's numbers (see LAST and after; replaced as the σ windows grow); the rest of it in the fields below. */
  #n: Float64Array;
  #nodeType: string | undefined;
  /** Minimum night flow of recent normal nights; nights above the baseline in a row. */
  readonly #nights: number[];
  #above: number;
  readonly #lifecycle: AnomalyLifecycle;
  /**
   * Nothing open or pending (derived from the lifecycle after each change):
   * a reading with no breach then skips it, whose maps are one more cache
   * miss a reading at 10,000 nodes.
   */
  #idle: boolean;
  /**
   * Each measurement's calibrated score (created on first use, from its
   * persisted bytes if any): its bytes are the state's, persisted as they
   * are, no copy per reading.
   */
  #flowScore: ValueScore | undefined;
  #pressureScore: ValueScore | undefined;
  /** Persisted scores not yet resumed (the measurement not seen since the load). */
  #restoredFlow: Uint8Array | undefined;
  #restoredPressure: Uint8Array | undefined;
  /** Changes (readings observed, clock events) since the state was last handed out to be persisted. */
  #unsaved = 0;
  /** Readings observed since the scores were last handed out. */
  #unscored = 0;
  /**
   * Readings counted ahead towards the first checkpoint of the state and of
   * the scores after a start (checkpointPhase of the node id). Nodes that
   * start together (a restart, a fleet's first readings, one catching up)
   * and read at one rate were all due in the same commit, every
   * `checkpointReadings` readings: 10,000 nodes' scores in one commit of
   * 116 MB, the other commits 5–19 MB (docs/benchmarks.md).
   */
  #unsavedAhead: number;
  #unscoredAhead: number;
  /** Whether the lifecycle last handed out had an anomaly open or pending. */
  #savedActive = false;
  /** Changes to the lifecycle part (readings observed, clock events) since it was last handed out. */
  #lifecycleUnsaved = false;
  /** Whether the lifecycle persisted last went apart from the state (newer than the state's own). */
  #lifecycleApart: boolean;
  /** Thresholds for the node's current type, resolved once per type. */
  #bounds: { nodeType: string | undefined; flow_rate?: Bounds; pressure?: Bounds } | undefined;

  constructor(nodeId: string, settings: AnomalySettings, persisted?: PersistedDetectorState) {
    this.nodeId = nodeId;
    this.#settings = settings;
    this.#n = numbersOf(persisted, settings.windowReadings);
    this.#nodeType = persisted?.nodeType;
    this.#nights = persisted?.nights ?? [];
    this.#above = persisted?.above ?? 0;
    this.#restoredFlow = persisted?.scores.flow_rate;
    this.#restoredPressure = persisted?.scores.pressure;
    this.#lifecycle = new AnomalyLifecycle(nodeId, settings, persisted?.open ?? [], persisted?.pending ?? []);
    this.#idle = this.#lifecycle.idle;
    this.#unsavedAhead = checkpointPhase(nodeId, settings.checkpointReadings);
    this.#unscoredAhead = this.#unsavedAhead;
    this.#lifecycleApart = persisted?.lifecycleApart === true;
  }

  get open(): AnomalyRecord[] {
    return [...this.#lifecycle.open.values()];
  }

  /**
   * The whole state, as persisted: window times as seconds before the last
   * reading (not epoch milliseconds).
   */
  state(): PersistedDetectorState {
    const n = this.#n;
    const last = unlessNaN(n[LAST] as number);
    const interval = unlessNaN(n[INTERVAL] as number);
    const ages = (m: Measured) =>
      recentTimes(n, windowAt(n, m)).map((t) => Math.round(((last ?? 0) - t) / 1000));
    const runs = this.#runs();
    const flow = this.scoreBytes('flow_rate');
    const pressure = this.scoreBytes('pressure');
    const scores: DetectorState['scores'] = {
      ...(flow !== undefined && { flow_rate: flow }),
      ...(pressure !== undefined && { pressure }),
    };
    const hours = (from: number) => Array.from(n.subarray(from, from + 24));
    return {
      ...(last !== undefined && { last }),
      ...(interval !== undefined && { interval }),
      ...(this.#nodeType !== undefined && { nodeType: this.#nodeType }),
      ...(n[HOURS_KEPT] === 1 && {
        hours: { mean: hours(HOUR_MEAN), variance: hours(HOUR_VARIANCE), n: hours(HOUR_N) },
      }),
      runs,
      ...(!Number.isNaN(n[NIGHT_DAY] as number) && {
        night: { day: n[NIGHT_DAY] as number, min: n[NIGHT_MIN] as number },
      }),
      nights: this.#nights,
      above: this.#above,
      scores,
      window: {
        flow_rate: recentValues(n, windowAt(n, 'flow_rate')),
        pressure: recentValues(n, windowAt(n, 'pressure')),
      },
      windowAge: { flow_rate: ages('flow_rate'), pressure: ages('pressure') },
      open: this.open,
      pending: [...this.#lifecycle.pending.values()],
    };
  }

  /**
   * The state as persisted: what `state()` and encodeDetectorState make of
   * it, laid out `[json length u32][json][numbers, f64 little-endian]`,
   * written straight from the detector's own numbers. About 900 of these
   * go with each commit at 10,000 nodes and 50,000 readings/s, and making
   * the state's records and arrays first was about as much work as
   * encoding all the nodes' panes (docs/benchmarks.md, "A checkpoint
   * written straight from the detector").
   */
  encodeState(arena: ByteArena): void {
    const n = this.#n;
    const json = this.#stateJson();
    const flow = windowAt(n, 'flow_rate');
    const pressure = windowAt(n, 'pressure');
    const hoursKept = n[HOURS_KEPT] === 1;
    const nights = this.#nights;
    const doubles = stateNumbers(
      recentLength(n, flow) + recentLength(n, pressure),
      hoursKept ? HOURS_END - HOUR_MEAN : 0,
      nights.length,
    );
    arena.room(4 + 3 * json.length + 8 * doubles);
    const start = arena.used;
    const { written } = utf8.encodeInto(json, arena.bytes.subarray(start + 4));
    const view = arena.view;
    view.setUint32(start, written, true);
    let o = start + 4 + written;
    const nightDay = n[NIGHT_DAY] as number;
    const head = [
      STATE_VERSION,
      n[LAST] as number,
      n[INTERVAL] as number,
      this.#above,
      nightDay,
      Number.isNaN(nightDay) ? Number.NaN : (n[NIGHT_MIN] as number),
    ];
    for (const x of head) o = putDouble(view, o, x);
    const last = Number.isNaN(n[LAST] as number) ? 0 : (n[LAST] as number);
    for (const window of [flow, pressure]) {
      o = putDouble(view, o, recentLength(n, window));
      o = recentWriteWithAges(n, window, view, o, last);
    }
    o = putDouble(view, o, hoursKept ? 1 : 0);
    if (hoursKept) for (let i = HOUR_MEAN; i < HOURS_END; i++) o = putDouble(view, o, n[i] as number);
    o = putDouble(view, o, nights.length);
    for (const x of nights) o = putDouble(view, o, x);
    arena.used = o;
  }

  /**
   * The lifecycle part as persisted apart (the UTF-8 JSON of encodeState's
   * JSON part): what decides the anomalies' events, due with every commit
   * that changed it while one is open or pending (see checkpoint).
   */
  encodeLifecycle(arena: ByteArena): void {
    const json = this.#stateJson();
    arena.room(3 * json.length);
    arena.used += utf8.encodeInto(json, arena.bytes.subarray(arena.used)).written;
  }

  /** The state's JSON part: what encodeState and encodeLifecycle write of it. */
  #stateJson(): string {
    return stateJson(this.#nodeType, this.#runs(), this.open, [...this.#lifecycle.pending.values()]);
  }

  /** A measurement's score state, as persisted (undefined before any). */
  scoreBytes(m: Measured): Uint8Array | undefined {
    return m === 'flow_rate'
      ? (this.#flowScore?.bytes ?? this.#restoredFlow)
      : (this.#pressureScore?.bytes ?? this.#restoredPressure);
  }

  /** Each measurement's run of one repeated value. */
  #runs(): DetectorState['runs'] {
    const n = this.#n;
    const runs: DetectorState['runs'] = {};
    for (const m of MEASURED) {
      const at = RUN_AT[m];
      const count = n[at + 2] as number;
      if (count > 0) runs[m] = { value: n[at] as number, since: n[at + 1] as number, count };
    }
    return runs;
  }

  /** What `checkpoint` hands out: this detector, as it is until it next changes. */
  #checkpointOf(part: DetectorCheckpoint['part'], scores: boolean, now?: number): DetectorCheckpoint {
    const detector = this;
    const replacesLifecycle = part === 'state' && this.#lifecycleApart;
    this.#lifecycleUnsaved = false;
    this.#lifecycleApart = part === 'lifecycle';
    if (part === 'state' && now !== undefined) {
      this.#n[STATE_AT] = now;
      if (scores) this.#n[SCORED_AT] = now;
    }
    return {
      part,
      scores,
      replacesLifecycle,
      get state() {
        return detector.state();
      },
      encode: (arena) => detector.encodeState(arena),
      encodeLifecycle: (arena) => detector.encodeLifecycle(arena),
      scoreBytes: (m) => detector.scoreBytes(m),
    };
  }

  /**
   * What to persist with this commit, or undefined when it can wait.
   *
   * The lifecycle part (`part: 'lifecycle'`: the anomalies open and
   * pending, the runs, the node type; a few hundred bytes) is due with
   * every commit that changed it while an anomaly is open or pending, and
   * with the first after the last one closed, so the lifecycle is always
   * persisted as it is: across a crash an event is never produced twice or
   * lost. The whole state (`'state'`, ~2.4 KB) is due once per
   * `checkpointReadings` readings, anomaly or not: it went with every
   * commit while an anomaly was open, and after an outage every node
   * catching up had one (`offline`) for half an hour of its readings: a
   * quarter of the catch-up's commits' bytes (docs/benchmarks.md, "The
   * lifecycle apart"). Persisting it with every batch was most of the
   * aggregator's Redis time at 10,000 nodes. The scores (8 KB of a node's
   * ~10) go with it once per `checkpointReadings` readings. Neither goes
   * more often than once per `checkpointMs` of `now` (the caller's time;
   * none given, no such limit): a node catching up after an outage reads
   * its `checkpointReadings` in seconds, and checkpoints of ~10 KB every
   * few seconds were half the catch-up's commits' bytes. A crash or a
   * restart costs a node at most that many readings of learning, or those
   * of the last `checkpointMs` when it read faster (its windows of recent
   * values, baselines and scores; the metrics are exact regardless).
   * `handOver` (a graceful stop or hand-over): a node with an anomaly open
   * or pending hands out everything unsaved, scores included, so a restart
   * in the middle of an anomaly changes nothing.
   * `everything`: any node hands out all it has unsaved, for a graceful
   * stop that has the time (a quiet node's lost learning changes what it
   * detects next: a baseline five hours old took a morning rise for a
   * burst); ~10 KB a node, so a stop bounds it (ShardOwnership.checkpoint).
   */
  checkpoint(handOver = false, everything = false, now?: number): DetectorCheckpoint | undefined {
    const active = !this.#idle;
    if (everything) {
      if (this.#unsaved === 0 && this.#unscored === 0) return undefined;
      const scores = this.#unscored > 0;
      this.#unsaved = 0;
      this.#unscored = 0;
      this.#unsavedAhead = 0;
      this.#unscoredAhead = 0;
      this.#savedActive = active;
      return this.#checkpointOf('state', scores, now);
    }
    const force = handOver && active;
    if (this.#unsaved === 0 && !(force && this.#unscored > 0)) return undefined;
    const { checkpointReadings: every, checkpointMs } = this.#settings;
    const soon = now === undefined ? Number.POSITIVE_INFINITY : now - checkpointMs;
    const n = this.#n;
    const scores =
      (force && this.#unscored > 0) ||
      (this.#unscored + this.#unscoredAhead >= every && (n[SCORED_AT] as number) <= soon);
    if (
      !(force || scores || (this.#unsaved + this.#unsavedAhead >= every && (n[STATE_AT] as number) <= soon))
    ) {
      if (!(this.#lifecycleUnsaved && (active || this.#savedActive))) return undefined;
      this.#savedActive = active;
      return this.#checkpointOf('lifecycle', false);
    }
    this.#unsaved = 0;
    this.#unsavedAhead = 0;
    if (scores) {
      this.#unscored = 0;
      this.#unscoredAhead = 0;
    }
    this.#savedActive = active;
    return this.#checkpointOf('state', scores, now);
  }

  observe(reading: Reading): Observation {
    const n = this.#n;
    const t = reading.timestamp;
    const last = n[LAST] as number;
    if (t <= last) return NOT_EXAMINED;
    // A reading examined uses about a third of the numbers' lines, the σ windows' among them.
    touchLines(n);
    if (reading.node_type !== undefined) this.#nodeType = reading.node_type;
    const breaches = BREACHES;
    breaches.length = 0;
    const evaluated = EVALUATED;
    evaluated.clear();
    evaluated.add('offline');
    if (!Number.isNaN(last)) {
      const gap = Math.min(t - last, 6 * HOUR_MS);
      const interval = n[INTERVAL] as number;
      n[INTERVAL] = Math.round(Number.isNaN(interval) ? gap : interval + 0.1 * (gap - interval));
    }
    n[LAST] = t;
    this.#unsaved++;
    this.#unscored++;
    this.#lifecycleUnsaved = true;
    let score = 0;
    const flow = reading.flow_rate;
    if (flow !== undefined) {
      const scored = this.#flowScore ?? this.#resume('flow_rate');
      score = scored.observe(t, flow);
      const surprise = this.#surprise(scored);
      this.#sigma('flow_rate', flow, t, surprise, breaches, evaluated);
      this.#threshold('flow_rate', flow, breaches, evaluated);
      this.#stuck('flow_rate', flow, t, breaches, evaluated);
      this.#diurnal(flow, t, surprise, breaches, evaluated);
      this.#night(flow, t, breaches, evaluated);
    }
    const pressure = reading.pressure;
    if (pressure !== undefined) {
      const scored = this.#pressureScore ?? this.#resume('pressure');
      score = Math.max(score, scored.observe(t, pressure));
      const surprise = this.#surprise(scored);
      this.#sigma('pressure', pressure, t, surprise, breaches, evaluated);
      this.#threshold('pressure', pressure, breaches, evaluated);
      this.#stuck('pressure', pressure, t, breaches, evaluated);
    }
    if (this.#idle && breaches.length === 0)
      return { events: NO_EVENTS, breaches: NO_BREACHES, score, examined: true };
    const events = this.#lifecycle.update(t, breaches, evaluated, reading);
    this.#idle = this.#lifecycle.idle;
    return {
      events,
      breaches: breaches.length === 0 ? NO_BREACHES : breaches.slice(),
      score,
      examined: true,
    };
  }

  /** A measurement's score on its first use: from its persisted bytes, or afresh. */
  #resume(m: Measured): ValueScore {
    if (m === 'flow_rate') {
      this.#flowScore = new ValueScore(this.#restoredFlow);
      this.#restoredFlow = undefined;
      return this.#flowScore;
    }
    this.#pressureScore = new ValueScore(this.#restoredPressure);
    this.#restoredPressure = undefined;
    return this.#pressureScore;
  }

  /** The clock at `now` with no new reading: silence, and anomalies clear long enough to close. */
  tick(now: number): AnomalyEvent[] {
    const last = this.#n[LAST] as number;
    const interval = this.#n[INTERVAL] as number;
    const breaches: Breach[] = [];
    if (!Number.isNaN(last) && !Number.isNaN(interval)) {
      const limit = Math.max(this.#settings.offlineFactor * interval, this.#settings.offlineMinMs);
      const silent = now - last;
      if (silent > limit) {
        breaches.push({
          type: 'offline',
          rule: 'offline',
          value: silent,
          expected: { high: limit },
          score: 1,
          strong: true,
          unlikely: true,
        });
      }
    }
    const events = [
      ...this.#lifecycle.update(now, breaches, new Set(breaches.map((b) => b.type))),
      ...this.#lifecycle.expire(now),
    ];
    this.#idle = this.#lifecycle.idle;
    if (events.length > 0) {
      this.#unsaved++;
      this.#lifecycleUnsaved = true;
    }
    return events;
  }

  /**
   * The dashboard's rule (material), marked unlikely when the score's level
   * 1 says so (see AnomalyLifecycle): beyond `sigma` standard deviations of the
   * previous readings plus this one, and beyond `minDeviation`. With flow
   * 0 while that mean exceeds `noFlowMean`, `no_flow` instead.
   */
  #sigma(
    m: Measured,
    x: number,
    t: number,
    surprise: number,
    breaches: Breach[],
    evaluated: EvaluatedTypes,
  ): void {
    const { windowReadings, sigma, minDeviation, noFlowMean } = this.#settings;
    let n = this.#n;
    let window = windowAt(n, m);
    // The window is the previous readings, but no older than they would be
    // with no gap: after an outage its values are from another time of day.
    const interval = n[INTERVAL] as number;
    const oldest = t - 1.25 * windowReadings * (Number.isNaN(interval) ? Number.POSITIVE_INFINITY : interval);
    const sum = this.#windowSums(m, window);
    const squares = sum + 1;
    while (recentLength(n, window) > 0 && recentOldestTime(n, window) < oldest) {
      const v = recentDropOldest(n, window);
      n[sum] = (n[sum] as number) - v;
      n[squares] = (n[squares] as number) - v * v;
    }
    const high = m === 'flow_rate' ? 'high_flow' : 'high_pressure';
    const low = m === 'flow_rate' ? 'low_flow' : 'low_pressure';
    const length = recentLength(n, window);
    if (length >= windowReadings) {
      evaluated.add(high);
      evaluated.add(low);
      if (m === 'flow_rate') evaluated.add('no_flow');
      const count = length + 1;
      const mean = ((n[sum] as number) + x) / count;
      // Σ(v − mean)² from the running sums; clamped: rounding can make it a hair below 0.
      const sd = Math.sqrt(Math.max(0, ((n[squares] as number) + x * x - count * mean * mean) / (count - 1)));
      const band = Math.max(sigma * sd, minDeviation[m]);
      if (m === 'flow_rate' && x === 0 && mean > noFlowMean) {
        breaches.push({
          type: 'no_flow',
          rule: 'no_flow',
          value: x,
          expected: { low: noFlowMean },
          score: 1 - 10 ** -surprise,
          strong: true,
          unlikely: this.#unlikely(surprise),
        });
      } else if (sd > 0 && Math.abs(x - mean) > band) {
        breaches.push({
          type: x > mean ? high : low,
          rule: 'sigma',
          value: x,
          expected: { low: mean - band, high: mean + band },
          score: 1 - 10 ** -surprise,
          strong: Math.abs(x - mean) - band >= minDeviation[m],
          unlikely: this.#unlikely(surprise),
        });
      }
    }
    // A value repeated exactly is no new information (a stuck sensor would
    // otherwise shrink σ, and every normal value after it would look wild).
    if (recentNewest(n, window) === x) return;
    // The oldest leaves first, but is subtracted after x is added, as it always was: the sums stay bit for bit.
    const dropped = recentLength(n, window) === windowReadings ? recentDropOldest(n, window) : undefined;
    if (recentLength(n, window) === recentCapacity(n, window)) {
      n = this.#growWindows();
      window = windowAt(n, m);
    }
    recentPush(n, window, x, t);
    n[sum] = (n[sum] as number) + x;
    n[squares] = (n[squares] as number) + x * x;
    if (dropped !== undefined) {
      n[sum] = (n[sum] as number) - dropped;
      n[squares] = (n[squares] as number) - dropped * dropped;
    }
  }

  /**
   * The score's level 1, unless the reading is usual for its time of day
   * (a tank that starts filling at 2 a.m. every day is not news at 2 a.m.).
   */
  #surprise(scored: ValueScore): number {
    return scored.timeOfDayDeviation < this.#settings.timeOfDayDeviations ? 0 : scored.surprise;
  }

  /** The score's level 1 beyond the settings' probability (−log10 p). */
  #unlikely(surprise: number): boolean {
    return surprise >= -Math.log10(this.#settings.unlikelyProbability);
  }

  /** Moves the σ windows into numbers with twice their slots (up to the limit); returns the new numbers. */
  #growWindows(): Float64Array {
    const old = this.#n;
    const capacity = recentGrown(old[WINDOW_CAPACITY] as number, this.#settings.windowReadings);
    const n = numbersFor(capacity);
    n.set(old.subarray(0, WINDOWS_AT));
    n[WINDOW_CAPACITY] = capacity;
    for (const m of MEASURED) recentMove(old, windowAt(old, m), n, windowAt(n, m), capacity);
    this.#n = n;
    return n;
  }

  /** Where the running sum of `m`'s σ window (at `window`) is in the numbers (its squares next). */
  #windowSums(m: Measured, window: number): number {
    const n = this.#n;
    const at = SUMS_AT[m];
    const updates = n[at + 2] as number;
    // Recomputed now and then, so rounding in the running sums cannot build up.
    if (!(updates <= 10_000)) {
      const { sum, squares } = recentSums(n, window);
      n[at] = sum;
      n[at + 1] = squares;
      n[at + 2] = 1;
    } else n[at + 2] = updates + 1;
    return at;
  }

  /**
   * Flow against its own time of day: per UTC hour, an exponentially
   * weighted mean and variance over the previous days. A burst at night is
   * small next to the day's peaks (the σ rule's window spans both) but
   * large next to the same hour's usual flow. `high_flow` when above that
   * by `diurnalSigma` deviations and `diurnalRise` of it.
   */
  #diurnal(x: number, t: number, surprise: number, breaches: Breach[], evaluated: EvaluatedTypes): void {
    const { diurnalSigma, diurnalRise, diurnalDays, minDeviation } = this.#settings;
    const numbers = this.#n;
    numbers[HOURS_KEPT] = 1;
    const h = Math.floor((t % DAY_MS) / HOUR_MS);
    const n = numbers[HOUR_N + h] as number;
    const mean = numbers[HOUR_MEAN + h] as number;
    const variance = numbers[HOUR_VARIANCE + h] as number;
    const interval = numbers[INTERVAL] as number;
    const perHour = Math.max(1, Math.round(HOUR_MS / (Number.isNaN(interval) ? HOUR_MS : interval)));
    let breached = false;
    if (n >= diurnalDays * perHour) {
      evaluated.add('high_flow');
      const sd = Math.sqrt(variance);
      const limit = mean + Math.max(diurnalSigma * sd, diurnalRise * mean, minDeviation.flow_rate);
      if (x > limit) {
        breached = true;
        breaches.push({
          type: 'high_flow',
          rule: 'diurnal',
          value: x,
          expected: { high: limit },
          score: 1 - 10 ** -surprise,
          strong: x - limit >= minDeviation.flow_rate,
          unlikely: this.#unlikely(surprise),
        });
      }
    }
    // A breach does not teach the baseline (a long burst would become normal).
    if (breached) return;
    const alpha = Math.max(1 / (n + 1), 1 / (diurnalDays * 2 * perHour));
    const delta = x - mean;
    numbers[HOUR_MEAN + h] = mean + alpha * delta;
    numbers[HOUR_VARIANCE + h] = (1 - alpha) * (variance + alpha * delta * delta);
    numbers[HOUR_N + h] = n + 1;
  }

  #threshold(m: Measured, x: number, breaches: Breach[], evaluated: EvaluatedTypes): void {
    const nodeType = this.#nodeType;
    if (this.#bounds === undefined || this.#bounds.nodeType !== nodeType) {
      const { thresholds } = this.#settings;
      const flow = boundsFor(thresholds, this.nodeId, nodeType, 'flow_rate');
      const pressure = boundsFor(thresholds, this.nodeId, nodeType, 'pressure');
      this.#bounds = { nodeType, ...(flow && { flow_rate: flow }), ...(pressure && { pressure }) };
    }
    const bounds = this.#bounds[m];
    if (bounds === undefined) return;
    const high = m === 'flow_rate' ? 'high_flow' : 'high_pressure';
    const low = m === 'flow_rate' ? 'low_flow' : 'low_pressure';
    if (bounds.max !== undefined) evaluated.add(high);
    if (bounds.min !== undefined) evaluated.add(low);
    const below = bounds.min !== undefined && x < bounds.min;
    const above = bounds.max !== undefined && x > bounds.max;
    if (!below && !above) return;
    const expected = {
      ...(bounds.min !== undefined && { low: bounds.min }),
      ...(bounds.max !== undefined && { high: bounds.max }),
    };
    const beyond = below ? (bounds.min as number) - x : x - (bounds.max as number);
    breaches.push({
      type: below ? low : high,
      rule: 'threshold',
      value: x,
      expected,
      score: 1,
      strong: beyond >= this.#settings.minDeviation[m],
      unlikely: true,
    });
  }

  /** The same value over `stuckMs` and `stuckReadings` readings (a flow of 0 is no evidence: demand can stop). */
  #stuck(m: Measured, x: number, t: number, breaches: Breach[], evaluated: EvaluatedTypes): void {
    evaluated.add('stuck_sensor');
    const n = this.#n;
    const at = RUN_AT[m];
    // No run yet (count 0, value NaN) starts one as a changed value does.
    if (n[at] !== x || n[at + 2] === 0) {
      n[at] = x;
      n[at + 1] = t;
      n[at + 2] = 1;
      return;
    }
    const count = (n[at + 2] as number) + 1;
    n[at + 2] = count;
    if (m === 'flow_rate' && x === 0) return;
    if (t - (n[at + 1] as number) >= this.#settings.stuckMs && count >= this.#settings.stuckReadings) {
      breaches.push({
        type: 'stuck_sensor',
        rule: 'stuck',
        value: x,
        expected: {},
        score: 1,
        strong: true,
        unlikely: true,
      });
    }
  }

  /**
   * Minimum night flow: a leak runs day and night, but only at night, when
   * demand is lowest, does it stand out. Each night's lowest flow is
   * compared with the recent normal nights'; `leakNights` nights in a row
   * above them open `gradual_leak`, one normal night closes it.
   */
  #night(flow: number, t: number, breaches: Breach[], evaluated: EvaluatedTypes): void {
    const n = this.#n;
    const { nightStartHour, nightEndHour } = this.#settings;
    const day = Math.floor(t / DAY_MS);
    const hour = (t % DAY_MS) / HOUR_MS;
    const inNight = hour >= nightStartHour && hour < nightEndHour;
    const night = n[NIGHT_DAY] as number;
    if (!Number.isNaN(night) && (night !== day || hour >= nightEndHour)) {
      this.#judgeNight(n[NIGHT_MIN] as number, breaches, evaluated);
      n[NIGHT_DAY] = Number.NaN;
      n[NIGHT_MIN] = Number.NaN;
    }
    if (!inNight) return;
    if (Number.isNaN(n[NIGHT_DAY] as number)) {
      n[NIGHT_DAY] = day;
      n[NIGHT_MIN] = flow;
    } else n[NIGHT_MIN] = Math.min(n[NIGHT_MIN] as number, flow);
  }

  #judgeNight(mnf: number, breaches: Breach[], evaluated: EvaluatedTypes): void {
    const nights = this.#nights;
    const { leakBaselineNights, leakNights, leakRise, leakMinRise } = this.#settings;
    if (nights.length < leakBaselineNights) {
      nights.push(mnf);
      return;
    }
    evaluated.add('gradual_leak');
    const mean = nights.reduce((a, b) => a + b, 0) / nights.length;
    const sd = Math.sqrt(nights.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, nights.length - 1));
    const limit = mean + Math.max(leakRise * mean, leakMinRise, 3 * sd);
    if (mnf > limit) {
      this.#above++;
      if (this.#above >= leakNights) {
        breaches.push({
          type: 'gradual_leak',
          rule: 'night_flow',
          value: mnf,
          expected: { high: limit },
          score: 1,
          strong: true,
          unlikely: true,
        });
      }
      return;
    }
    this.#above = 0;
    nights.push(mnf);
    if (nights.length > BASELINE_NIGHTS) nights.shift();
  }
}

/**
 * Where in the period of `every` readings a node's checkpoints fall: a
 * hash of its id (FNV-1a) modulo `every`, the same on every start, spread
 * evenly over the period across nodes.
 */
export function checkpointPhase(nodeId: string, every: number): number {
  if (!(every > 1)) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < nodeId.length; i++) hash = Math.imul(hash ^ nodeId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % every;
}

/**
 * A persisted state as numbers plus a little JSON (the node type, runs, open
 * and pending anomalies): written with every batch that touches the node,
 * where JSON.stringify of a few hundred numbers would cost more than the
 * detectors themselves. Layout (version 3): version, last, interval, above,
 * night day, night min, then per measurement its window (count, values,
 * ages), the hours (flag, 24 means, 24 variances, 24 counts), the nights
 * (count, values). NaN stands for absent. The scores are not in it: they
 * are persisted apart, as their bytes (in fields of their own).
 * Versions 1 (no scores, no pending) and 2 (scores inline) still load.
 */
export function encodeDetectorState(state: PersistedDetectorState): { numbers: Float64Array; json: string } {
  const { window, windowAge, hours, nights } = state;
  // Sized up front and filled in place: this runs for every node a batch touches.
  const numbers = new Float64Array(
    stateNumbers(
      window.flow_rate.length + window.pressure.length,
      hours ? hours.mean.length + hours.variance.length + hours.n.length : 0,
      nights.length,
    ),
  );
  let at = 0;
  const put = (x: number) => {
    numbers[at++] = x;
  };
  const putAll = (xs: ArrayLike<number>) => {
    for (let i = 0; i < xs.length; i++) numbers[at++] = xs[i] as number;
  };
  put(STATE_VERSION);
  put(state.last ?? Number.NaN);
  put(state.interval ?? Number.NaN);
  put(state.above);
  put(state.night?.day ?? Number.NaN);
  put(state.night?.min ?? Number.NaN);
  for (const m of MEASURED) {
    put(window[m].length);
    putAll(window[m]);
    putAll(windowAge[m]);
  }
  if (hours) {
    put(1);
    putAll(hours.mean);
    putAll(hours.variance);
    putAll(hours.n);
  } else put(0);
  put(nights.length);
  putAll(nights);
  const json = stateJson(state.nodeType, state.runs, state.open, state.pending);
  return { numbers: at === numbers.length ? numbers : numbers.subarray(0, at), json };
}

/**
 * A state as persisted, read back: `state` as NodeDetector.encodeState
 * lays it out (`[json length u32][json][numbers, f64 little-endian]`), and
 * `lifecycle`, its JSON part persisted apart since (encodeLifecycle),
 * which wins over the state's own. Either may be missing: a node whose
 * first checkpoint was its lifecycle's starts its learning afresh.
 */
export function decodeEncodedState(
  state: Uint8Array | undefined,
  lifecycle?: Uint8Array,
): PersistedDetectorState | undefined {
  if (state === undefined && lifecycle === undefined) return undefined;
  let numbers = NO_LEARNING;
  let json = '';
  if (state !== undefined) {
    const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
    const start = 4 + view.getUint32(0, true);
    // Copied as bytes, not number by number: NaN's bits and all, into aligned memory.
    const copy = new Uint8Array(state.length - start);
    copy.set(state.subarray(start));
    numbers = new Float64Array(copy.buffer);
    json = fromUtf8.decode(state.subarray(4, start));
  }
  if (lifecycle === undefined) return decodeDetectorState(numbers, json);
  return { ...decodeDetectorState(numbers, fromUtf8.decode(lifecycle)), lifecycleApart: true };
}

/** How many numbers a persisted state holds: its head, the windows' values and ages, the hours, the nights. */
function stateNumbers(windowValues: number, hourNumbers: number, nights: number): number {
  return 6 + 2 + 2 * windowValues + 1 + hourNumbers + 1 + nights;
}

/** The persisted state's version (see encodeDetectorState). */
const STATE_VERSION = 3;

/** The numbers of a state that has learnt nothing yet (a node whose first checkpoint was its lifecycle's). */
const NO_LEARNING = encodeDetectorState({
  runs: {},
  nights: [],
  above: 0,
  scores: {},
  open: [],
  pending: [],
  window: { flow_rate: [], pressure: [] },
  windowAge: { flow_rate: [], pressure: [] },
}).numbers;

/** The persisted state's JSON part. */
function stateJson(
  nodeType: string | undefined,
  runs: DetectorState['runs'],
  open: readonly AnomalyRecord[],
  pending: readonly PendingAnomaly[],
): string {
  return JSON.stringify({ nodeType, runs, open, ...(pending.length > 0 && { pending }) });
}

function putDouble(view: DataView, o: number, x: number): number {
  view.setFloat64(o, x, true);
  return o + 8;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export function decodeDetectorState(numbers: Float64Array, json: string): PersistedDetectorState {
  let at = 0;
  const next = () => numbers[at++] as number;
  const take = (n: number) => {
    const values = Array.from(numbers.subarray(at, at + n));
    at += n;
    return values;
  };
  const version = next();
  if (version !== 1 && version !== 2 && version !== 3)
    throw new Error(`unknown detector state version ${version}`);
  const last = unlessNaN(next());
  const interval = unlessNaN(next());
  const above = next();
  const nightDay = unlessNaN(next());
  const nightMin = next();
  const window = { flow_rate: [] as number[], pressure: [] as number[] };
  const windowAge = { flow_rate: [] as number[], pressure: [] as number[] };
  for (const m of MEASURED) {
    const n = next();
    window[m] = take(n);
    windowAge[m] = take(n);
  }
  const hours = next() === 1 ? { mean: take(24), variance: take(24), n: take(24) } : undefined;
  const nights = take(next());
  const scores: PersistedDetectorState['scores'] = {};
  // Version 1 had no scores (they start afresh, as for a new node); version 3 keeps them apart.
  if (version === 2) {
    for (const m of MEASURED) {
      if (next() === 1) {
        scores[m] = new Uint8Array(numbers.buffer, numbers.byteOffset + at * 8, VALUE_SCORE_BYTES).slice();
        at += SCORE_DOUBLES;
      }
    }
  }
  const rest = JSON.parse(json) as Pick<PersistedDetectorState, 'nodeType' | 'runs' | 'open'> & {
    pending?: PendingAnomaly[];
  };
  return {
    ...(last !== undefined && { last }),
    ...(interval !== undefined && { interval }),
    ...(rest.nodeType !== undefined && { nodeType: rest.nodeType }),
    window,
    windowAge,
    ...(hours && { hours }),
    runs: rest.runs,
    ...(nightDay !== undefined && { night: { day: nightDay, min: nightMin } }),
    nights,
    above,
    scores,
    open: rest.open,
    pending: rest.pending ?? [],
  };
}
