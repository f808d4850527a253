/**
 * What a full garbage collection costs with N nodes' live state held: the
 * deployment's tail at 100,000 nodes is its major collections, whose
 * marking grows with the objects the nodes hold (`nodeObjects.ts` counts
 * them). N nodes each fed `readings` readings 10 s apart (flow, pressure,
 * temperature and metadata, as the deployment's shape sends them) through
 * NodeWindows and NodeDetector, then seven full collections timed; the
 * median and the fastest, and the heap they leave.
 *
 *   node test/bench/fullCollection.ts [nodes=100000] [readings=8]
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DEFAULT_ANOMALY_SETTINGS, NodeDetector, NodeWindows, type Reading } from '@streamgauge/core';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const nodes = Number(process.argv[2] ?? 100_000);
const readings = Number(process.argv[3] ?? 8);
const now = Date.UTC(2026, 10, 20, 12, 0, 0);
const held: { windows: NodeWindows; detector: NodeDetector }[] = [];
for (let n = 0; n < nodes; n++) {
  const id = `node-${n}`;
  const windows = new NodeWindows(id, 360_000);
  const detector = new NodeDetector(id, DEFAULT_ANOMALY_SETTINGS);
  for (let i = 0; i < readings; i++) {
    const reading: Reading = {
      node_id: id,
      timestamp: now - (readings - i) * 10_000,
      flow_rate: 10 + Math.sin(i + n),
      pressure: 3 + Math.cos(i) / 10,
      temperature: 12 + (n % 7) / 10,
      node_name: `Node ${n}`,
      district_id: `D${n % 40}`,
      node_type: 'flow',
    };
    windows.add(reading, now);
    detector.observe(reading);
  }
  held.push({ windows, detector });
}
const times: number[] = [];
for (let i = 0; i < 7; i++) {
  const start = performance.now();
  gc();
  times.push(performance.now() - start);
}
times.sort((a, b) => a - b);
const heapMb = process.memoryUsage().heapUsed / 1e6;
console.log(
  `${held.length} nodes × ${readings} readings: full collection median ${times[3]?.toFixed(1)} ms, ` +
    `fastest ${times[0]?.toFixed(1)} ms; heap used ${heapMb.toFixed(0)} MB`,
);
