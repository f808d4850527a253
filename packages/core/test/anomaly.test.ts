import { describe, expect, it } from 'vitest';
import {
  AnomalyLifecycle,
  checkpointPhase,
  DEFAULT_ANOMALY_SETTINGS,
  type DetectorCheckpoint,
  decodeDetectorState,
  decodeEncodedState,
  encodeDetectorState,
  GrowingArena,
  NodeDetector,
  VALUE_SCORE_BYTES,
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
    // Everything but the scores, which are persisted apart (as their bytes) when due.
    const { scores, ...rest } = state;
    expect(decodeDetectorState(numbers, json)).toEqual({ ...rest, scores: {} });
    expect(scores.flow_rate).toHaveLength(VALUE_SCORE_BYTES);
    // Resumed from that and the scores' bytes, it goes on exactly as the original.
    const resumed = new NodeDetector('N1', DEFAULT_ANOMALY_SETTINGS, {
      ...decodeDetectorState(numbers, json),
      scores,
    });
    for (let i = 0; i < 200; i++) {
      const reading = {
        node_id: 'N1',
        timestamp: start + (24 * 4 * 6 + i) * 900_000,
        flow_rate: 10 + (i % 5),
        pressure: 4,
      };
      expect(resumed.observe(reading)).toEqual(detector.observe(reading));
    }
  });

  it('hands its state out to be persisted once per checkpointReadings readings, every time while an anomaly is open or pending, and once after', () => {
    const settings = { ...DEFAULT_ANOMALY_SETTINGS, checkpointReadings: 10 };
    const detector = new NodeDetector('N1', settings);
    const due: number[] = [];
    const scored: number[] = [];
    for (let i = 0; i < 40; i++) {
      detector.observe({
        node_id: 'N1',
        timestamp: start + i * 900_000,
        flow_rate: 10 + (i % 3),
        pressure: 4 + (i % 4) / 100,
      });
      const checkpoint = detector.checkpoint();
      if (checkpoint !== undefined) due.push(i);
      if (checkpoint?.scores === true) scored.push(i);
    }
    // The first after the node's phase (its share of the period already counted), then every 10.
    const first = 9 - checkpointPhase('N1', 10);
    expect(checkpointPhase('N1', 10)).toBeGreaterThan(0);
    expect(due).toEqual([first, first + 10, first + 20, first + 30]);
    expect(scored).toEqual(due);
    expect(detector.checkpoint(), 'nothing unsaved').toBeUndefined();
    detector.observe({ node_id: 'N1', timestamp: start + 40 * 900_000, flow_rate: 10, pressure: 4 });
    expect(detector.checkpoint(true), 'handed over, quiet: waits').toBeUndefined();
    const stop = detector.checkpoint(true, true);
    expect(
      { state: stop?.state, scores: stop?.scores },
      'a stop with the time: all of it, scores too',
    ).toEqual({
      state: detector.state(),
      scores: true,
    });
    expect(detector.checkpoint(true, true), 'then nothing is left').toBeUndefined();
    // Below the 1.5 bar minimum: pending, then open. Its lifecycle is due
    // with every commit, apart from the learning (due at its checkpoint).
    const lifecycle = (checkpoint: DetectorCheckpoint | undefined) => {
      if (checkpoint?.part !== 'lifecycle') return undefined;
      const arena = new GrowingArena(64);
      checkpoint.encodeLifecycle(arena);
      return arena.bytes.slice(0, arena.used);
    };
    // The whole state as persisted last (encoded when handed out: a checkpoint reads the detector as it is).
    const whole = (checkpoint: DetectorCheckpoint) => {
      const arena = new GrowingArena(64);
      checkpoint.encode(arena);
      return arena.bytes.slice(0, arena.used);
    };
    let persisted = whole(stop as DetectorCheckpoint);
    const parts: string[] = [];
    for (let i = 41; i < 61; i++) {
      const pressure = 1 + (i % 3) / 100;
      detector.observe({ node_id: 'N1', timestamp: start + i * 900_000, flow_rate: 10 + (i % 3), pressure });
      const checkpoint = detector.checkpoint();
      parts.push(checkpoint?.part ?? 'none');
      if (checkpoint?.part === 'state') {
        expect(checkpoint.replacesLifecycle, 'a lifecycle went apart before it').toBe(
          parts.includes('lifecycle'),
        );
        persisted = whole(checkpoint);
        continue;
      }
      // What a load finds: the learning of the last whole state, this lifecycle.
      const loaded = decodeEncodedState(persisted, lifecycle(checkpoint));
      expect(loaded?.open).toEqual(detector.open);
      expect(loaded?.pending).toEqual(detector.state().pending);
      expect(loaded?.last, 'the learning waits').toBeLessThan(start + i * 900_000);
    }
    expect(detector.open.map((a) => a.type)).toEqual(['low_pressure']);
    // Every commit while open; the whole state once per 10 readings only.
    expect(parts.filter((p) => p === 'none')).toEqual([]);
    expect(parts.filter((p) => p === 'state')).toHaveLength(2);
    // The first commit after it closed persists that it did, and no more after that.
    let closed = false;
    for (let i = 61; i < 200 && !closed; i++) {
      detector.observe({ node_id: 'N1', timestamp: start + i * 900_000, flow_rate: 10, pressure: 4 });
      const checkpoint = detector.checkpoint();
      if (detector.open.length === 0) {
        closed = true;
        expect(checkpoint?.state.open).toEqual([]);
        detector.observe({ node_id: 'N1', timestamp: start + (i + 1) * 900_000, flow_rate: 10, pressure: 4 });
        expect(detector.checkpoint()?.part).not.toBe('lifecycle');
      }
    }
    expect(closed).toBe(true);
  });
});

