/**
 * Historical readings as CSV (DATA_MODEL.md's columns, a header row first):
 * split a line into fields, and turn a row into the raw object that
 * `checkReading` validates, as if it had come as JSON.
 */

import { MEASUREMENTS, METADATA_FIELDS } from './reading.ts';

// The reading's own field lists: a column the validator learns is read here too.
const NUMBER_COLUMNS = new Set<string>([...MEASUREMENTS, 'data_quality_score']);
const TEXT_COLUMNS = new Set<string>(['node_id', ...METADATA_FIELDS]);

// A decimal number as JSON writes it (no hex, octal or binary, no Infinity).
const DECIMAL = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;

// A time with no zone, as warehouse exports write it: read as UTC.
const ZONELESS = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/** Splits one CSV line (RFC 4180 quoting: `"a ""b"""`; no line breaks inside a field). */
export function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"' && field === '') {
      quoted = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
    } else {
      field += c;
    }
  }
  if (quoted) throw new Error('a quoted field is not closed (line breaks inside a field are not supported)');
  fields.push(field.endsWith('\r') ? field.slice(0, -1) : field);
  return fields;
}

/**
 * The raw reading of one CSV row: numbers parsed (an empty cell is absent,
 * a cell that is not a number stays text so the validator names it),
 * `timestamp` with no zone read as UTC, `is_interpolated` as a boolean.
 * Columns the table does not know are ignored.
 */
export function csvRecord(header: readonly string[], values: readonly string[]): Record<string, unknown> {
  if (values.length !== header.length) {
    throw new Error(`expected ${header.length} fields (as the header), got ${values.length}`);
  }
  const record: Record<string, unknown> = {};
  header.forEach((column, i) => {
    const value = (values[i] ?? '').trim();
    if (value === '') return;
    if (NUMBER_COLUMNS.has(column)) {
      record[column] = DECIMAL.test(value) ? Number(value) : value;
    } else if (TEXT_COLUMNS.has(column)) {
      record[column] = value;
    } else if (column === 'timestamp') {
      record.timestamp = csvTimestamp(value);
    } else if (column === 'is_interpolated') {
      const flag = value.toLowerCase();
      record.is_interpolated =
        flag === 'true' || flag === '1' ? true : flag === 'false' || flag === '0' ? false : value;
    }
  });
  return record;
}

/** A CSV timestamp as `parseTimestamp` takes it: a zoneless time is UTC, digits are epoch milliseconds. */
export function csvTimestamp(value: string): string | number {
  return ZONELESS.test(value) ? `${value.replace(' ', 'T')}Z` : /^\d+$/.test(value) ? Number(value) : value;
}
