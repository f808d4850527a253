import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { remainder } from '../src/anomaly/valueScore.ts';
import { DEFAULT_ANOMALY_SETTINGS, seededRandom, VALUE_SCORE_BYTES, ValueScore } from '../src/index.ts';

const FIVE_MINUTES = 300_000;
const DAY_READINGS = 288;
const start = Date.UTC(2026, 0, 1);
/** The score from which a reading starts an event (the default, chosen on the labelled corpus). */
const ALARM = DEFAULT_ANOMALY_SETTINGS.alarmScore;

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
}

/** Scores a constructed series of `n` readings every five minutes (or at `at(i)`). */
function scores(
  value: (i: number, random: () => number) => number,
  n = 4000,
  at = (i: number) => start + i * FIVE_MINUTES,
) {
  const random = seededRandom(7);
  const score = new ValueScore();
  return Array.from({ length: n }, (_, i) => score.observe(at(i), value(i, random)));
}

const alarms = (s: readonly number[], from = 0, to = s.length) =>
  s
    .map((v, i) => [i, v] as const)
    .filter(([i, v]) => i >= from && i < to && v >= ALARM)
    .map(([i]) => i);

describe('ValueScore, the calibrated score of one series', () => {
  it('is deterministic, within 0..1, and resumes from its bytes exactly', () => {
    const random = seededRandom(3);
    const cauchy = Array.from({ length: 5000 }, () => Math.tan(Math.PI * (random() - 0.5)));
    const straight = new ValueScore();
    const first = cauchy.map((x, i) => straight.observe(start + i * FIVE_MINUTES, x));
    for (const s of first) {
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(1);
    }
    let resumed = new ValueScore();
    const second = cauchy.map((x, i) => {
      if (i % 997 === 0) resumed = new ValueScore(resumed.bytes);
      return resumed.observe(start + i * FIVE_MINUTES, x);
    });
    expect(second).toEqual(first);
    expect(resumed.bytes).toHaveLength(VALUE_SCORE_BYTES);
    expect(() => new ValueScore(new Uint8Array(8))).toThrow(/bytes/);
  });

  it('scores a spike and a dip at once, however the series is scaled', () => {
    for (const scale of [1e-6, 1, 1e6]) {
      const spike = scores((i, r) => scale * (100 + gaussian(r) + (i === 2000 ? 10 : 0)));
      expect(alarms(spike, 1990, 2010)[0], `spike ×${scale}`).toBeGreaterThanOrEqual(2000);
      expect(alarms(spike, 1990, 2010)[0], `spike ×${scale}`).toBeLessThanOrEqual(2001);
      const dip = scores((i, r) => scale * (100 + gaussian(r) - (i === 2000 ? 8 : 0)));
      expect(alarms(dip, 1990, 2010)[0], `dip ×${scale}`).toBeLessThanOrEqual(2001);
    }
  });

  it('scores a level shift once, then learns the new level', () => {
    const shift = scores((i, r) => gaussian(r) + (i >= 2000 ? 8 : 0));
    expect(alarms(shift, 1990, 2010)).toEqual([2001]);
    // No second report of the same shift; the new level is normal a while later.
    expect(alarms(shift, 2002, 2400)).toEqual([]);
    expect(Math.max(...shift.slice(2400))).toBeLessThan(ALARM);
  });

  it('scores a change of variance within a few readings', () => {
    const wider = scores((i, r) => gaussian(r) * (i >= 2000 ? 5 : 1));
    expect(alarms(wider, 1990, 2010)[0]).toBeLessThanOrEqual(2005);
  });

  it('learns a daily pattern, and flags a value that is usual by day but not at night', () => {
    const days = 20;
    const daily = (i: number, r: () => number) =>
      100 + 30 * Math.sin((2 * Math.PI * i) / DAY_READINGS) + gaussian(r);
    const clean = scores(daily, DAY_READINGS * days);
    // After the warm-up, about one reading in 1000 reaches the alarm (as on noise alone).
    expect(alarms(clean, DAY_READINGS * 3).length).toBeLessThanOrEqual(
      (2 * DAY_READINGS * (days - 3)) / 1000,
    );
    // 40 above the night's trough: the level of every afternoon, never seen at night.
    const night = DAY_READINGS * 15 + 216;
    const odd = scores((i, r) => daily(i, r) + (i === night ? 40 : 0), DAY_READINGS * days);
    const [flagged] = alarms(odd, night - 5, night + 5);
    expect(flagged).toBeGreaterThanOrEqual(night);
    expect(flagged).toBeLessThanOrEqual(night + 1);
  });

  it('learns a routine: a spike at the same hour every day stops being reported, an extreme one is not', () => {
    const days = 14;
    const cronAt = 36; // 03:00
    const cron = (i: number, r: () => number) => 50 + gaussian(r) + (i % DAY_READINGS === cronAt ? 6 : 0);
    const s = scores(cron, DAY_READINGS * days);
    const atThree = (from: number) =>
      alarms(s, DAY_READINGS * from).filter((i) => Math.floor((i % DAY_READINGS) / 12) === 3);
    expect(
      alarms(s, 0, DAY_READINGS * 4).filter((i) => Math.floor((i % DAY_READINGS) / 12) === 3).length,
    ).toBeGreaterThan(0);
    expect(atThree(5)).toEqual([]);
    // The same hour, but 40 σ: extreme on its own, reported however routine the hour.
    const worse = DAY_READINGS * 12 + cronAt;
    const t = scores((i, r) => cron(i, r) + (i === worse ? 34 : 0), DAY_READINGS * days);
    expect(alarms(t, worse, worse + 2)).toEqual([worse]);
  });

  it('keeps a flat line at 0, and flags the first departure from it', () => {
    expect(scores(() => 5)).toEqual(new Array(4000).fill(0));
    expect(scores(() => 0)).toEqual(new Array(4000).fill(0));
    const step = scores((i) => (i >= 3000 ? 5.05 : 5));
    expect(alarms(step)).toEqual([3000]);
    // A noisy series that goes flat for a while (a plateau, a stuck value) is quiet while flat
    // (stuck_sensor is the water rule for that); the noise coming back is flagged.
    const plateau = scores((i, r) => (i >= 2000 && i < 2300 ? 3 : 3 + gaussian(r)));
    expect(alarms(plateau, 2000, 2300)).toEqual([]);
    expect(alarms(plateau, 2300, 2340)).toHaveLength(1);
  });

  it('copes with gaps and irregular sampling', () => {
    const gaps = scores(
      (_, r) => 10 + gaussian(r),
      4000,
      (i) => start + i * FIVE_MINUTES + Math.floor(i / 500) * 86_400_000,
    );
    const irregular = scores(
      (_, r) => 10 + gaussian(r),
      4000,
      (i) => start + i * FIVE_MINUTES + ((i * 7919) % 13) * 20_000,
    );
    for (const s of [gaps, irregular]) {
      expect(s.every((v) => Number.isFinite(v))).toBe(true);
      expect(alarms(s).length).toBeLessThanOrEqual(4);
    }
  });

  it("finds a time's place in a period as `%` does, for any time", () => {
    const random = seededRandom(11);
    const periods = [86_400_000, 604_800_000, 3_600_000, 7, 1];
    const times = [0, 1, 86_399_999, 86_400_000, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1];
    // Epoch milliseconds of every era, near and on multiples of each period
    // (up to 2^53, where the quotient is closest to rounding up), negative and fractional.
    for (let i = 0; i < 20_000; i++) {
      const t = Math.floor(random() * 2 ** (1 + Math.floor(random() * 52)));
      times.push(t, t + 0.5, -t, t * 86_400_000, t * 86_400_000 - 1);
    }
    for (const period of periods) {
      const top = Math.floor(Number.MAX_SAFE_INTEGER / period);
      for (let m = top; m > top - 2000 && m > 0; m--) times.push(m * period - 1, m * period);
    }
    times.push(2 ** 53, 2 ** 60 + 1024, -0, Number.NaN, Number.POSITIVE_INFINITY);
    for (const period of periods) {
      for (const t of times) {
        // The same number (-0 % period is -0, the remainder may be 0: the same place), or both NaN.
        const [got, expected] = [remainder(t, period), t % period];
        expect(got === expected || (Number.isNaN(got) && Number.isNaN(expected)), `${t} % ${period}`).toBe(
          true,
        );
      }
    }
  });

  it('scores bit for bit as the implementation it was tuned with, overflowing readings included', () => {
    // Every output of every reading, hashed. The expected hash is what the
    // score gave before its hot loops were rewritten for speed (d4c2430): a
    // rewrite must not move a single bit. (Not the state's bytes: once an
    // input is NaN, a NaN's bits there can differ from one JIT tier to the next.)
    const hash = createHash('sha256');
    const random = seededRandom(5);
    const score = new ValueScore();
    let t = Date.UTC(2026, 0, 1);
    let level = 10;
    for (let i = 0; i < 6000; i++) {
      t += i % 997 === 0 ? 7_200_000 : 300_000;
      level += (random() - 0.5) * 0.2;
      let x = level + 3 * Math.sin((2 * Math.PI * (t % 86_400_000)) / 86_400_000) + (random() - 0.5);
      if (i % 431 === 0) x += 40;
      // Readings whose range overflows: the pattern view's inputs are NaN.
      if (i >= 5000 && i < 5050) x = i % 2 === 0 ? 1.7e308 : -1.7e308;
      if (i >= 5050 && i < 5100) x = 1e308 * random();
      const s = score.observe(t, x);
      hash.update(`${s},${score.surprise},${score.patternSurprise},${score.timeOfDayDeviation};`);
    }
    expect(hash.digest('hex')).toBe('db7891c27ced5a19246bd1475f6b9c7083d67bd7add6222663aa84140fdff3a4');
  });
});
