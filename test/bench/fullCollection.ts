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
import { feedNodes } from './lib/nodeStates.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const nodes = Number(process.argv[2] ?? 100_000);
const readings = Number(process.argv[3] ?? 8);
const now = Date.UTC(2026, 10, 20, 12, 0, 0);
const held = feedNodes({ nodes, readings, stepMs: 10_000, now, temperature: true });
const times: number[] = [];
for (let i = 0; i < 7; i++) {
  const start = performance.now();
  gc();
  times.push(performance.now() - start);
}
times.sort((a, b) => a - b);
const heapMb = process.memoryUsage().heapUsed / 1e6;
console.log(
  `${held.windows.length} nodes × ${readings} readings: full collection median ${times[3]?.toFixed(1)} ms, ` +
    `fastest ${times[0]?.toFixed(1)} ms; heap used ${heapMb.toFixed(0)} MB`,
);
