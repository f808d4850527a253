import { type DuckDBAppender, DuckDBDataChunk, type DuckDBType } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import type { ColumnType, WarehouseRow } from '../table.ts';

/** The most rows a DuckDB data chunk holds (its vector size). */
const CHUNK_ROWS = 2048;
/** A validity mask is 64-bit words, one bit a row (set: not null). */
const MASK_BYTES = CHUNK_ROWS / 8;
const TWO_TO_32 = 2 ** 32;

/** A column the chunks are filled from: how to read it off a row, and its type. */
export interface ChunkColumn {
  readonly type: ColumnType | 'seq';
  /** The column's value for the row at `index` of the call (null or undefined: SQL NULL). */
  readonly value: (row: WarehouseRow, index: number) => string | number | boolean | null | undefined;
  /**
   * The rows come in runs of one value (a stream entry's rows): a chunk
   * ends where a run of at least MIN_RUN rows does, so that the run's
   * strings (its entry, its gateway) are one constant for the chunk.
   */
  readonly runs?: true;
}

/**
 * A run this long ends its chunk early. Shorter runs (entries of a few
 * readings) share chunks: a chunk of few rows costs DuckDB more per row
 * than the constants save.
 */
const MIN_RUN = 256;

/**
 * Appends `rows` a data chunk at a time, writing each column's values
 * straight into its vector: doubles, timestamps (µs, as two 32-bit halves:
 * no BigInt a value) and booleans as one copy of a typed array each,
 * strings one native call each, NULLs as one copy of the validity mask.
 * The node API's per-value writers (an object and a BigInt mask operation
 * a value) cost the archiver more than DuckDB's own append of the rows.
 * A string column that holds one value throughout a chunk (the rows' stream
 * entry, gateway, often their district) is written as a constant: one
 * native call instead of one a row, and DuckDB copies the string once.
 */
export function appendChunks(
  appender: DuckDBAppender,
  types: readonly DuckDBType[],
  columns: readonly ChunkColumn[],
  rows: readonly WarehouseRow[],
): void {
  const numbers = new Float64Array(CHUNK_ROWS);
  const words = new Uint32Array(CHUNK_ROWS * 2);
  const flags = new Uint8Array(CHUNK_ROWS);
  const mask = new Uint8Array(MASK_BYTES);
  const runs = columns.find((column) => column.runs === true);
  for (let start = 0; start < rows.length; ) {
    const count = chunkRows(rows, start, runs);
    const chunk = DuckDBDataChunk.create(types as DuckDBType[], count);
    columns.forEach((column, c) => {
      const vector = duckdb.data_chunk_get_vector(chunk.chunk, c);
      if (column.type === 'string') {
        const constant = constantString(rows, start, count, column);
        if (constant !== undefined) {
          duckdb.vector_reference_value(vector, duckdb.create_varchar(constant));
          return;
        }
      }
      mask.fill(0xff);
      let nulls = 0;
      for (let i = 0; i < count; i++) {
        const value = column.value(rows[start + i] as WarehouseRow, start + i);
        if (value === null || value === undefined) {
          mask[i >> 3] = (mask[i >> 3] as number) & ~(1 << (i & 7));
          nulls++;
        } else if (column.type === 'string') {
          duckdb.vector_assign_string_element(vector, i, value as string);
        } else if (column.type === 'double') {
          numbers[i] = value as number;
        } else if (column.type === 'boolean') {
          flags[i] = value ? 1 : 0;
        } else {
          // A timestamp in µs (from ms) or a seq: an int64 as two halves, little-endian.
          const int = column.type === 'timestamp' ? (value as number) * 1000 : (value as number);
          const high = Math.floor(int / TWO_TO_32);
          words[2 * i] = int - high * TWO_TO_32;
          words[2 * i + 1] = high;
        }
      }
      if (column.type === 'double') duckdb.copy_data_to_vector(vector, 0, numbers.buffer, 0, count * 8);
      else if (column.type === 'boolean') duckdb.copy_data_to_vector(vector, 0, flags.buffer, 0, count);
      else if (column.type !== 'string') duckdb.copy_data_to_vector(vector, 0, words.buffer, 0, count * 8);
      if (nulls > 0) {
        duckdb.vector_ensure_validity_writable(vector);
        duckdb.copy_data_to_vector_validity(vector, 0, mask.buffer, 0, Math.ceil(count / 64) * 8);
      }
    });
    appender.appendDataChunk(chunk);
    start += count;
  }
}

/** How many rows from `start` go in one chunk: CHUNK_ROWS, or fewer to end with a long run. */
function chunkRows(rows: readonly WarehouseRow[], start: number, runs: ChunkColumn | undefined): number {
  const most = Math.min(CHUNK_ROWS, rows.length - start);
  if (runs === undefined) return most;
  const value = runs.value(rows[start] as WarehouseRow, start);
  let length = 1;
  while (length < most && runs.value(rows[start + length] as WarehouseRow, start + length) === value)
    length++;
  return length >= MIN_RUN ? length : most;
}

/** The string every row of the chunk holds in `column`, if they all hold the same one (not NULL). */
function constantString(
  rows: readonly WarehouseRow[],
  start: number,
  count: number,
  column: ChunkColumn,
): string | undefined {
  const value = column.value(rows[start] as WarehouseRow, start);
  if (typeof value !== 'string') return undefined;
  for (let i = 1; i < count; i++) {
    if (column.value(rows[start + i] as WarehouseRow, start + i) !== value) return undefined;
  }
  return value;
}
