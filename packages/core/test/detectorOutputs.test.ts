import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ANOMALY_SETTINGS,
  decodeDetectorState,
  encodeDetectorState,
  NodeDetector,
  type PersistedDetectorState,
  type Reading,
} from '../src/index.ts';

/** JSON with keys sorted and bytes as base64: the same value, however its objects were built. */
function canonical(value: unknown): string {
  const sorted = (x: unknown): unknown => {
    if (x instanceof Uint8Array) return Buffer.from(x).toString('base64');
    if (Array.isArray(x)) return x.map(sorted);
    if (x === null || typeof x !== 'object') return x;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(x).sort()) {
      const v = (x as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sorted(v);
    }
    return out;
  };
  return JSON.stringify(sorted(value));
}

describe('NodeDetector outputs', () => {
  it('are bit for bit what the detector gave with its state in records, across saves and restores', () => {
    // Every observation, clock tick, checkpoint and persisted state of a
    // series built to run every rule (σ, threshold, stuck, no flow, the
    // hours, the nights, offline), restored from its state in memory and
    // through its binary encoding along the way, hashed. The expected hash
    // is what the detector gave before its numbers moved into a typed
    // array (7e7a82e): that change must not move a bit.
    const settings = {
      ...DEFAULT_ANOMALY_SETTINGS,
      thresholds: { '*': { pressure: { min: 1.5 } }, 'type:flow': { flow_rate: { max: 400 } } },
      stuckReadings: 4,
    };
    const hash = createHash('sha256');
    const rules = new Set<string>();
    let detector = new NodeDetector('n', settings);
    let t = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 40_000; i++) {
      t += i % 997 === 0 ? 7_200_000 : 60_000;
      const hour = (t % 86_400_000) / 3_600_000;
      let flow = 10 + 5 * Math.sin(i / 50) + (hour < 4 ? -8 + (i > 20_000 ? 3 : 0) : 0);
      if (i % 301 < 12) flow = 3.25;
      if (i % 577 < 5) flow = 0;
      if (i % 4099 === 0) flow = 1e6;
      if (i >= 30_000 && i < 30_600) flow = 7.5;
      const reading: Reading = {
        node_id: 'n',
        timestamp: t,
        flow_rate: flow,
        node_type: i % 5000 < 10 ? 'pump' : 'flow',
        ...(i % 3 !== 0 && { pressure: 2 + (flow % 7) / 3 }),
      };
      const seen = detector.observe(reading);
      for (const breach of seen.breaches) rules.add(breach.rule);
      hash.update(canonical([seen.events, seen.breaches, seen.score, seen.examined]));
      if (i === 3) hash.update(canonical(detector.observe({ ...reading, timestamp: t - 1000 })));
      if (i % 997 === 500) hash.update(canonical(detector.tick(t + 3_600_000 * (i % 3))));
      if (i % 1500 === 700) {
        // What is due and the state it reads (which part of it goes is the store's: not an output).
        const checkpoint = detector.checkpoint(i % 2 === 0, i % 3 === 0);
        hash.update(canonical(checkpoint ? { scores: checkpoint.scores, state: checkpoint.state } : null));
      }
      if (i % 5000 === 4999) {
        const state = detector.state();
        const { numbers, json } = encodeDetectorState(state);
        const decoded: PersistedDetectorState = {
          ...decodeDetectorState(numbers, json),
          scores: state.scores,
        };
        hash.update(canonical(state));
        hash.update(canonical(decoded));
        detector = new NodeDetector('n', settings, i % 10_000 === 9_999 ? decoded : state);
      }
    }
    hash.update(canonical(detector.state()));
    expect([...rules].sort()).toEqual(['diurnal', 'night_flow', 'no_flow', 'sigma', 'stuck', 'threshold']);
    expect(hash.digest('hex')).toBe('764ee0eeca8631e214dcfd5599cfdeb8d6e7c6b4586490e383f119622501acd8');
  });
});