describe('NodeDetector checkpoints in time', () => {
  it('hands its learning out at most once per checkpointMs of the caller’s time, its lifecycle every time', () => {
    const settings = { ...DEFAULT_ANOMALY_SETTINGS, checkpointReadings: 10, checkpointMs: 60_000 };
    /** Readings `every` ms apart (event time 15 min apart), `now` moving with them: where the state and the scores were due. */
    const run = (every: number, readings: number, pressure = (i: number) => 4 + (i % 4) / 100) => {
      const detector = new NodeDetector('N1', settings);
      const due: { i: number; part: string; scores: boolean }[] = [];
      for (let i = 0; i < readings; i++) {
        detector.observe({
          node_id: 'N1',
          timestamp: start + i * 900_000,
          flow_rate: 10 + (i % 3),
          pressure: pressure(i),
        });
        const checkpoint = detector.checkpoint(false, false, 1_000_000 + i * every);
        if (checkpoint) due.push({ i, part: checkpoint.part, scores: checkpoint.scores });
      }
      return { detector, due };
    };
    const first = 9 - checkpointPhase('N1', 10);
    // Read a minute apart: every 10 readings, as with no time at all.
    expect(run(60_000, 40).due).toEqual(
      [first, first + 10, first + 20, first + 30].map((i) => ({ i, part: 'state', scores: true })),
    );
    // Read a second apart (catching up): the first when due, then once a minute.
    expect(run(1_000, 200).due.map(({ i }) => i)).toEqual([first, first + 60, first + 120, first + 180]);
    // Caught up in 5 s per reading: the first 10 after a minute since the last.
    expect(run(5_000, 60).due.map(({ i }) => i)).toEqual([
      first,
      first + 12,
      first + 24,
      first + 36,
      first + 48,
    ]);
    // An anomaly open meanwhile: its lifecycle with every reading, its learning still once a minute.
    const { detector, due } = run(1_000, 120, (i) => (i >= 30 ? 1 : 4) + (i % 4) / 100);
    expect(detector.open.map((a) => a.type)).toEqual(['low_pressure']);
    expect(due.filter((d) => d.part === 'state').map(({ i }) => i)).toEqual([first, first + 60]);
    expect(due.filter((d) => d.i >= 31).every((d, k) => d.i === 31 + k)).toBe(true);
    // A stop (everything) and a hand-over in an anomaly do not wait.
    expect(detector.checkpoint(true, false, 1_000_000 + 120 * 1_000)?.part).toBe('state');
    detector.observe({ node_id: 'N1', timestamp: start + 120 * 900_000, flow_rate: 10, pressure: 4 });
    expect(detector.checkpoint(false, true, 1_000_000 + 121 * 1_000)?.part).toBe('state');
  });
});

