import type { Dialect, Statement } from './sql/dialect.ts';
import type { WarehouseRow } from './table.ts';

export interface InsertOutcome {
  /** Rows written. */
  readonly inserted: number;
  /** Rows whose `(node_id, timestamp)` was already there (or twice in the call): skipped. */
  readonly duplicates: number;
}

/**
 * The warehouse: the system of record for every reading. Adapters: DuckDB
 * (embedded, the default) and BigQuery.
 */
export interface Warehouse {
  /**
   * Writes rows, one per `(node_id, timestamp)`: a row whose identity is
   * already stored is skipped, and within one call the first copy wins. The
   * write is committed when the promise resolves, and all or nothing:
   * calling again with the same rows after a failure or a crash is safe.
   */
  insert(rows: readonly WarehouseRow[]): Promise<InsertOutcome>;
  /** Rows stored (for tests, status and import summaries). */
  count(): Promise<number>;
  /** The SQL dialect of `select`, and how its statements name the readings table. */
  readonly dialect: Dialect;
  readonly table: string;
  /**
   * Runs a read-only statement built for `dialect` and returns every row
   * (all pages) as an object of column → value. Numbers come back as JS
   * numbers: statements cast what they return to a 64-bit float. Calls may
   * run concurrently (the backfill bounds how many).
   */
  select(statement: Statement): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}
