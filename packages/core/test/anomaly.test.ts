import { describe, expect, it } from 'vitest';
import {
  AnomalyLifecycle,
  DEFAULT_ANOMALY_SETTINGS,
  decodeDetectorState,
  encodeDetectorState,
  NodeDetector,
} from '../src/index.ts';

const start = Date.UTC(2026, 10, 1);

describe('NodeDetector state', () => {
  it('survives its binary encoding exactly, open anomalies and baselines included', () => {
    const detector = new NodeDetector('N1', DEFAULT_ANOMALY_SETTINGS);
    for (let i = 0; i < 24 * 4 * 6; i++) {
      const t = start + i * 900_000;
      const pressure = i > 24 * 4 * 5 ? 1.2 : 4 + Math.sin(i / 5) * 0.3;
      detector.observe({
        node_id: 'N1',
        node_type: 'distribution',
        timestamp: t,
        flow_rate: 10 + (i % 7),
        pressure,
      });
    }
    const state = detector.state();
    expect(state.open.map((a) => a.type)).toContain('low_pressure');
    expect(state.hours?.n.some((n) => n > 0)).toBe(true);
    expect(state.nights.length).toBeGreaterThan(0);
    const { numbers, json } = encodeDetectorState(state);
    expect(decodeDetectorState(numbers, json)).toEqual(JSON.parse(JSON.stringify(state)));
  });
});

describe('AnomalyLifecycle', () => {
  it('keeps a condition that comes and goes within the hysteresis as one anomaly', () => {
    const life = new AnomalyLifecycle('N1', 30 * 60_000);
    const breach = {
      type: 'low_pressure',
      rule: 'threshold',
      value: 1,
      expected: { low: 1.5 },
      score: 1,
    } as const;
    const evaluated = new Set(['low_pressure'] as const);
    const events = [
      ...life.update(start, [breach], evaluated),
      ...life.update(start + 15 * 60_000, [], evaluated),
      ...life.update(start + 30 * 60_000, [{ ...breach, value: 0.8 }], evaluated),
      ...life.update(start + 45 * 60_000, [], evaluated),
      ...life.update(start + 60 * 60_000, [], evaluated),
      ...life.update(start + 75 * 60_000, [], evaluated),
    ];
    expect(events.map((e) => e.event)).toEqual(['open', 'close']);
    expect(events[1]?.anomaly).toMatchObject({
      opened_at: start,
      closed_at: start + 75 * 60_000,
      values: { first: 1, last: 0.8, min: 0.8, max: 1, count: 2 },
      severity: 'critical',
    });
  });
});