describe('checkpointPhase', () => {
  it('spreads the checkpoints of nodes that start together over the period, the same on every start', () => {
    // 10,000 nodes named as a fleet's often are, reading in step: how many are due at each reading.
    const every = DEFAULT_ANOMALY_SETTINGS.checkpointReadings;
    const counts = new Array<number>(every).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const phase = checkpointPhase(`PT-${String(i).padStart(5, '0')}`, every);
      expect(phase).toBe(checkpointPhase(`PT-${String(i).padStart(5, '0')}`, every));
      counts[phase] = (counts[phase] as number) + 1;
    }
    // Even would be 156 a reading; without phases all 10,000 at one.
    expect(Math.max(...counts)).toBeLessThan(250);
    expect(Math.min(...counts)).toBeGreaterThan(75);
    expect(checkpointPhase('N1', 1)).toBe(0);
  });
});

describe('AnomalyLifecycle', () => {
  it('keeps a condition that comes and goes within the hysteresis as one anomaly', () => {
    const life = new AnomalyLifecycle('N1', { clearMs: 30 * 60_000, confirmReadings: 1 });
    const breach = {
      type: 'low_pressure',
      rule: 'threshold',
      value: 1,
      expected: { low: 1.5 },
      score: 1,
      strong: true,
      unlikely: true,
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

  it('opens a condition only once confirmed, dated from its first breach; critical only when strong', () => {
    const life = new AnomalyLifecycle('N1', { clearMs: 30 * 60_000, confirmReadings: 2 });
    const evaluated = new Set(['low_pressure'] as const);
    const weak = {
      type: 'low_pressure',
      rule: 'sigma',
      value: 3.49,
      expected: { low: 3.5 },
      score: 0.9,
      strong: false,
      unlikely: true,
    } as const;
    // One breaching reading between normal ones: a glitch, nothing opens.
    expect(life.update(start, [weak], evaluated)).toEqual([]);
    expect(life.update(start + 15 * 60_000, [], evaluated)).toEqual([]);
    expect(life.pending.size).toBe(0);
    // Two in a row: opened, from the first; weak, so one level below critical.
    expect(life.update(start + 30 * 60_000, [weak], evaluated)).toEqual([]);
    const [opened] = life.update(start + 45 * 60_000, [{ ...weak, value: 3.48 }], evaluated);
    expect(opened?.event).toBe('open');
    expect(opened?.anomaly).toMatchObject({
      id: `N1:low_pressure:${start + 30 * 60_000}`,
      opened_at: start + 30 * 60_000,
      last_at: start + 45 * 60_000,
      severity: 'warning',
      values: { first: 3.49, last: 3.48, count: 2 },
    });
    // A strong breach in the run earns the type's own severity.
    const other = new AnomalyLifecycle('N2', { clearMs: 30 * 60_000, confirmReadings: 2 });
    other.update(start, [{ ...weak, value: 1.2, strong: true }], evaluated);
    const [strong] = other.update(start + 15 * 60_000, [weak], evaluated);
    expect(strong?.anomaly.severity).toBe('critical');
    // A rule that is persistence by construction needs no second reading.
    const offline = {
      type: 'offline',
      rule: 'offline',
      value: 1,
      expected: {},
      score: 1,
      strong: true,
      unlikely: true,
    } as const;
    expect(other.update(start, [offline], new Set(['offline'] as const))[0]?.event).toBe('open');
    // A material deviation the node shows every day (no reading of the run unlikely) never opens.
    const usual = new AnomalyLifecycle('N3', { clearMs: 30 * 60_000, confirmReadings: 2 });
    for (let i = 0; i < 10; i++) {
      expect(
        usual.update(start + i * 60_000, [{ ...weak, strong: true, unlikely: false }], evaluated),
      ).toEqual([]);
    }
    const [late] = usual.update(start + 10 * 60_000, [{ ...weak, unlikely: true }], evaluated);
    expect(late?.anomaly).toMatchObject({ opened_at: start, values: { count: 11 }, severity: 'critical' });
  });
});
