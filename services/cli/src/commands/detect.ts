import { closeSync, createReadStream, openSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import {
  checkReading,
  csvRecord,
  csvTimestamp,
  parseTimestamp,
  type Reading,
  runDetectors,
  type ScoredReading,
  scoreSeries,
  splitCsvLine,
} from '@streamgauge/core';
import type { Command } from 'commander';
import { configFromEnv } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';

const MEASURED = ['flow_rate', 'pressure'] as const;
type Measured = (typeof MEASURED)[number];
const AS = ['value', ...MEASURED] as const;
/** A history is judged as it was, whatever its age or the clock now. */
const ANY_TIME = { nowMs: Number.MAX_SAFE_INTEGER / 2, maxFutureMs: 0 };

interface Row {
  readonly line: number;
  readonly timestamp: string;
  readonly value: string;
  /** Index into the readings, or undefined for a row that is not a valid reading. */
  readonly reading?: number;
}

export function detectCommand(program: Command): void {
  program
    .command('detect')
    .description(
      'run the anomaly detectors over a CSV offline; prints timestamp,value,anomaly_score,anomaly_type per row',
    )
    .argument(
      '<file>',
      "a CSV with DATA_MODEL.md's columns (node_id, timestamp, ...) or two columns timestamp,value",
    )
    .option(
      '--as <what>',
      'what a two-column file measures: value (any series: the calibrated score only, no water rules), flow_rate or pressure (the score and the water rules)',
      'flow_rate',
    )
    .action(async (file: string, options: { as: string }) => {
      const config = configFromEnv();
      if (!(AS as readonly string[]).includes(options.as)) {
        throw new CommandError(
          EXIT.usage,
          `--as: expected value, flow_rate or pressure, got ${JSON.stringify(options.as)}`,
        );
      }
      const asValue = options.as === 'value';
      const as = (asValue ? 'flow_rate' : options.as) as Measured;
      try {
        closeSync(openSync(file, 'r'));
        if (!statSync(file).isFile()) throw new Error('not a file');
      } catch (error) {
        throw new CommandError(EXIT.usage, `cannot read ${file}: ${(error as Error).message}`);
      }
      const rows: Row[] = [];
      const readings: Reading[] = [];
      const points: { t: number; x: number }[] = [];
      const rejected: string[] = [];
      let header: string[] | undefined;
      let lineNumber = 0;
      for await (const text of createInterface({
        input: createReadStream(file),
        crlfDelay: Number.POSITIVE_INFINITY,
      })) {
        lineNumber++;
        if (text.trim() === '') continue;
        const fields = splitCsvLine(lineNumber === 1 ? text.replace(/^\uFEFF/, '') : text);
        if (header === undefined) {
          header = fields.map((f) => f.trim().toLowerCase());
          if (!header.includes('timestamp') || (!header.includes('node_id') && !header.includes('value'))) {
            throw new CommandError(
              EXIT.usage,
              `${file}: the header must be DATA_MODEL.md's columns (node_id, timestamp, ...) or timestamp,value; got ${header.join(',')}`,
            );
          }
          if (asValue && !(header.length === 2 && header.includes('value'))) {
            throw new CommandError(
              EXIT.usage,
              `${file}: --as value reads one series, the columns timestamp,value; got ${header.join(',')}`,
            );
          }
          continue;
        }
        const twoColumns = !header.includes('node_id');
        const cell = (name: string) => (fields[header?.indexOf(name) ?? -1] ?? '').trim();
        const timestamp = cell('timestamp');
        const value = twoColumns ? cell('value') : cell(as);
        if (asValue) {
          const problem = pointProblem(timestamp, value);
          if (typeof problem === 'string') {
            rejected.push(`line ${lineNumber}: ${problem}`);
            rows.push({ line: lineNumber, timestamp, value });
          } else {
            rows.push({ line: lineNumber, timestamp, value, reading: points.length });
            points.push(problem);
          }
          continue;
        }
        let raw: Record<string, unknown>;
        try {
          raw = twoColumns
            ? csvRecord(['node_id', 'timestamp', as], ['series', timestamp, value])
            : csvRecord(header, fields);
        } catch (error) {
          rejected.push(`line ${lineNumber}: ${(error as Error).message}`);
          rows.push({ line: lineNumber, timestamp, value });
          continue;
        }
        const checked = checkReading(raw, ANY_TIME);
        if (!checked.ok) {
          rejected.push(`line ${lineNumber}: ${checked.error}`);
          rows.push({ line: lineNumber, timestamp, value });
          continue;
        }
        rows.push({ line: lineNumber, timestamp, value, reading: readings.length });
        readings.push(checked.reading);
      }
      if (header === undefined) throw new CommandError(EXIT.usage, `${file} is empty`);
      const { settings } = config.anomalies;
      const scored: readonly ScoredReading[] = asValue
        ? scoreSeries(points, settings)
        : runDetectors(readings, settings).scored;
      const out: string[] = ['timestamp,value,anomaly_score,anomaly_type'];
      for (const row of rows) {
        const result = row.reading === undefined ? undefined : scored[row.reading];
        out.push(
          [
            csvField(row.timestamp),
            csvField(row.value),
            result ? round(result.score) : '',
            result?.type ?? '',
          ].join(','),
        );
      }
      process.stdout.write(`${out.join('\n')}\n`);
      if (rejected.length > 0) {
        process.stderr.write(`${rejected.length} rows are not valid readings (their score is empty):\n`);
        for (const line of rejected.slice(0, 20)) process.stderr.write(`  ${line}\n`);
      }
    });
}

/** A row of `--as value`: any finite number at a valid time. */
function pointProblem(timestamp: string, value: string): { t: number; x: number } | string {
  const time = parseTimestamp(csvTimestamp(timestamp));
  if (!time.ok) return `timestamp: ${time.error}`;
  const x = value === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(x)) return `value: expected a finite number, got ${JSON.stringify(value)}`;
  return { t: time.ms, x };
}

function csvField(value: string): string {
  return /[",\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function round(x: number): string {
  return String(Math.round(x * 1e4) / 1e4);
}
