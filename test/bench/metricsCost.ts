/**
 * What a metrics round costs per node, the pure part: each range's window
 * evaluated, its metrics hash, and the 7-day series as JSON, for nodes that
 * hold 30 days at one reading a minute. A light round (every second) writes
 * a changed node's 1-hour metrics; a full round (every 30 s) every range and
 * the series. At one reading per 10 s a node is in a light round after
 * each reading and in a full round every third, so these are per-reading
 * costs at the deployment's rate. No I/O. Best of five passes.
 *
 *   node test/bench/metricsCost.ts [nodes=2000]
 */
import { metricsHash, type NodeWindows, nodeSeriesJson, RANGES } from '@streamgauge/core';
import { filledWindows } from './lib/readings.ts';

const nodes = Number(process.argv[2] ?? 2000);
const start = Date.UTC(2026, 10, 1);
const STEP = 60_000;
const PER_NODE = (30 * 24 * 3_600_000) / STEP;

const { windows: all, now } = filledWindows(nodes, PER_NODE, start, STEP);
const seriesJson = (windows: NodeWindows) => nodeSeriesJson(windows, now);

function microsPerNode(work: (windows: NodeWindows) => unknown): number {
  let best = Number.POSITIVE_INFINITY;
  let sink = 0;
  for (let pass = 0; pass < 5; pass++) {
    const started = performance.now();
    for (const windows of all) sink += work(windows) === undefined ? 0 : 1;
    best = Math.min(best, ((performance.now() - started) * 1000) / all.length);
  }
  if (sink < 0) console.log(sink);
  return Number(best.toFixed(2));
}

const figures: Record<string, number> = {};
for (const range of RANGES) figures[`evaluate ${range}`] = microsPerNode((w) => w.evaluate(range, now));
figures['light round: 1h metrics as JSON'] = microsPerNode((w) =>
  JSON.stringify(metricsHash(w.evaluate('1h', now), now)),
);
figures['7d series as JSON'] = microsPerNode(seriesJson);
figures['full round: every range and the series as JSON'] = microsPerNode((w) => {
  for (const range of RANGES) JSON.stringify(metricsHash(w.evaluate(range, now), now));
  return seriesJson(w);
});
console.log({ nodes, microsPerNode: figures });
