/**
 * The anomaly detectors on the live path, without Redis: µs per reading of
 * the calibrated score alone (one series) and of every detector of a node
 * (flow and pressure, 1,000 and 10,000 nodes interleaved as a batch brings
 * them), and the bytes of state each keeps.
 */
import {
  DEFAULT_ANOMALY_SETTINGS,
  encodeDetectorState,
  NodeDetector,
  type Reading,
  seededRandom,
  VALUE_SCORE_BYTES,
  ValueScore,
} from '@streamgauge/core';
import type { SuiteContext } from './lib/types.ts';

const MINUTE = 60_000;

/** A noisy daily pattern with a level shift and spikes: every branch of the score is exercised. */
function series(n: number, seed: number): { t: Float64Array; x: Float64Array } {
  const random = seededRandom(seed);
  const t = new Float64Array(n);
  const x = new Float64Array(n);
  const start = Date.UTC(2026, 0, 1);
  for (let i = 0; i < n; i++) {
    t[i] = start + i * 5 * MINUTE;
    const day = Math.sin((2 * Math.PI * (t[i] as number)) / 86_400_000);
    x[i] = 50 + 20 * day + (i > n / 2 ? 15 : 0) + 3 * (random() - 0.5) + (random() < 0.001 ? 40 : 0);
  }
  return { t, x };
}

export async function anomalyBench(context: SuiteContext): Promise<void> {
  const seconds = context.options.seconds;
  {
    const { t, x } = series(200_000, 1);
    let done = 0;
    let sink = 0;
    const started = performance.now();
    while (performance.now() - started < seconds * 1000) {
      const score = new ValueScore();
      for (let i = 0; i < t.length; i++) sink += score.observe(t[i] as number, x[i] as number);
      done += t.length;
    }
    if (!Number.isFinite(sink)) throw new Error('the score was not finite');
    timed(context, 'calibrated score, one series', started, done, VALUE_SCORE_BYTES, 'per series');
  }
  // 10,000 nodes: their states (~9 KB a node) far outgrow every cache, as in the aggregator.
  for (const nodes of [1_000, 10_000]) nodeDetectors(context, nodes, seconds);
}

/** Every detector of `nodes` nodes, interleaved as a batch brings them, for `seconds`. */
function nodeDetectors(context: SuiteContext, nodes: number, seconds: number): void {
  const random = seededRandom(2);
  const detectors = Array.from(
    { length: nodes },
    (_, i) => new NodeDetector(`N${i}`, DEFAULT_ANOMALY_SETTINGS),
  );
  const peak = Array.from({ length: nodes }, () => 5 + 30 * random());
  const start = Date.UTC(2026, 0, 1);
  let done = 0;
  let step = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    for (let k = 0; k < 50; k++, step++) {
      const at = start + step * MINUTE;
      const day = 0.6 + 0.4 * Math.sin((2 * Math.PI * at) / 86_400_000);
      for (let i = 0; i < nodes; i++) {
        const flow = (peak[i] as number) * day * (1 + 0.05 * (random() - 0.5));
        const reading: Reading = {
          node_id: `N${i}`,
          timestamp: at,
          flow_rate: flow,
          pressure: 5 - 0.03 * flow,
        };
        (detectors[i] as NodeDetector).observe(reading);
      }
      done += nodes;
    }
  }
  // As the aggregator persists it: the state, and the scores' bytes (written apart).
  const state = (detectors[0] as NodeDetector).state();
  const { numbers, json } = encodeDetectorState(state);
  let stateBytes = numbers.byteLength + json.length;
  for (const score of Object.values(state.scores)) stateBytes += score?.byteLength ?? 0;
  timed(
    context,
    `every detector of a node (flow and pressure), ${nodes} nodes`,
    started,
    done,
    stateBytes,
    'per node',
  );
}

/** Records a case timed from `started` over `done` readings, with the state it keeps. */
function timed(
  context: SuiteContext,
  name: string,
  started: number,
  done: number,
  stateBytes: number,
  per: string,
): void {
  const elapsed = (performance.now() - started) / 1000;
  const usPerReading = (elapsed * 1e6) / done;
  context.record({
    suite: 'anomaly',
    case: name,
    seconds: elapsed,
    readings: done,
    requests: done,
    readingsPerSec: done / elapsed,
    requestsPerSec: done / elapsed,
    notes: [`${usPerReading.toFixed(3)} µs per reading; state ${stateBytes} bytes ${per}`],
    figures: { usPerReading, stateBytes },
  });
}
