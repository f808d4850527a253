/**
 * The aggregator's pure core alone: CPU per reading of the windows
 * (NodeWindows.add) and of the detectors (NodeDetector.observe) at N nodes,
 * no I/O. Readings come node after node, `group` readings of a node at a
 * time: 1 is stream order with every reading a different node; 5 is what
 * the aggregator's node-by-node application sees in a slice of 50,000
 * readings over 10,000 nodes (services/aggregator/src/readingsByNode.ts).
 * Best of four passes after two of warm-up.
 *
 *   node test/bench/coreApply.ts [nodes=10000] [readings per node per pass=50] [group=1]
 */
import { DEFAULT_ANOMALY_SETTINGS, NodeDetector, NodeWindows, type Reading } from '@streamgauge/core';
import { seriesReading } from './lib/readings.ts';

const nodes = Number(process.argv[2] ?? 10_000);
const perPass = Number(process.argv[3] ?? 50);
const group = Number(process.argv[4] ?? 1);
const start = Date.UTC(2026, 11, 1, 12);
const STEP = 10_000;

const windows: NodeWindows[] = [];
const detectors: NodeDetector[] = [];
for (let n = 0; n < nodes; n++) {
  windows.push(new NodeWindows(`N${n}`, 6 * 60_000));
  detectors.push(new NodeDetector(`N${n}`, DEFAULT_ANOMALY_SETTINGS));
}

function reading(n: number, i: number): Reading {
  return seriesReading(n, i, start, STEP);
}

const cpu = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};
let first = 0;
const best = { windows: Number.POSITIVE_INFINITY, detectors: Number.POSITIVE_INFINITY };
for (let pass = 0; pass < 6; pass++) {
  const order: number[] = [];
  const readings: Reading[] = [];
  for (let i = first; i < first + perPass; i += group) {
    for (let n = 0; n < nodes; n++) {
      for (let j = i; j < Math.min(i + group, first + perPass); j++) {
        order.push(n);
        readings.push(reading(n, j));
      }
    }
  }
  first += perPass;
  let at = cpu();
  for (let k = 0; k < readings.length; k++) {
    const r = readings[k] as Reading;
    (windows[order[k] as number] as NodeWindows).add(r, r.timestamp);
  }
  for (const w of windows) for (const ring of w.rings) ring.clearChanges();
  const windowsCpu = cpu() - at;
  at = cpu();
  for (let k = 0; k < readings.length; k++)
    (detectors[order[k] as number] as NodeDetector).observe(readings[k] as Reading);
  const detectorsCpu = cpu() - at;
  if (pass >= 2) {
    best.windows = Math.min(best.windows, windowsCpu / readings.length);
    best.detectors = Math.min(best.detectors, detectorsCpu / readings.length);
  }
}
console.log(
  `${nodes} nodes, ${group} reading(s) of a node at a time: windows ${best.windows.toFixed(2)} µs a reading, detectors ${best.detectors.toFixed(2)} µs (CPU, best of 4 passes)`,
);
