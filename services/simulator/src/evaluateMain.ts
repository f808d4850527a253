/**
 * `pnpm evaluate:anomalies [--nodes N] [--days D] [--seed S] [--corpus DIR] [--out DIR]`:
 *
 * 1. water: generates labelled data (labelled.ts), runs the detectors with
 *    the default settings, and prints precision, recall and detection delay
 *    per injected kind, and the false positives on the same network with
 *    nothing injected;
 * 2. the live simulator's clean network (12 loggers, one reading a minute):
 *    alarms per node and day;
 * 3. a labelled corpus of real series in NAB's layout (default: the
 *    development split beside the project, ../shared/benchmarks/nab-dev):
 *    `streamgauge detect --as value` on every series, scored by the
 *    corpus's own scorer (standard and low-FP profiles).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ANOMALY_SETTINGS, runDetectors } from '@streamgauge/core';
import { defaultCorpus, scoreCorpus } from './corpus.ts';
import { evaluate } from './evaluate.ts';
import { INJECTED_KINDS, type InjectedKind, labelledReadings, simulatorNetworkReadings } from './labelled.ts';

const args = process.argv.slice(2);
const text = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const option = (name: string, fallback: number) => {
  const value = text(name);
  return value === undefined ? fallback : Number(value);
};
const nodes = option('nodes', 20);
const days = option('days', 30);
const seed = option('seed', 1);
const start = Date.UTC(2026, 9, 1);
const kinds = Object.keys(INJECTED_KINDS) as InjectedKind[];

const injected = evaluate(
  labelledReadings({ nodes, days, start, seed, inject: kinds }),
  DEFAULT_ANOMALY_SETTINGS,
  { nodes, days },
);
const clean = evaluate(
  labelledReadings({ nodes, days, start, seed: seed + 1000 }),
  DEFAULT_ANOMALY_SETTINGS,
  { nodes, days },
);

const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
console.log(`${nodes} nodes × ${days} days, one reading per 15 min, seed ${seed}, default settings\n`);
console.log(
  '| injected kind | expected type | events | detected | recall | precision | delay median | delay max |',
);
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const k of injected.kinds) {
  console.log(
    `| ${k.kind} | ${k.expected} | ${k.injected} | ${k.detected} | ${pct(k.recall)} | ${pct(k.precision)} | ${k.delayMedianMin.toFixed(0)} min | ${k.delayMaxMin.toFixed(0)} min |`,
  );
}
console.log(
  `\nwith injections: ${injected.opens} anomalies opened, ${injected.falsePositives} matching no injected event (${JSON.stringify(injected.falsePositiveTypes)})`,
);
console.log(
  `clean data: ${clean.opens} anomalies opened = ${clean.falsePositivesPerNodeDay.toFixed(3)} false positives per node and day (${JSON.stringify(clean.falsePositiveTypes)})`,
);

const networkDays = Math.min(days, 14);
const network = simulatorNetworkReadings({ nodes: 12, days: networkDays, start, intervalMs: 60_000, seed });
const networkOpens = runDetectors(network, DEFAULT_ANOMALY_SETTINGS).events.filter((e) => e.event === 'open');
const byType: Record<string, number> = {};
for (const { anomaly } of networkOpens) {
  const key = `${anomaly.type} (${anomaly.severity})`;
  byType[key] = (byType[key] ?? 0) + 1;
}
// The first two days are the time of day's learning (ValueScore): counted apart as well.
const learnt = networkOpens.filter(({ anomaly }) => anomaly.opened_at >= start + 2 * 86_400_000).length;
console.log(
  `\nthe simulator's clean network (12 loggers × ${networkDays} days, one reading a minute): ${networkOpens.length} anomalies opened = ${(networkOpens.length / (12 * networkDays)).toFixed(3)} per node and day ${JSON.stringify(byType)}; after the first two days ${learnt} = ${(learnt / (12 * (networkDays - 2))).toFixed(3)} per node and day`,
);

const corpus = text('corpus') ?? defaultCorpus();
if (corpus === undefined) {
  console.log(
    '\nlabelled corpus: skipped (no --corpus DIR and no ../shared/benchmarks/nab-dev beside the project)',
  );
} else {
  const out = text('out') ?? mkdtempSync(join(tmpdir(), 'streamgauge-corpus-'));
  console.log(`\nlabelled corpus ${corpus} (detect --as value, results in ${out}):`);
  for (const { line } of await scoreCorpus(corpus, out)) console.log(`  ${line}`);
}
