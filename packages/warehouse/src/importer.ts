import { checkReading, csvRecord, splitCsvLine } from '@streamgauge/core';
import { rowOf, type WarehouseRow } from './table.ts';
import type { Warehouse } from './warehouse.ts';

export type ImportFormat = 'csv' | 'ndjson';

export interface ImportOptions {
  readonly format: ImportFormat;
  /** `source_file` of rows that do not name one (the file's name). */
  readonly source: string;
  /** Validation clock and allowance, as ingest's. */
  readonly nowMs: number;
  readonly maxFutureMs: number;
  /** Rows per warehouse write. */
  readonly batch?: number;
  /** Called after each write with the lines read so far. */
  readonly onProgress?: (progress: ImportSummary) => void;
}

export interface Rejection {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly error: string;
}

export interface ImportSummary {
  readonly lines: number;
  readonly imported: number;
  readonly duplicates: number;
  readonly rejected: number;
  /** Rejections by reason (the error without the value), most frequent first. */
  readonly reasons: readonly { readonly reason: string; readonly count: number }[];
  /** The first rejections, with their line numbers. */
  readonly examples: readonly Rejection[];
}

const EXAMPLES_KEPT = 20;
const REASONS_KEPT = 50;

/**
 * Loads historical readings into the warehouse: each line validated as
 * ingest validates a reading (a rejected line is reported with its line
 * number and reason, and loses nothing else), written in batches, one row
 * per `(node_id, timestamp)` (a reading already stored counts as a duplicate).
 * Blank lines are skipped; a CSV file starts with a header row.
 */
export async function importReadings(
  lines: AsyncIterable<string>,
  warehouse: Warehouse,
  options: ImportOptions,
): Promise<ImportSummary> {
  const size = options.batch ?? 10_000;
  const policy = { nowMs: options.nowMs, maxFutureMs: options.maxFutureMs };
  const reasons = new Map<string, number>();
  const examples: Rejection[] = [];
  let header: string[] | undefined;
  let lines_ = 0;
  let imported = 0;
  let duplicates = 0;
  let rejected = 0;
  let rows: WarehouseRow[] = [];

  const reject = (line: number, error: string) => {
    rejected++;
    // Grouped without the values: quoted text, times and numbers become
    // placeholders; past a limit, further reasons share one group.
    const reason = error
      .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
      .replace(/\d{4}-\d{2}-\d{2}T[\d:.]+Z/g, 'T')
      .replace(/(?<=^|\s)-?\d+(\.\d+)?(?=$|[\s,)])/g, 'N');
    const key = reasons.has(reason) || reasons.size < REASONS_KEPT ? reason : 'other reasons';
    reasons.set(key, (reasons.get(key) ?? 0) + 1);
    if (examples.length < EXAMPLES_KEPT) examples.push({ line, error });
  };
  const summary = (): ImportSummary => ({
    lines: lines_,
    imported,
    duplicates,
    rejected,
    reasons: [...reasons].sort((a, b) => b[1] - a[1]).map(([reason, count]) => ({ reason, count })),
    examples: [...examples],
  });
  const flush = async () => {
    const outcome = await warehouse.insert(rows);
    imported += outcome.inserted;
    duplicates += outcome.duplicates;
    rows = [];
    options.onProgress?.(summary());
  };

  for await (const line of lines) {
    lines_++;
    // A byte-order mark (spreadsheet exports) is not part of the first field.
    const text = lines_ === 1 ? line.replace(/^\uFEFF/, '') : line;
    if (text.trim() === '') continue;
    let raw: unknown;
    try {
      if (options.format === 'ndjson') {
        raw = JSON.parse(text);
      } else if (header === undefined) {
        header = splitCsvLine(text).map((name) => name.trim());
        if (!header.includes('node_id') || !header.includes('timestamp')) {
          throw new HeaderError(`the CSV header must name node_id and timestamp, got: ${header.join(',')}`);
        }
        continue;
      } else {
        raw = csvRecord(header, splitCsvLine(text));
      }
    } catch (error) {
      if (error instanceof HeaderError) throw error;
      reject(lines_, (error as Error).message);
      continue;
    }
    const checked = checkReading(raw, policy);
    if (!checked.ok) {
      reject(lines_, checked.error);
      continue;
    }
    rows.push(rowOf(checked.reading, { source: options.source, importedAt: options.nowMs }));
    if (rows.length >= size) await flush();
  }
  if (rows.length > 0 || lines_ === 0) await flush();
  return summary();
}

/** The file cannot be imported at all (not a row's problem). */
export class HeaderError extends Error {
  override readonly name = 'HeaderError';
}
