import { DEFAULT_ANOMALY_SETTINGS, NodeDetector, NodeWindows, type Reading } from '@streamgauge/core';

/** Nodes' live state, as the aggregator keeps it: the n-th node's windows and detector. */
export interface NodeStates {
  readonly windows: NodeWindows[];
  readonly detectors: NodeDetector[];
}

/**
 * `nodes` nodes' live state, each fed `readings` readings `stepMs` apart
 * up to `now` (flow, pressure, with `temperature` that too, and metadata)
 * through NodeWindows and NodeDetector, as the aggregator feeds them: what
 * the memory benches measure the heap with (in two arrays: a record a node
 * would count as one of its objects).
 */
export function feedNodes(options: {
  readonly nodes: number;
  readonly readings: number;
  readonly stepMs: number;
  readonly now: number;
  readonly temperature?: boolean;
}): NodeStates {
  const { nodes, readings, stepMs, now } = options;
  const held: NodeStates = { windows: [], detectors: [] };
  for (let n = 0; n < nodes; n++) {
    const id = `node-${n}`;
    const windows = new NodeWindows(id, 360_000);
    const detector = new NodeDetector(id, DEFAULT_ANOMALY_SETTINGS);
    for (let i = 0; i < readings; i++) {
      const reading: Reading = {
        node_id: id,
        timestamp: now - (readings - i) * stepMs,
        flow_rate: 10 + Math.sin(options.temperature ? i + n : i),
        pressure: 3 + Math.cos(i) / 10,
        ...(options.temperature && { temperature: 12 + (n % 7) / 10 }),
        node_name: `Node ${n}`,
        district_id: options.temperature ? `D${n % 40}` : 'D1',
        node_type: 'flow',
      };
      windows.add(reading, now);
      detector.observe(reading);
    }
    held.windows.push(windows);
    held.detectors.push(detector);
  }
  return held;
}
