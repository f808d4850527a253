import { touchLines } from '../cacheLines.ts';

/**
 * The calibrated anomaly score of one series of any unit: how unlikely a
 * reading is given the series' own recent behaviour, online, O(1) per
 * reading, in one fixed-size buffer that is persisted as it is.
 *
 * Level 1, per reading. Four predictors of the next value ("views"): the
 * last value, a slow level, a daily profile (48 half-hour buckets) and a
 * weekly one (168 hourly buckets), the profiles only when readings come at
 * most an hour apart. Each view's error is made unit-free (divided by the
 * view's own mean absolute error, then logged), and two statistics of it
 * (the error itself, and its short exponential mean, for shifts and
 * variance changes) are each ranked against an exponentially decayed
 * histogram of their own past (about 2,000 readings): the tail mass above
 * the value, extrapolated exponentially beyond the few largest seen, so
 * "larger than anything so far" is still ranked. The surprise is
 * −log10 of the smallest tail probability, less log10 of the number of
 * tests (Bonferroni).
 *
 * Level 2, as Numenta's anomaly likelihood: the surprise mapped to 0..1,
 * its mean over the last 10 readings compared with the long-run mean and
 * spread of that mean (a Gaussian tail), on a log scale: the score is
 * −log10 Q(z) / 10, at most 1. A reading extreme on its own (surprise
 * ≥ 3.5) scores 1 without waiting for the mean.
 *
 * Events, not repeats: an event starts when the score reaches 0.22 and
 * lasts until 100 readings in a row stay below it; inside it a reading
 * scores only when it beats 1.32 × the event's highest score so far, else 0.
 * So an operator (or a threshold) sees an event once, at its onset, and
 * again only when it gets markedly worse. A report at an hour of day where
 * the series has reported twice already (lately) is its routine, and
 * dropped unless extreme. `surprise` is the level-1 value
 * of every reading, before any of this, for rules to be gated on.
 *
 * Evaluated on the Numenta Anomaly Benchmark's development split
 * (docs/anomalies.md): one configuration for every series.
 */

/** Readings before any score: the views and histograms need a history. */
const WARM_UP = 100;
/** Decay of the histograms per reading (a horizon of about 2,000 readings). */
const HISTORY_DECAY = 0.0005;
/** The short mean of a view's error (about 8 readings). */
const SHORT_RATE = 0.23;
/** A view's mean absolute error, its unit. */
const SCALE_RATE = 0.002;
/** The log floor, relative to the view's mean absolute error. */
const LOG_FLOOR = 0.1;
/** The slow level view; the profiles' own level (slower, to complement it). */
const LEVEL_RATE = 0.05;
const PROFILE_LEVEL_RATE = 0.02;
/** A profile bucket's update per visit. */
const PROFILE_RATE = 0.1;
/** Extrapolate the tail beyond the K-th largest (effective) observation. */
const TAIL_K = 3;
/** Histogram bins over the log error in [BIN_LOW, BIN_LOW + BINS × BIN_WIDTH). */
const BINS = 40;
const BIN_LOW = -3;
const BIN_WIDTH = 0.25;
/** Level 1's surprise mapped to 0..1 between these (p = 0.1 → 0, p = 0.001 → 1). */
const RAW_FROM = 1;
const RAW_TO = 3;
/**
 * A statistic whose tail holds more than this share of the weight scores 0:
 * with at least 4 tests, −log10 of it less log10(4) is below RAW_FROM.
 */
const UNREMARKABLE = 10 ** -(RAW_FROM + Math.log10(4) - 0.1);
/** Level 2: the window, its long-run rate, the spread's floor; the output scale. */
const WINDOW = 10;
const LONG_RATE = 0.0005;
const MIN_SPREAD = 0.02;
const OUTPUT_SCALE = 10;
/** Events: the score that starts one, the quiet readings that end it, the factor a new report must beat. */
const EVENT_START = 0.22;
const EVENT_QUIET = 100;
const EVENT_RECORD = 1.32;
/**
 * A reading whose surprise alone is this extreme (p < 10^-3.5 after the
 * correction) scores 1 at once: level 2's mean over 10 readings would water
 * down one extreme reading in a noisy series.
 */
const DIRECT = 3.5;
/**
 * Routine: a report of at least ROUTINE_REPORT at an hour of day (UTC) at
 * which this series has already reported ROUTINE_COUNT times or more
 * (counts halving every 30 days) is dropped, unless the reading is extreme
 * on its own (DIRECT). What comes back at the same hour day after day (a
 * cron job, a rush hour, a tank's filling) is the series' routine, not news.
 */
