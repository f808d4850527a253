/**
 * PLACEHOLDER (replaced by the tuned algorithm): an EW z-score turned into a
 * tail probability. Its shape is the contract: the whole state is one
 * Float64Array of VALUE_SCORE_DOUBLES, persisted as it is.
 */
export const VALUE_SCORE_DOUBLES = 4;

const N = 0;
const MEAN = 1;
const VAR = 2;
const LAST = 3;

export class ValueScore {
  readonly state: Float64Array;

  constructor(state?: Float64Array) {
    this.state = state ? Float64Array.from(state) : new Float64Array(VALUE_SCORE_DOUBLES);
  }

  /** The value it expects next (NaN before any). */
  get level(): number {
    return this.state[N] === 0 ? Number.NaN : (this.state[MEAN] as number);
  }

  observe(t: number, x: number): number {
    const s = this.state;
    s[LAST] = t;
    const n = s[N] as number;
    if (n === 0) {
      s[MEAN] = x;
      s[N] = 1;
      return 0;
    }
    const d = x - (s[MEAN] as number);
    const sd = Math.sqrt(s[VAR] as number) + 1e-9 * (Math.abs(s[MEAN] as number) + 1);
    const z = Math.abs(d) / sd;
    const a = Math.max(1 / (n + 1), 0.01);
    s[N] = n + 1;
    s[MEAN] = (s[MEAN] as number) + a * d;
    s[VAR] = (1 - a) * ((s[VAR] as number) + a * d * d);
    return n < 50 ? 0 : 1 - Math.exp(-0.5 * z * z);
  }
}
