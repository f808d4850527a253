import { describe, expect, it } from 'vitest';
import {
  ByteArena,
  decodeNodeHead,
  encodeNodeHead,
  NO_PANE,
  NodeWindows,
  type Reading,
  seededRandom,
} from '../src/index.ts';

const MINUTE = 60_000;
const now = Date.UTC(2026, 11, 1, 12, 34, 56);

/** Each ring's newest pane becomes what the store last persisted, as after a commit. */
function persisted(windows: NodeWindows): NodeWindows {
  for (const ring of windows.rings) ring.persistedNewest = ring.panes().at(-1) ?? NO_PANE;
  return windows;
}

function newestOf(windows: NodeWindows): { pane: number; data: number[] }[] {
  return windows.rings.map((ring) => {
    const pane = ring.persistedNewest;
    const at = ring.offsetOf(pane);
    return { pane, data: at < 0 ? [] : [...ring.data.subarray(at, at + ring.width)] };
  });
}

describe('a node head', () => {
  it('restores the latest values, the metadata and every ring’s newest pane bit for bit', () => {
    const rand = seededRandom(11);
    const windows = new NodeWindows('N', 6 * MINUTE);
    for (let i = 0; i < 500; i++) {
      const r: Reading = {
        node_id: 'N',
        timestamp: now - Math.floor(rand() * 3 * 86_400_000),
        flow_rate: rand() * 40,
      };
      if (rand() < 0.5) r.pressure = 2 + rand();
      if (rand() < 0.2) r.temperature = 11.5;
      windows.add(r, now);
    }
    // Values that are not ASCII, an event time per field, a measurement absent from the latest.
    windows.add(
      {
        node_id: 'N',
        timestamp: now,
        pressure: 0.1 + 0.2,
        node_name: 'Pompe n° 7 – Zürich',
        district_id: 'D7',
      },
      now,
    );
    windows.add({ node_id: 'N', timestamp: now - 5000, node_type: 'flow' }, now);
    persisted(windows);

    const restored = new NodeWindows('N', 6 * MINUTE);
    decodeNodeHead(restored, encodeNodeHead(windows, new ByteArena(64)));
    expect(restored.latest).toEqual({ timestamp: now, pressure: 0.1 + 0.2 });
    expect(restored.metadata).toEqual({
      node_name: { value: 'Pompe n° 7 – Zürich', timestamp: now },
      district_id: { value: 'D7', timestamp: now },
      node_type: { value: 'flow', timestamp: now - 5000 },
    });
    expect(newestOf(restored)).toEqual(newestOf(windows));
  });

  it('of a node with nothing yet is empty, and restores as nothing', () => {
    const restored = new NodeWindows('N', 0);
    restored.metadata = { node_name: { value: 'stale', timestamp: 1 } };
    decodeNodeHead(restored, encodeNodeHead(new NodeWindows('N', 0), new ByteArena(64)));
    expect(restored.latest).toBeUndefined();
    expect(restored.metadata).toEqual({});
    expect(
      restored.rings.every((ring) => ring.panes().length === 0 && ring.persistedNewest === NO_PANE),
    ).toBe(true);
  });

  it('refuses a format this build does not know, rather than misreading it', () => {
    const head = encodeNodeHead(persisted(new NodeWindows('N', 0)), new ByteArena(64));
    head[0] = 9;
    expect(() => decodeNodeHead(new NodeWindows('N', 0), head)).toThrow(
      'a node head of format 9 (this build reads 1)',
    );
  });
});