const ROUTINE_REPORT = 0.65;
const ROUTINE_COUNT = 2;
const ROUTINE_HALF_LIFE = 30 * 86_400_000;
const ROUTINE_HOURS = 24;
/**
 * The pattern view, a second direct channel: the last PATTERN_WINDOW
 * readings, scaled by the series' running range, matched against at most
 * PATTERN_CATEGORIES learnt shapes (fuzzy adaptive resonance, complement
 * coded: a shape matches when min(input, shape) covers PATTERN_VIGILANCE of
 * the input; the best match learns slowly, no match replaces the least used
 * shape). Its mismatch is ranked like the other views (point statistic
 * only) and, corrected for one test more, scores 1 at PATTERN_DIRECT: a
 * transition the series has not made before, whatever its size.
 */
const PATTERN_WINDOW = 3;
const PATTERN_CATEGORIES = 16;
const PATTERN_VIGILANCE = 0.94;
const PATTERN_LEARNING = 0.1;
const PATTERN_USAGE_DECAY = 0.999;
/** Mismatches ranked before the pattern view may report. */
const PATTERN_SEEN = 50;
const PATTERN_DIRECT = 3;
const PATTERN_INPUT = 2 * PATTERN_WINDOW;
/** log10 of the number of tests (at most 2 per view and one more), as Math.log10 gives it. */
const LOG10 = Float64Array.from({ length: 2 * 4 + 2 }, (_, n) => Math.log10(n));
/** Below this overlap a shape cannot resonate: the exact test (a division) is skipped. */
const RESONANT_OVERLAP = PATTERN_VIGILANCE * PATTERN_WINDOW * (1 - 1e-9);

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

// The state: doubles, then float32 (histogram bins, profiles), then bytes (profile visit counts).
const N = 0;
const LAST_X = 1;
const LAST_T = 2;
const INTERVAL = 3;
const LEVEL = 4;
const ABS_MEAN = 5;
const RING_AT = 6;
const RING_SUM = 7;
const LIKELIHOOD_MEAN = 8;
const LIKELIHOOD_VAR = 9;
const LIKELIHOOD_N = 10;
const EVENT_LEFT = 11;
const EVENT_MAX = 12;
const DAILY_LEVEL = 13;
const WEEKLY_LEVEL = 14;
/** When the routine counts were last decayed. */
const ROUTINE_DECAYED = 15;
/** The pattern view's running range, ring position and fill, and shapes learnt. */
const LOW = 16;
const HIGH = 17;
const PATTERN_AT = 18;
const PATTERN_FILLED = 19;
const PATTERN_SHAPES = 20;
/** Per view: mean absolute error, short mean of the log error, readings. */
const VIEWS_AT = 21;
const VIEW_DOUBLES = 3;
/** The four predictors, and the pattern view (point statistic only). */
const VIEWS = 5;
/** Per histogram (two per predictor, one for the pattern): total weight, current increment. */
const HISTOGRAMS_AT = VIEWS_AT + VIEWS * VIEW_DOUBLES;
const HISTOGRAMS = 2 * 4 + 1;
const RING = HISTOGRAMS_AT + 2 * HISTOGRAMS;
const PATTERN_RING = RING + WINDOW;
const DOUBLES = PATTERN_RING + PATTERN_WINDOW;

const DAILY_BUCKETS = 48;
const WEEKLY_BUCKETS = 168;
const BINS_AT = 0;
const DAILY_AT = BINS_AT + HISTOGRAMS * BINS;
const WEEKLY_AT = DAILY_AT + DAILY_BUCKETS;
/**
 * Per daily bucket, over days: the values' mean and mean absolute deviation
 * there, and the weight of days seen (1 − (1 − rate)^days). What this time
 * of day usually looks like, for the rules (not part of the score).
 */
