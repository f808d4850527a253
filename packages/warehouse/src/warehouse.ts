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
  close(): Promise<void>;
}
