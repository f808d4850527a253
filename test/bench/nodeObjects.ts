/**
 * How many objects of V8's heap one node's live state is: what a major
 * collection marks, and at 100,000 nodes what it costs. N nodes each fed
 * `readings` readings a minute apart (flow, pressure and metadata) through
 * NodeWindows and NodeDetector; a heap snapshot before and after, objects
 * counted by kind, the difference divided by N.
 *
 *   node test/bench/nodeObjects.ts [nodes=2000] [readings=60]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { feedNodes } from './lib/nodeStates.ts';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Objects in the heap by kind: a plain object or an instance by its constructor, other kinds by type. */
function objectsByKind(dir: string, name: string): Map<string, number> {
  const file = writeHeapSnapshot(join(dir, name));
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const type = fields.indexOf('type');
  const label = fields.indexOf('name');
  const counts = new Map<string, number>();
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const kind = types[snapshot.nodes[i + type] as number] as string;
    const key = kind === 'object' ? (snapshot.strings[snapshot.nodes[i + label] as number] as string) : kind;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

const nodes = Number(process.argv[2] ?? 2000);
const readings = Number(process.argv[3] ?? 60);
const now = Date.UTC(2026, 10, 20, 12, 0, 0);
const dir = mkdtempSync(join(tmpdir(), 'node-objects-'));
try {
  const before = objectsByKind(dir, 'before.heapsnapshot');
  const held = feedNodes({ nodes, readings, stepMs: 60_000, now });
  const after = objectsByKind(dir, 'after.heapsnapshot');
  const perNode = [...after]
    .map(([kind, count]) => [kind, (count - (before.get(kind) ?? 0)) / nodes] as const)
    .filter(([, count]) => count >= 0.5)
    .sort((a, b) => b[1] - a[1]);
  const total = perNode.reduce((sum, [, count]) => sum + count, 0);
  console.log(`nodes: ${held.windows.length}, ${readings} readings each: ${total.toFixed(1)} objects a node`);
  for (const [kind, count] of perNode) console.log(`  ${count.toFixed(1).padStart(5)}  ${kind}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
