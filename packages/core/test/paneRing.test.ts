import { describe, expect, it } from 'vitest';
import {
  ByteArena,
  decodePanes,
  encodePanes,
  NodeWindows,
  PANE,
  type PaneRing,
  type Reading,
  RINGS,
  STAT_AT,
  seededRandom,
} from '../src/index.ts';

const MINUTE = 60_000;
const DAY = 86_400_000;
const now = Date.UTC(2026, 11, 1, 12, 34, 56);

function reading(rand: () => number, timestamp: number): Reading {
  const r: Reading = { node_id: 'N', timestamp };
  if (rand() < 0.8) r.flow_rate = rand() < 0.2 ? 0 : rand() * 50;
  if (rand() < 0.7) r.pressure = 2 + rand() * 3;
  if (rand() < 0.4) r.temperature = 10 + rand() * 10;
  if (rand() < 0.3) r.volume = 1000 + rand() * 100;
  if (r.flow_rate === undefined && r.pressure === undefined) r.flow_rate = 1;
  return r;
}

describe('pane rings', () => {
  it('cost what they hold: ten readings take a few slots per ring, thirty days the full rings', () => {
    const rand = seededRandom(3);
    const small = new NodeWindows('N', 6 * MINUTE);
    for (let i = 0; i < 10; i++) small.add(reading(rand, now - i * 10_000), now);
    expect(small.paneBytes).toBeLessThan(4 * 1024);
    const full = new NodeWindows('N', 6 * MINUTE);
    for (let t = now - 30 * DAY; t <= now; t += MINUTE) full.add(reading(rand, t), now);
    RINGS.forEach(({ history }, r) => {
      const ring = full.rings[r];
      expect(ring?.panes().length, `ring ${r}`).toBe(history + 1);
      expect(ring?.capacity).toBeGreaterThanOrEqual(history + 1);
    });
    // The pane arrays of a full node: well under the 48 KB a node may cost.
    expect(full.paneBytes).toBeLessThan(36 * 1024);
  });

  it('keep every pane in reach when they grow under readings in any order', () => {
    const rand = seededRandom(11);
    const times = Array.from({ length: 4000 }, () => now - Math.floor(rand() * 30 * DAY));
    const grown = new NodeWindows('N', 6 * MINUTE);
    const sorted = new NodeWindows('N', 6 * MINUTE);
    const readings = times.map((t) => reading(rand, t));
    for (const r of readings) grown.add(r, now);
    for (const r of [...readings].sort((a, b) => a.timestamp - b.timestamp)) sorted.add(r, now);
    grown.rings.forEach((ring, r) => {
      const other = sorted.rings[r];
      expect(ring.panes()).toEqual(other?.panes());
      for (const pane of ring.panes()) {
        expect(ring.data[ring.offsetOf(pane)], `ring ${r} pane ${pane} count`).toBe(
          other?.data[other.offsetOf(pane)],
        );
      }
    });
  });

  it('tell the panes still in reach from those a slot keeps after they left every window', () => {
    const rand = seededRandom(8);
    const windows = new NodeWindows('N', 6 * MINUTE);
    // Three hours of readings, each as it happens: the clock moves with them.
    for (let t = now - 3 * 3_600_000; t <= now; t += MINUTE) windows.add(reading(rand, t), t);
    const minutes = windows.rings[0];
    if (minutes === undefined) throw new Error('ring missing');
    // The slots (at most 67: 60 behind, the current one, 6 ahead) hold more minutes than the 61 in reach.
    expect(minutes.panes().length).toBeGreaterThan(61);
    const live = minutes.livePanes(now);
    expect(live).toHaveLength(61);
    expect(live[0]).toBe(Math.floor(now / MINUTE) - 60);
  });

  it('reuse the slot of a pane that left every window instead of growing, as the clock moves on', () => {
    const windows = new NodeWindows('N', 6 * MINUTE);
    const start = now - DAY;
    const flows: { t: number; flow: number }[] = [];
    for (let t = start, i = 0; t <= now; t += MINUTE, i++) {
      flows.push({ t, flow: 5 + (i % 13) });
      windows.add({ node_id: 'N', timestamp: t, flow_rate: 5 + (i % 13) }, t + 2_000);
    }
    const minutes = windows.rings[0] as PaneRing;
    // 61 minutes in reach fit 64 slots; growing to the 67 the reach allows
    // (60 behind, the current one, 6 ahead) cost 0.4 KB a node for nothing.
    expect(minutes.capacity).toBe(64);
    const hour = windows.evaluate('1h', now);
    const from = hour.bounds.start;
    const inHour = flows.filter((r) => r.t >= from && r.t <= now);
    expect(inHour).toHaveLength(61);
    expect(hour.pane[PANE.count]).toBe(inHour.length);
    expect(hour.pane[STAT_AT.flow.min as number]).toBe(Math.min(...inHour.map((r) => r.flow)));
    expect(hour.pane[STAT_AT.flow.mean as number]).toBeCloseTo(
      inHour.reduce((a, r) => a + r.flow, 0) / inHour.length,
      12,
    );
    // A reading six minutes ahead lands on a slot still in reach: the ring grows rather than lose it.
    windows.add({ node_id: 'N', timestamp: now + 5 * MINUTE, flow_rate: 1 }, now);
    expect(minutes.capacity).toBe(67);
    expect(windows.evaluate('1h', now).pane[PANE.count]).toBe(inHour.length);
  });

  it('persist bit for bit: every ring decodes to the panes it encoded', () => {
    const rand = seededRandom(5);
    const windows = new NodeWindows('N', 6 * MINUTE);
    for (let i = 0; i < 3000; i++) windows.add(reading(rand, now - Math.floor(rand() * 30 * DAY)), now);
    const restored = new NodeWindows('N', 6 * MINUTE);
    windows.rings.forEach((ring, r) => {
      const target = restored.rings[r];
      if (target === undefined) throw new Error('ring missing');
      const held = ring.panes();
      expect(decodePanes(target, encodePanes(ring, held))).toEqual(held);
      for (const pane of held) {
        const a = ring.data.subarray(ring.offsetOf(pane), ring.offsetOf(pane) + ring.width);
        const b = target.data.subarray(target.offsetOf(pane), target.offsetOf(pane) + target.width);
        expect([...b]).toEqual([...a]);
      }
    });
    for (const range of ['1h', '24h', '30d'] as const) {
      expect([...restored.evaluate(range, now).pane]).toEqual([...windows.evaluate(range, now).pane]);
    }
  });

  it('encodes into a shared arena exactly as alone, and what it handed out stays intact as chunks fill', () => {
    const rand = seededRandom(6);
    const windows = new NodeWindows('N', 6 * MINUTE);
    for (let i = 0; i < 3000; i++) windows.add(reading(rand, now - Math.floor(rand() * 30 * DAY)), now);
    // A chunk smaller than one ring's encoding: every kind of overflow happens.
    const arena = new ByteArena(256);
    const shared = windows.rings.flatMap((ring) => [
      encodePanes(ring, ring.panes(), arena),
      encodePanes(ring, ring.panes().slice(-1), arena),
      encodePanes(ring, [], arena),
    ]);
    const alone = windows.rings.flatMap((ring) => [
      encodePanes(ring, ring.panes()),
      encodePanes(ring, ring.panes().slice(-1)),
      encodePanes(ring, []),
    ]);
    expect(shared.map((b) => [...b])).toEqual(alone.map((b) => [...b]));
  });

  it('leave out what follows from the rest, and restore it bit for bit', () => {
    const windows = new NodeWindows('N', 0);
    const [minute, , , , , series] = windows.rings as PaneRing[];
    const start = Math.floor(now / 3_600_000) * 3_600_000;
    // One reading a minute for an hour, every measurement every time; the
    // last minute's reading has a flow of -0 and one minute two readings.
    for (let i = 0; i < 60; i++) {
      const flow = i === 59 ? -0 : i === 58 ? 0 : 10 + i;
      windows.add(
        {
          node_id: 'N',
          timestamp: start + i * MINUTE,
          flow_rate: flow,
          pressure: 3,
          temperature: 9.5,
          volume: 100 + i,
        },
        start + 60 * MINUTE,
      );
    }
    windows.add(
      { node_id: 'N', timestamp: start + 30 * MINUTE + 1, flow_rate: 7, pressure: 3.5 },
      start + 60 * MINUTE,
    );
    // An event time with a fraction of a millisecond: the newest goes whole (f64), not as an offset.
    windows.add({ node_id: 'N', timestamp: start + 45 * MINUTE + 0.25, pressure: 2 }, start + 60 * MINUTE);
    // A pane alone: the list's marker, a run of one (its number and length), then the pane.
    const sizes = (ring: PaneRing) => ring.panes().map((pane) => encodePanes(ring, [pane]).length - 4 - 6);
    const minutes = sizes(minute as PaneRing);
    // A single reading of four measurements: a mask, the time in the pane and four values.
    expect(minutes.filter((n) => n === 1 + 4 + 4 * 8)).toHaveLength(57);
    // Two readings, one without temperature or volume: counts written; -0: written in full.
    expect(minutes.filter((n) => n > 37)).toHaveLength(3);
    // The hour: 62 readings, each with pressure, not all with flow: its counts are written.
    expect(sizes(series as PaneRing)).toEqual([12 + 16]);
    // Consecutive panes share a run: the hour's sixty minutes take one number.
    expect(encodePanes(minute as PaneRing, (minute as PaneRing).panes()).length).toBe(
      4 + 6 + minutes.reduce((a, b) => a + b, 0),
    );

    const restored = new NodeWindows('N', 0);
    windows.rings.forEach((ring, r) => {
      const target = restored.rings[r] as PaneRing;
      decodePanes(target, encodePanes(ring, ring.panes()));
      for (const pane of ring.panes()) {
        const a = [...ring.data.subarray(ring.offsetOf(pane), ring.offsetOf(pane) + ring.width)];
        const b = [...target.data.subarray(target.offsetOf(pane), target.offsetOf(pane) + target.width)];
        // Object.is element by element: -0 must stay -0.
        expect(b.every((x, i) => Object.is(x, a[i]))).toBe(true);
      }
    });
  });

  it('hand out summaries with panes of their own: one stays as it was while thousands more are evaluated', () => {
    const rand = seededRandom(7);
    const a = new NodeWindows('A', MINUTE);
    const b = new NodeWindows('B', MINUTE);
    for (let i = 0; i < 200; i++) {
      a.add(reading(rand, now - i * MINUTE), now);
      b.add(reading(rand, now - i * 7 * MINUTE), now);
    }
    const first = a.evaluate('1h', now);
    const kept = Array.from(first.pane);
    expect(kept[0]).toBeGreaterThan(0);
    for (let i = 0; i < 3_000; i++) b.evaluate(i % 2 === 0 ? '24h' : '1h', now);
    expect(Array.from(first.pane)).toEqual(kept);
    expect(Array.from(a.evaluate('1h', now).pane)).toEqual(kept);
  });

  it('read panes written before counts were implied (every count written)', () => {
    // Format 2's layout: mask, count, flowing, newest, then flow's n, mean, m2, min, max.
    const bytes = new DataView(new ArrayBuffer(4 + 17 + 36));
    bytes.setInt32(0, 12, true);
    bytes.setUint8(4, 1);
    bytes.setUint32(5, 2, true);
    bytes.setUint32(9, 1, true);
    bytes.setFloat64(13, 720_100, true);
    bytes.setUint32(21, 2, true);
    [5, 50, 0, 10].forEach((x, i) => {
      bytes.setFloat64(25 + i * 8, x, true);
    });
    const ring = new NodeWindows('N', 0).rings[0] as PaneRing;
    expect(decodePanes(ring, new Uint8Array(bytes.buffer))).toEqual([12]);
    const at = ring.offsetOf(12);
    expect([...ring.data.subarray(at, at + 8)]).toEqual([2, 1, 720_100, 2, 5, 50, 0, 10]);
  });
});
