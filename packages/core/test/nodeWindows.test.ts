import { describe, expect, it } from 'vitest';
import { latestHash, metadataHash, NodeWindows, type Reading } from '../src/index.ts';

const now = Date.UTC(2026, 11, 5, 12, 0, 0);
const MINUTE = 60_000;

function reading(minutesAgo: number, fields: Partial<Reading>): Reading {
  return { node_id: 'N', timestamp: now - minutesAgo * MINUTE, ...fields };
}

describe("a node's latest values and metadata", () => {
  it('are those of the newest reading, field by field, whatever order the readings come in', () => {
    const windows = new NodeWindows('N', 6 * MINUTE);
    windows.add(reading(10, { flow_rate: 4, pressure: 3, node_name: 'Main St', district_id: 'D1' }), now);
    // Newer, without pressure: the latest values are this reading's, so no pressure.
    windows.add(reading(5, { flow_rate: 6, temperature: 12 }), now);
    // Older: changes neither the values nor a metadata field carried by a newer reading.
    windows.latestChanged = false;
    windows.metadataChanged = false;
    windows.add(reading(8, { flow_rate: 1, pressure: 9, node_name: 'Old name', node_type: 'flow' }), now);
    expect(latestHash(windows.latest ?? { timestamp: 0 })).toEqual({
      timestamp: new Date(now - 5 * MINUTE).toISOString(),
      flow_rate: '6',
      pressure: '0',
      temperature: '12',
      volume: '0',
    });
    expect(windows.latest?.pressure).toBeUndefined();
    // node_name was last carried 10 minutes ago: the reading of 8 minutes ago renames the node; node_type is new.
    expect(metadataHash('N', windows.metadata)).toEqual({
      node_id: 'N',
      node_name: 'Old name',
      node_type: 'flow',
      district_id: 'D1',
    });
    expect(windows.metadataChanged).toBe(true);
    expect(windows.latestChanged).toBe(true);

    // The same metadata again at a newer time: only its event time moves, which the state persists.
    windows.latestChanged = false;
    windows.metadataChanged = false;
    windows.add(reading(1, { flow_rate: 6, node_name: 'Old name' }), now);
    expect(windows.metadataChanged).toBe(false);
    expect(windows.latestChanged).toBe(true);
    expect(windows.metadata.node_name).toEqual({ value: 'Old name', timestamp: now - MINUTE });
  });

  it('are its own: values set from another node are copied, and its next readings leave that node as it was', () => {
    const live = new NodeWindows('N', 6 * MINUTE);
    live.add(reading(10, { flow_rate: 4, pressure: 3, node_name: 'Main St' }), now);
    // As a reconcile does: the warehouse's truth starts from the live node's latest values and metadata.
    const truth = new NodeWindows('N', 6 * MINUTE);
    truth.latest = live.latest;
    truth.metadata = live.metadata;
    live.add(reading(2, { flow_rate: 7, node_name: 'Renamed' }), now);
    expect(truth.latest).toEqual({ timestamp: now - 10 * MINUTE, flow_rate: 4, pressure: 3 });
    expect(truth.metadata).toEqual({ node_name: { value: 'Main St', timestamp: now - 10 * MINUTE } });
    // And the other way round: the truth's next readings do not reach the live node.
    live.latest = truth.latest;
    live.metadata = truth.metadata;
    truth.add(reading(1, { flow_rate: 9, node_name: 'Truth' }), now);
    expect(live.latest).toEqual({ timestamp: now - 10 * MINUTE, flow_rate: 4, pressure: 3 });
    expect(live.metadata.node_name?.value).toBe('Main St');
    live.latest = undefined;
    expect(live.latest).toBeUndefined();
  });
});
