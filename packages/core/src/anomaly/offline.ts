import type { Reading } from '../reading.ts';
import { NodeDetector } from './detector.ts';
import type { AnomalySettings } from './settings.ts';
import { type AnomalyEvent, type AnomalyType, SEVERITY_RANK } from './types.ts';
import { ValueScore } from './valueScore.ts';

/**
 * Per reading: its calibrated score, and the anomaly open on its node right
 * after it (the most severe); for a bare series, `high_value` or
 * `low_value` when the score reaches the alarm level.
 */
export interface ScoredReading {
  readonly score: number;
  readonly type: AnomalyType | 'high_value' | 'low_value' | '';
}

/**
 * One series of any unit (`streamgauge detect --as value`): only the
 * calibrated score, point by point in time order, no water rules.
 */
export function scoreSeries(
  points: readonly { readonly t: number; readonly x: number }[],
  settings: Pick<AnomalySettings, 'alarmScore'>,
): ScoredReading[] {
  const order = points.map((_, i) => i).sort((a, b) => (points[a]?.t as number) - (points[b]?.t as number));
  const score = new ValueScore();
  const scored: ScoredReading[] = new Array(points.length);
  for (const i of order) {
    const { t, x } = points[i] as { t: number; x: number };
    const expected = score.level;
    const s = score.observe(t, x);
    scored[i] = { score: s, type: s < settings.alarmScore ? '' : x >= expected ? 'high_value' : 'low_value' };
  }
  return scored;
}

export interface DetectionRun {
  readonly scored: ScoredReading[];
  readonly events: AnomalyEvent[];
}

/**
 * The detectors over a history, as the aggregator applies them live: each
 * node's readings in event-time order, and the clock advancing every
 * `tickMs` between them (so silence is noticed when it would have been).
 * For `streamgauge detect` and the evaluation.
 */
export function runDetectors(
  readings: readonly Reading[],
  settings: AnomalySettings,
  tickMs = 60_000,
): DetectionRun {
  const order = readings
    .map((_, i) => i)
    .sort((a, b) => (readings[a] as Reading).timestamp - (readings[b] as Reading).timestamp);
  const detectors = new Map<string, NodeDetector>();
  const scored: ScoredReading[] = new Array(readings.length);
  const events: AnomalyEvent[] = [];
  let clock: number | undefined;
  const advance = (to: number) => {
    if (clock === undefined) clock = to;
    for (let t = Math.floor(clock / tickMs + 1) * tickMs; t < to; t += tickMs) {
      for (const detector of detectors.values()) events.push(...detector.tick(t));
      clock = t;
    }
  };
  for (const i of order) {
    const reading = readings[i] as Reading;
    advance(reading.timestamp);
    let detector = detectors.get(reading.node_id);
    if (detector === undefined) {
      detector = new NodeDetector(reading.node_id, settings);
      detectors.set(reading.node_id, detector);
    }
    const observed = detector.observe(reading);
    events.push(...observed.events);
    const worst = detector.open.sort(
      (a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || b.opened_at - a.opened_at,
    )[0];
    scored[i] = { score: observed.score, type: worst?.type ?? '' };
  }
  return { scored, events };
}