const TIME_OF_DAY_MEAN_AT = WEEKLY_AT + WEEKLY_BUCKETS;
const TIME_OF_DAY_SPREAD_AT = TIME_OF_DAY_MEAN_AT + DAILY_BUCKETS;
const TIME_OF_DAY_WEIGHT_AT = TIME_OF_DAY_SPREAD_AT + DAILY_BUCKETS;
/** Per hour of day, the decayed count of reports there (see ROUTINE_REPORT). */
const ROUTINE_AT = TIME_OF_DAY_WEIGHT_AT + DAILY_BUCKETS;
/** The pattern view's shapes (complement coded) and their decayed use. */
const SHAPES_AT = ROUTINE_AT + ROUTINE_HOURS;
const USAGE_AT = SHAPES_AT + PATTERN_CATEGORIES * PATTERN_INPUT;
const FLOATS = USAGE_AT + PATTERN_CATEGORIES;
/** The time of day's memory: a day weighs this much (about ten days). */
const TIME_OF_DAY_RATE = 0.1;
/** Known once the days seen weigh this much (two days at TIME_OF_DAY_RATE). */
const TIME_OF_DAY_KNOWN = 0.15;
const COUNTS = DAILY_BUCKETS + WEEKLY_BUCKETS;

const FLOATS_OFFSET = DOUBLES * 8;
const COUNTS_OFFSET = FLOATS_OFFSET + FLOATS * 4;
/** Bytes of one series' state (a multiple of 8). */
export const VALUE_SCORE_BYTES = Math.ceil((COUNTS_OFFSET + COUNTS) / 8) * 8;
/**
 * Per histogram, one more than its highest bin with any weight (0: none),
 * after the state in its buffer (derived from the state, not part of it):
 * the tail's sum starts there instead of at the top, and skipping empty
 * bins changes no sum.
 */
const HIGHEST_AT = VALUE_SCORE_BYTES;
/**
 * After the state and #highest, in the same buffer: the last reading's
 * level-1 surprise, its time-of-day deviation and the pattern view's
 * surprise (see the getters), as doubles of the whole buffer's view. As
 * fields, each was a heap number of its own for the collector to mark.
 */
const SURPRISE = Math.ceil((VALUE_SCORE_BYTES + HISTOGRAMS) / 8);
const TIME_OF_DAY_DEVIATION = SURPRISE + 1;
const PATTERN_SURPRISE = SURPRISE + 2;
const BUFFER_BYTES = (PATTERN_SURPRISE + 1) * 8;

const VIEW_LAST = 0;
const VIEW_LEVEL = 1;
const VIEW_DAILY = 2;
const VIEW_WEEKLY = 3;
const VIEW_PATTERN = 4;
const PATTERN_HISTOGRAM = 8;

/** The pattern view's input: scratch shared by every score (observe runs to its end before another starts). */
const PATTERN_SCRATCH = new Float64Array(PATTERN_INPUT);
/**
 * The two statistics of the last view stepped, its point and its short
 * term (scratch shared the same way). Not fields: a double stored in a
 * field or returned from a call that is not inlined is a new heap number,
 * and four views a reading made them most of a score's garbage.
 */
const VIEWED = new Float64Array(2);
const POINT = 0;
const SHORT = 1;
/**
 * The doubles #view and #tail take, passed here for the same reason: those
 * two are too large to be inlined, and a double passed to a call is boxed.
 */
const ARGS = new Float64Array(3);
const ERROR = 0;
const FLOOR = 1;
const U = 2;

export class ValueScore {
  /** The whole state: persist these bytes, and pass them back to resume. */
  get bytes(): Uint8Array {
    return this.#u8.subarray(0, VALUE_SCORE_BYTES);
  }

  /** The whole buffer as bytes: the state's counts, and #highest after the state. */
  readonly #u8: Uint8Array;
  readonly #d: Float64Array;
  readonly #f: Float32Array;

  /**
   * Level 1 of the last reading: −log10 of its tail probability, corrected
   * for the number of tests (2 = 1 in 100); 0 in the warm-up and whenever
   * it is unremarkable (below about 1 in 30 before the correction).
   */
  get surprise(): number {
    return this.#d[SURPRISE] as number;
  }

  /**
   * The last reading's distance from what its time of day (half-hour
   * bucket) has looked like over recent days, in units of that time of
   * day's usual distance (NaN until two days know the bucket). A change
   * that comes at about the same time every day (a tank starting to fill)
   * is small here; the same value at an odd hour is not.
   */
  get timeOfDayDeviation(): number {
    return this.#d[TIME_OF_DAY_DEVIATION] as number;
  }

  /**
   * The pattern view's surprise for the last reading (−log10 p, corrected
   * like `surprise` for one test more); 0 until it has ranked enough.
   */
  get patternSurprise(): number {
    return this.#d[PATTERN_SURPRISE] as number;
  }

