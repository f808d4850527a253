/**
 * The DuckDB warehouse's insert alone: `batches` writes of `rows` rows each
 * (10,000 nodes, one reading each per second) into a fresh file, the CPU of
 * each write (process.cpuUsage: DuckDB's threads included) per row.
 * Prints the median and the first and last five.
 * Run: node test/bench/warehouseInsert.ts [batches=40] [rows=10000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckdbWarehouse, rowOf } from '@streamgauge/warehouse';
import { ReadingSource } from './lib/readings.ts';

const dir = mkdtempSync(join(tmpdir(), 'streamgauge-warehouse-insert-'));
const warehouse = await DuckdbWarehouse.open(join(dir, 'warehouse.duckdb'));
const source = new ReadingSource({ nodes: 10_000 });
const batches = Number(process.argv[2] ?? 40);
const rowsPerWrite = Number(process.argv[3] ?? 10_000);
let entry = 1_700_000_000_000;
const cpuPerRow: number[] = [];
const wallMs: number[] = [];
for (let b = 0; b < batches; b++) {
  const rows = source
    .nextReadings(rowsPerWrite)
    .map((r, i) => rowOf(r, { entry: `${entry + Math.floor(i / 1000)}-0`, source: 'gw' }));
  entry += 100;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await warehouse.insert(rows);
  const used = process.cpuUsage(cpu);
  wallMs.push(performance.now() - started);
  cpuPerRow.push((used.user + used.system) / rowsPerWrite);
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? Number.NaN;
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
const shown = (values: number[]) => values.map((x) => x.toFixed(1)).join(', ');
console.log(
  `${batches} writes of ${rowsPerWrite} rows: CPU per row median ${median(cpuPerRow).toFixed(1)} µs, mean ${mean(cpuPerRow).toFixed(1)} µs ` +
    `(first five ${shown(cpuPerRow.slice(0, 5))}; last five ${shown(cpuPerRow.slice(-5))}); wall per write median ${median(wallMs).toFixed(0)} ms`,
);
await warehouse.close();
rmSync(dir, { recursive: true, force: true });
