/**
 * What one node's live state costs in the aggregator's memory: N nodes each
 * fed `DAYS` days of one reading every `STEP_SECONDS` (flow, pressure,
 * temperature, volume), through NodeWindows and NodeDetector as the
 * aggregator feeds them, the clock moving with the readings; heap before
 * and after, with a forced GC.
 * Also the state's persisted size (core's pane codec and the detector's
 * state with its scores, as aggregateStore writes them) and a node of ten readings.
 *
 *   node --expose-gc test/bench/nodeMemory.ts [nodes=200] [days=30] [stepSeconds=60]
 */
import { setFlagsFromString } from 'node:v8';
import {
  DEFAULT_ANOMALY_SETTINGS,
  encodeDetectorState,
  encodePanes,
  NodeDetector,
  NodeWindows,
  RANGES,
  type Reading,
} from '@streamgauge/core';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
// V8 drops the bytecode of functions unused for a few collections: fewer
// collections during the feed (less garbage per reading) left ~4 MB of
// start-up code that more of them had dropped, 2.2 KB "a node" at 2,000
// nodes that no node held. The code stays; the figure is the nodes' own.
setFlagsFromString('--no-flush-bytecode');

const nodes = Number(process.argv[2] ?? 200);
const days = Number(process.argv[3] ?? 30);
const step = Number(process.argv[4] ?? 60) * 1000;
const now = Date.UTC(2026, 11, 1, 12, 0, 0);
const AHEAD = 6 * 60_000;
/** The aggregator applies a reading a little after its event time. */
const APPLIED_AFTER = 2_000;

function reading(id: string, t: number, i: number): Reading {
  return {
    node_id: id,
    timestamp: t,
    flow_rate: 10 + 5 * Math.sin(i / 300) + (i % 7) * 0.01,
    pressure: 3 + Math.cos(i / 500) * 0.5,
    temperature: 12 + (i % 11) * 0.1,
    volume: 1000 + i * 0.01,
  };
}

interface Live {
  windows: NodeWindows;
  detector: NodeDetector;
}

function feed(count: number, readings: number, span: number): Live[] {
  const live: Live[] = [];
  for (let n = 0; n < count; n++) {
    const id = `N${String(n).padStart(6, '0')}`;
    const windows = new NodeWindows(id, AHEAD);
    const detector = new NodeDetector(id, DEFAULT_ANOMALY_SETTINGS);
    for (let i = 0; i < readings; i++) {
      const r = reading(id, now - span + i * (span / readings), i);
      windows.add(r, Math.min(now, r.timestamp + APPLIED_AFTER));
      detector.observe(r);
    }
    for (const ring of windows.rings) ring.clearChanges();
    // As the aggregator does when it writes the node's metrics: each range's closed panes are cached.
    for (const range of RANGES) windows.evaluate(range, now);
    live.push({ windows, detector });
  }
  return live;
}

/**
 * Heap used plus array buffers once garbage is gone: array buffers' memory
 * is released by the collector's sweeping after it returns, so one gc() left
 * a varying share of the feed's discarded buffers counted (±3 KB a node).
 */
async function settledBytes(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

async function heapPerNode(
  count: number,
  readings: number,
  span: number,
): Promise<{ live: Live[]; bytes: number }> {
  const before = await settledBytes();
  const live = feed(count, readings, span);
  const after = await settledBytes();
  return { live, bytes: (after - before) / count };
}

function persistedBytes(node: Live): number {
  let bytes = 0;
  // What the store persists: the panes still in reach (a slot may keep one that left every window).
  for (const ring of node.windows.rings) bytes += encodePanes(ring, ring.livePanes(now)).byteLength;
  const state = node.detector.state();
  const { numbers, json } = encodeDetectorState(state);
  bytes += 4 + Buffer.byteLength(json) + numbers.length * 8;
  // The scores, persisted apart (fields score:<measurement>).
  for (const score of Object.values(state.scores)) bytes += score?.byteLength ?? 0;
  bytes += JSON.stringify(node.windows.latest).length + JSON.stringify(node.windows.metadata).length;
  return bytes;
}

const readings = Math.round((days * 86_400_000) / step);
// Every path compiled and optimised before the first measure: the code is not a node's.
feed(20, readings, days * 86_400_000);
const full = await heapPerNode(nodes, readings, days * 86_400_000);
const sample = full.live[0] as Live;
const small = await heapPerNode(nodes, 10, 10 * step);
const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
console.log(`nodes: ${nodes}; ${days} days × 1/${step / 1000}s = ${readings} readings each`);
console.log(`aggregator heap per node (windows + detector): ${kb(full.bytes)}`);
console.log(`  of which pane arrays: ${kb(sample.windows.paneBytes)}`);
console.log(
  `  panes in reach / slots per ring: ${sample.windows.rings.map((r) => `${r.livePanes(now).length}/${r.capacity}`).join(', ')}`,
);
console.log(`persisted state per node (pane codec + detector + latest/meta): ${kb(persistedBytes(sample))}`);
console.log(
  `a node of 10 readings: heap ${kb(small.bytes)}, persisted ${kb(persistedBytes(small.live[0] as Live))}`,
);