  /** Resumes from `bytes` (copied), or starts afresh. */
  constructor(bytes?: Uint8Array) {
    if (bytes !== undefined && bytes.length !== VALUE_SCORE_BYTES) {
      throw new RangeError(`a ValueScore state is ${VALUE_SCORE_BYTES} bytes, got ${bytes.length}`);
    }
    // One buffer for the state, the derived #highest and the last reading's
    // outputs, and three views of it: each typed array is a heap object,
    // and each buffer one more and a backing store, at 100,000 nodes × 2.
    const buffer = new ArrayBuffer(BUFFER_BYTES);
    this.#u8 = new Uint8Array(buffer);
    // The whole buffer: the state's doubles, and the last reading's at SURPRISE and after.
    this.#d = new Float64Array(buffer);
    this.#d[TIME_OF_DAY_DEVIATION] = Number.NaN;
    this.#f = new Float32Array(buffer, FLOATS_OFFSET, FLOATS);
    if (bytes !== undefined) this.#u8.set(bytes);
    else for (let h = 0; h < HISTOGRAMS; h++) this.#d[HISTOGRAMS_AT + 2 * h + 1] = 1;
    for (let h = 0; h < HISTOGRAMS; h++) {
      let top = BINS - 1;
      while (top >= 0 && this.#f[BINS_AT + h * BINS + top] === 0) top--;
      this.#u8[HIGHEST_AT + h] = top + 1;
    }
  }

  /** The slow level: about what the series has been lately (NaN before any reading). */
  get level(): number {
    return this.#d[N] === 0 ? Number.NaN : (this.#d[LEVEL] as number);
  }

  /** Scores one reading (time in ms, any finite value), in time order; 0..1. */
  observe(t: number, x: number): number {
    // A reading uses about 40 of the buffer's 66 cache lines.
    touchLines(this.#d);
    const d = this.#d;
    d[SURPRISE] = 0;
    d[PATTERN_SURPRISE] = 0;
    d[TIME_OF_DAY_DEVIATION] = Number.NaN;
    if (!Number.isFinite(x) || !Number.isFinite(t)) return 0;
    const n = (d[N] as number) + 1;
    d[N] = n;
    if (n === 1) {
      d[LAST_X] = x;
      d[LAST_T] = t;
      d[LEVEL] = x;
      d[DAILY_LEVEL] = x;
      d[WEEKLY_LEVEL] = x;
      d[ABS_MEAN] = Math.abs(x);
      d[LOW] = x;
      d[HIGH] = x;
      this.#pattern(x);
      return 0;
    }
    const gap = Math.max(0, t - (d[LAST_T] as number));
    const interval = d[INTERVAL] as number;
    d[INTERVAL] = n === 2 ? gap : interval + 0.05 * (Math.min(gap, 3 * interval) - interval);
    d[ABS_MEAN] = (d[ABS_MEAN] as number) + 0.01 * (Math.abs(x) - (d[ABS_MEAN] as number));
    // A floor for a view's unit: a series that is flat (and zero) stays finite.
    const floor = 1e-9 * ((d[ABS_MEAN] as number) + 1e-12);

    let best = 0;
    let tests = 0;
    ARGS[FLOOR] = floor;
    ARGS[ERROR] = Math.abs(x - (d[LAST_X] as number));
    this.#view(VIEW_LAST);
    best = Math.max(best, VIEWED[POINT] as number, VIEWED[SHORT] as number);
    tests += 2;
    ARGS[ERROR] = Math.abs(x - (d[LEVEL] as number));
    this.#view(VIEW_LEVEL);
    best = Math.max(best, VIEWED[POINT] as number, VIEWED[SHORT] as number);
    tests += 2;
    d[LEVEL] = (d[LEVEL] as number) + LEVEL_RATE * (x - (d[LEVEL] as number));
    if ((d[INTERVAL] as number) <= HOUR) {
      const daily = this.#profile(DAILY_LEVEL, DAILY_AT, 0, DAILY_BUCKETS, DAY, 0, 3, t, x);
      ARGS[ERROR] = Math.abs(daily);
      this.#view(VIEW_DAILY);
      if (this.#ready) {
        best = Math.max(best, VIEWED[POINT] as number, VIEWED[SHORT] as number);
        tests += 2;
      }
      this.#timeOfDay(t, x, floor);
      const weekly = this.#profile(
        WEEKLY_LEVEL,
        WEEKLY_AT,
        DAILY_BUCKETS,
        WEEKLY_BUCKETS,
        WEEK,
        3 * DAY,
        2,
        t,
        x,
      );
      ARGS[ERROR] = Math.abs(weekly);
      this.#view(VIEW_WEEKLY);
      if (this.#ready) {
        best = Math.max(best, VIEWED[POINT] as number, VIEWED[SHORT] as number);
        tests += 2;
      }
    }
    if (x < (d[LOW] as number)) d[LOW] = x;
    if (x > (d[HIGH] as number)) d[HIGH] = x;
    const mismatch = this.#pattern(x);
    if (mismatch >= 0) {
      ARGS[ERROR] = mismatch;
      ARGS[FLOOR] = 1e-9;
      this.#view(VIEW_PATTERN);
    }
    d[LAST_X] = x;
    d[LAST_T] = t;
    if (n < WARM_UP) return 0;
    const surprise = Math.max(0, best - (LOG10[tests] as number));
    d[SURPRISE] = surprise;
    const ranked = d[VIEWS_AT + VIEW_PATTERN * VIEW_DOUBLES + 2] as number;
    const pattern =
      mismatch >= 0 && ranked > PATTERN_SEEN
        ? Math.max(0, (VIEWED[POINT] as number) - (LOG10[tests + 1] as number))
        : 0;
    this.#d[PATTERN_SURPRISE] = pattern;
    const likelihood = this.#likelihood(surprise);
    const direct = surprise >= DIRECT || pattern >= PATTERN_DIRECT;
    const score = this.#events(direct ? 1 : likelihood);
    return score >= ROUTINE_REPORT && (d[INTERVAL] as number) <= HOUR
      ? this.#routine(t, score, surprise)
      : score;
  }

  /** A report at an hour of day where this series keeps reporting is dropped (see ROUTINE_REPORT). */
  #routine(t: number, score: number, surprise: number): number {
    const d = this.#d;
    const f = this.#f;
    const decay = 0.5 ** (Math.max(0, t - (d[ROUTINE_DECAYED] as number)) / ROUTINE_HALF_LIFE);
    d[ROUTINE_DECAYED] = t;
    for (let i = 0; i < ROUTINE_HOURS; i++) f[ROUTINE_AT + i] = (f[ROUTINE_AT + i] as number) * decay;
    const hour = Math.floor(((((t % DAY) + DAY) % DAY) / DAY) * ROUTINE_HOURS) % ROUTINE_HOURS;
    const routine = (f[ROUTINE_AT + hour] as number) >= ROUTINE_COUNT && surprise < DIRECT;
    f[ROUTINE_AT + hour] = (f[ROUTINE_AT + hour] as number) + 1;
    return routine ? 0 : score;
  }

