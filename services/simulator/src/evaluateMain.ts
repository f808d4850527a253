/**
 * `pnpm evaluate:anomalies [--nodes N] [--days D] [--seed S]`: generates
 * labelled data (labelled.ts), runs the detectors with the default
 * settings, and prints precision, recall and detection delay per injected
 * kind, and the false positives on the same network with nothing injected.
 */
import { DEFAULT_ANOMALY_SETTINGS } from '@streamgauge/core';
import { evaluate } from './evaluate.ts';
import { INJECTED_KINDS, type InjectedKind, labelledReadings } from './labelled.ts';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
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
