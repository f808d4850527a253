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
}

/**
 * Appends `rows` a data chunk at a time, writing each column's values
 * straight into its vector: doubles, timestamps (µs, as two 32-bit halves:
 * no BigInt a value) and booleans as one copy of a typed array each,
 * strings one native call each, NULLs as one copy of the validity mask.
 * The node API's per-value writers (an object and a BigInt mask operation
 * a value) cost the archiver more than DuckDB's own append of the rows.
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
  for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
    const count = Math.min(CHUNK_ROWS, rows.length - start);
    const chunk = DuckDBDataChunk.create(types as DuckDBType[], count);
    columns.forEach((column, c) => {
      const vector = duckdb.data_chunk_get_vector(chunk.chunk, c);
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
  }
}