  /** Level 2: the window's mean of level 1 against its long-run distribution. */
  #likelihood(surprise: number): number {
    const d = this.#d;
    const raw = Math.min(1, Math.max(0, (surprise - RAW_FROM) / (RAW_TO - RAW_FROM)));
    const slot = (d[RING_AT] as number) % WINDOW;
    d[RING_SUM] = (d[RING_SUM] as number) + raw - (d[RING + slot] as number);
    d[RING + slot] = raw;
    d[RING_AT] = slot + 1;
    const mean = (d[RING_SUM] as number) / WINDOW;
    const seen = (d[LIKELIHOOD_N] as number) + 1;
    d[LIKELIHOOD_N] = seen;
    const longMean = d[LIKELIHOOD_MEAN] as number;
    const spread = Math.max(Math.sqrt(d[LIKELIHOOD_VAR] as number), MIN_SPREAD);
    const likelihood = seen > WINDOW ? minusLog10Q((mean - longMean) / spread) : 0;
    const rate = Math.max(LONG_RATE, 1 / seen);
    const delta = mean - longMean;
    d[LIKELIHOOD_MEAN] = longMean + rate * delta;
    d[LIKELIHOOD_VAR] = (1 - rate) * ((d[LIKELIHOOD_VAR] as number) + rate * delta * delta);
    return Math.min(1, likelihood / OUTPUT_SCALE);
  }

  /** Reports an event once at its onset, then only markedly worse readings. */
  #events(score: number): number {
    const d = this.#d;
    const left = d[EVENT_LEFT] as number;
    if (left > 0) {
      d[EVENT_LEFT] = score >= EVENT_START ? EVENT_QUIET : left - 1;
      if (score > (d[EVENT_MAX] as number) * EVENT_RECORD) {
        d[EVENT_MAX] = score;
        return score;
      }
      return 0;
    }
    if (score >= EVENT_START) {
      d[EVENT_LEFT] = EVENT_QUIET;
      d[EVENT_MAX] = score;
    }
    return score;
  }

  /**
   * The pattern view: the last readings (scaled by the running range)
   * against the learnt shapes; returns the mismatch, 1 − the best match,
   * or −1 while the window fills. Learns: the resonating shape moves
   * towards the input, or the input becomes a shape (replacing the least
   * used one when all are taken).
   */
  #pattern(x: number): number {
    const d = this.#d;
    const f = this.#f;
    const slot = d[PATTERN_AT] as number;
    d[PATTERN_RING + slot] = x;
    const next = (slot + 1) % PATTERN_WINDOW;
    d[PATTERN_AT] = next;
    if ((d[PATTERN_FILLED] as number) < PATTERN_WINDOW) d[PATTERN_FILLED] = (d[PATTERN_FILLED] as number) + 1;
    if ((d[PATTERN_FILLED] as number) < PATTERN_WINDOW) return -1;
    const low = d[LOW] as number;
    const range = (d[HIGH] as number) - low;
    const input = PATTERN_SCRATCH;
    // Oldest first: the ring from `next` round to it.
    for (let i = 0, at = next; i < PATTERN_WINDOW; i++, at = at + 1 === PATTERN_WINDOW ? 0 : at + 1) {
      const a = range > 0 ? ((d[PATTERN_RING + at] as number) - low) / range : 0.5;
      input[i] = a;
      input[PATTERN_WINDOW + i] = 1 - a;
    }
    // The input in locals, and each shape's overlap written out: this loop
    // is the largest part of a score's time. A shape's weight is summed only
    // when it resonates (the sums are the same, in the same order).
    const v0 = input[0] as number;
    const v1 = input[1] as number;
    const v2 = input[2] as number;
    const v3 = input[3] as number;
    const v4 = input[4] as number;
    const v5 = input[5] as number;
    const shapes = d[PATTERN_SHAPES] as number;
    let bestChoice = -1;
    let chosen = -1;
    // The best match is the best overlap's: dividing by PATTERN_WINDOW keeps the order.
    let bestOverlap = 0;
    for (let j = 0; j < shapes; j++) {
      const at = SHAPES_AT + j * PATTERN_INPUT;
      const w0 = f[at] as number;
      const w1 = f[at + 1] as number;
      const w2 = f[at + 2] as number;
      const w3 = f[at + 3] as number;
      const w4 = f[at + 4] as number;
      const w5 = f[at + 5] as number;
      // Math.min, not a comparison: an input is NaN once the running range
      // overflows (readings near ±1e308), and a NaN overlap never resonates.
      const overlap =
        Math.min(v0, w0) +
        Math.min(v1, w1) +
        Math.min(v2, w2) +
        Math.min(v3, w3) +
        Math.min(v4, w4) +
        Math.min(v5, w5);
      if (overlap > bestOverlap) bestOverlap = overlap;
      if (overlap >= RESONANT_OVERLAP && overlap / PATTERN_WINDOW >= PATTERN_VIGILANCE) {
        const choice = overlap / (1e-3 + (w0 + w1 + w2 + w3 + w4 + w5));
        if (choice > bestChoice) {
          bestChoice = choice;
          chosen = j;
        }
      }
    }
    for (let j = 0; j < shapes; j++) f[USAGE_AT + j] = (f[USAGE_AT + j] as number) * PATTERN_USAGE_DECAY;
    if (chosen >= 0) {
      const at = SHAPES_AT + chosen * PATTERN_INPUT;
      for (let i = 0; i < PATTERN_INPUT; i++) {
        const w = f[at + i] as number;
        const v = input[i] as number;
        f[at + i] = PATTERN_LEARNING * Math.min(v, w) + (1 - PATTERN_LEARNING) * w;
      }
      f[USAGE_AT + chosen] = (f[USAGE_AT + chosen] as number) + 1;
    } else {
      let j = shapes;
      if (j >= PATTERN_CATEGORIES) {
        j = 0;
        for (let k = 1; k < PATTERN_CATEGORIES; k++) {
          if ((f[USAGE_AT + k] as number) < (f[USAGE_AT + j] as number)) j = k;
        }
      } else d[PATTERN_SHAPES] = shapes + 1;
      const at = SHAPES_AT + j * PATTERN_INPUT;
      for (let i = 0; i < PATTERN_INPUT; i++) f[at + i] = input[i] as number;
      f[USAGE_AT + j] = 1;
    }
    return 1 - bestOverlap / PATTERN_WINDOW;
  }

  /** One view's error: its statistics ranked (into VIEWED), then learnt. */
  #view(view: number): void {
    const error = ARGS[ERROR] as number;
    const floor = ARGS[FLOOR] as number;
    const d = this.#d;
    const at = VIEWS_AT + view * VIEW_DOUBLES;
    const seen = (d[at + 2] as number) + 1;
    d[at + 2] = seen;
    VIEWED[POINT] = 0;
    VIEWED[SHORT] = 0;
    if (seen === 1) {
      d[at] = error;
      return;
    }
    const u = Math.log(error / ((d[at] as number) + floor + 1e-300) + LOG_FLOOR);
    if (view === VIEW_PATTERN) {
      ARGS[U] = u;
      VIEWED[POINT] = this.#tail(PATTERN_HISTOGRAM);
      this.#learn(PATTERN_HISTOGRAM, u);
    } else {
      const short = (d[at + 1] as number) + SHORT_RATE * (u - (d[at + 1] as number));
      d[at + 1] = short;
      const pointHistogram = 2 * view;
      ARGS[U] = u;
      VIEWED[POINT] = this.#tail(pointHistogram);
      ARGS[U] = short;
      VIEWED[SHORT] = this.#tail(pointHistogram + 1);
      this.#learn(pointHistogram, u);
      this.#learn(pointHistogram + 1, short);
    }
    d[at] = (d[at] as number) + Math.max(SCALE_RATE, 1 / seen) * (error - (d[at] as number));
  }

  /** Learns and measures how far off the daily profile usually is at this time of day. */
  #timeOfDay(t: number, x: number, floor: number): void {
    const f = this.#f;
    const bucket = Math.floor((remainder(t, DAY) / DAY) * DAILY_BUCKETS) % DAILY_BUCKETS;
    const weight = f[TIME_OF_DAY_WEIGHT_AT + bucket] as number;
    const mean = f[TIME_OF_DAY_MEAN_AT + bucket] as number;
    const spread = f[TIME_OF_DAY_SPREAD_AT + bucket] as number;
    const deviation = Math.abs(x - mean);
    if (weight >= TIME_OF_DAY_KNOWN) this.#d[TIME_OF_DAY_DEVIATION] = deviation / (spread + floor + 1e-300);
    // A day's worth per day, however many readings fall in the bucket.
    const perBucket = Math.max(1, DAY / DAILY_BUCKETS / (this.#d[INTERVAL] as number));
    const rate = TIME_OF_DAY_RATE / perBucket;
    const next = weight + rate * (1 - weight);
    // Bias-corrected: the first reading of a bucket is its mean.
    const share = rate / next;
    f[TIME_OF_DAY_WEIGHT_AT + bucket] = next;
    f[TIME_OF_DAY_MEAN_AT + bucket] = mean + share * (x - mean);
    f[TIME_OF_DAY_SPREAD_AT + bucket] = spread + share * (deviation - spread);
  }

  /** Whether the profile stepped last had seen its bucket often enough (scratch). */
  #ready = false;

  /**
   * A seasonal profile: a level plus one offset per bucket of the period.
   * Returns the error of its prediction, and learns.
   */
  #profile(
    levelAt: number,
    floatsAt: number,
    countsAt: number,
    buckets: number,
    period: number,
    offset: number,
    visits: number,
    t: number,
    x: number,
  ): number {
    const d = this.#d;
    const f = this.#f;
    const c = this.#u8;
    const bucket = Math.floor((remainder(t + offset, period) / period) * buckets) % buckets;
    const visited = c[COUNTS_OFFSET + countsAt + bucket] as number;
    const seasonal = visited > 0 ? (f[floatsAt + bucket] as number) : 0;
    const level = d[levelAt] as number;
    const error = x - level - seasonal;
    this.#ready = visited >= visits;
    const nextLevel = level + PROFILE_LEVEL_RATE * (x - seasonal - level);
    d[levelAt] = nextLevel;
    f[floatsAt + bucket] = seasonal + Math.max(PROFILE_RATE, 1 / (visited + 1)) * (x - nextLevel - seasonal);
    if (visited < 255) c[COUNTS_OFFSET + countsAt + bucket] = visited + 1;
    return error;
  }

  /** −log10 of the tail probability of `u` (ARGS[U]) in histogram `h`. */
  #tail(h: number): number {
    const u = ARGS[U] as number;
    const d = this.#d;
    const f = this.#f;
    const total = d[HISTOGRAMS_AT + 2 * h] as number;
    if (total <= 0) return 0;
    const bins = BINS_AT + h * BINS;
    const k = TAIL_K * (d[HISTOGRAMS_AT + 2 * h + 1] as number);
    const bin = binOf(u);
    // From the top down, and no further than needed: a tail heavier than
    // UNREMARKABLE of the weight cannot raise level 2 or pass a gate (see
    // RAW_FROM), and most readings stop here after a bin or two.
    const enough = Math.max(UNREMARKABLE * total, k);
    let above = 0;
    for (let i = (this.#u8[HIGHEST_AT + h] as number) - 1; i > bin; i--) {
      above += f[bins + i] as number;
      if (above >= enough) return 0;
    }
    const fraction = Math.min(1, Math.max(0, (BIN_LOW + (bin + 1) * BIN_WIDTH - u) / BIN_WIDTH));
    const mass = above + fraction * (f[bins + bin] as number);
    if (mass >= k) return -Math.log10(mass / total);
    // Beyond the K largest: an exponential tail fitted between the median and the K-th largest.
    let count = 0;
    let kth = Number.NaN;
    let median = Number.NaN;
    for (let i = BINS - 1; i >= 0; i--) {
      const inBin = f[bins + i] as number;
      const next = count + inBin;
      if (Number.isNaN(kth) && next >= k) kth = BIN_LOW + (i + (1 - (k - count) / inBin)) * BIN_WIDTH;
      if (next >= total / 2) {
        median = BIN_LOW + (i + (1 - (total / 2 - count) / inBin)) * BIN_WIDTH;
        break;
      }
      count = next;
    }
    if (total < 2 * k) return 0;
    if (Number.isNaN(kth) || Number.isNaN(median)) return -Math.log10(Math.max(mass, k) / total);
    const slope = Math.max((kth - median) / Math.log(total / (2 * k)), 0.05);
    return -Math.log10(k / total) + Math.max(0, u - kth) / slope / Math.LN10;
  }

  /** Adds `u` to histogram `h`: a growing increment stands for the decay of everything before. */
  #learn(h: number, u: number): void {
    const d = this.#d;
    const f = this.#f;
    const at = HISTOGRAMS_AT + 2 * h;
    const bins = BINS_AT + h * BINS;
    const increment = (d[at + 1] as number) / (1 - HISTORY_DECAY);
    const index = binOf(u);
    if (index + 1 > (this.#u8[HIGHEST_AT + h] as number)) this.#u8[HIGHEST_AT + h] = index + 1;
    const bin = bins + index;
    f[bin] = (f[bin] as number) + increment;
    d[at] = (d[at] as number) + increment;
    d[at + 1] = increment;
    if (increment > 1e25) {
      for (let i = 0; i < BINS; i++) f[bins + i] = (f[bins + i] as number) / increment;
      d[at] = (d[at] as number) / increment;
      d[at + 1] = 1;
    }
  }
}

