import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ANOMALY_SETTINGS,
  decodeEncodedState,
  encodeDetectorState,
  GrowingArena,
  NodeDetector,
  type PersistedDetectorState,
} from '../src/index.ts';

/** `[json length u32][json][numbers]`, made the long way: the records of state(), then encodeDetectorState. */
function throughRecords(state: PersistedDetectorState): Buffer {
  const { numbers, json } = encodeDetectorState(state);
  const text = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(text.length);
  return Buffer.concat([length, text, Buffer.from(numbers.buffer, numbers.byteOffset, numbers.length * 8)]);
}

describe('NodeDetector.encodeState', () => {
  it('writes the bytes the state’s records encode to, through runs, nights, hours, gaps and anomalies open and pending', () => {
    const start = Date.UTC(2026, 0, 5);
    const detector = new NodeDetector('N1', DEFAULT_ANOMALY_SETTINGS);
    const arena = new GrowingArena(64);
    let compared = 0;
    const seen = { open: 0, pending: 0, nights: 0, hours: 0, runs: 0 };
    const compare = () => {
      const state = detector.state();
      arena.reset(64);
      detector.encodeState(arena);
      const direct = Buffer.from(arena.bytes.subarray(0, arena.used));
      expect(direct.equals(throughRecords(state)), `step ${compared}`).toBe(true);
      // And it loads back to the same state.
      expect(decodeEncodedState(direct)).toEqual({
        ...state,
        scores: {},
      });
      compared++;
      if (state.open.length > 0) seen.open++;
      if (state.pending.length > 0) seen.pending++;
      if (state.nights.length > 0) seen.nights++;
      if (state.hours !== undefined) seen.hours++;
      if (Object.keys(state.runs).length > 0) seen.runs++;
    };
    compare();
    let t = start;
    for (let i = 0; i < 4000; i++) {
      // Every 15 minutes, with an hour's gap now and then and a stuck meter for a while.
      t += i % 500 === 499 ? 3_600_000 : 900_000;
      const hour = new Date(t).getUTCHours();
      const stuck = i >= 1200 && i < 1260;
      const flow = stuck
        ? 7
        : 5 + 4 * Math.sin((hour / 24) * 2 * Math.PI) + (i % 7) / 10 + (i > 3000 ? 3 : 0);
      // A pressure drop below the 1.5 bar floor: pending, then open, then closed.
      const pressure = i >= 2000 && i < 2012 ? 1 : 4 + (i % 5) / 50;
      detector.observe({
        node_id: 'N1',
        timestamp: t,
        flow_rate: flow,
        ...(i % 9 !== 0 && { pressure }),
        ...(i === 10 && { node_type: 'distribution' }),
      });
      if (i % 3 === 0 || (i >= 1995 && i < 2030)) compare();
      if (i === 3500) {
        // Silence: the clock opens `offline`.
        detector.tick(t + 6 * 3_600_000);
        compare();
      }
    }
    expect(compared).toBeGreaterThan(1300);
    // The series went through every part of the state.
    for (const [part, steps] of Object.entries(seen)) expect(steps, part).toBeGreaterThan(0);
  });
});
