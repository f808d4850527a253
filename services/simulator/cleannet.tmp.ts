import { DEFAULT_ANOMALY_SETTINGS, runDetectors } from '@streamgauge/core';
import { simulatorNetworkReadings } from './src/labelled.ts';

const days = Number(process.argv[2] ?? 2),
  interval = Number(process.argv[3] ?? 1000);
const r = simulatorNetworkReadings({
  nodes: 12,
  days,
  start: Date.UTC(2026, 9, 1),
  intervalMs: interval,
  seed: 1,
});
const t0 = performance.now();
const { events } = runDetectors(r, DEFAULT_ANOMALY_SETTINGS);
const opens = events.filter((e) => e.event === 'open');
const by: Record<string, number> = {};
for (const e of opens)
  by[`${e.anomaly.type}/${e.anomaly.severity}/${e.anomaly.node_id}`] =
    (by[`${e.anomaly.type}/${e.anomaly.severity}/${e.anomaly.node_id}`] ?? 0) + 1;
console.log(
  r.length,
  'readings',
  (((performance.now() - t0) * 1000) / r.length).toFixed(2),
  'µs/reading;',
  opens.length,
  'opens =',
  (opens.length / 12 / days).toFixed(3),
  '/node-day',
  by,
);