/**
 * `t % period` (period a positive integer), the same value: for a time in
 * whole milliseconds by integer arithmetic in doubles instead of `%`'s
 * floating-point remainder, a call into the runtime (three a reading).
 * Exact below 2^53: the quotient t / period is m − k / period (k ≥ 1) or
 * m itself, and half an ulp of m (m < 2^53 / period) is less than
 * 1 / period, so it never rounds up to the next whole number; the product
 * and the difference are whole numbers below 2^53.
 */
export function remainder(t: number, period: number): number {
  if (!(t >= 0 && t <= Number.MAX_SAFE_INTEGER && Number.isInteger(t))) return t % period;
  return t - Math.floor(t / period) * period;
}

function binOf(u: number): number {
  const i = Math.floor((u - BIN_LOW) / BIN_WIDTH);
  return i < 0 ? 0 : i >= BINS ? BINS - 1 : i;
}

/** −log10 of the upper Gaussian tail Q(z) (an erfc approximation that holds far in the tail). */
function minusLog10Q(z: number): number {
  const x = z / Math.SQRT2;
  if (x <= 0) return 0;
  const t = 1 / (1 + 0.5 * x);
  const lnErfc =
    Math.log(t) -
    x * x -
    1.26551223 +
    t *
      (1.00002368 +
        t *
          (0.37409196 +
            t *
              (0.09678418 +
                t *
                  (-0.18628806 +
                    t *
                      (0.27886807 +
                        t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return -(lnErfc + Math.log(0.5)) / Math.LN10;
}
