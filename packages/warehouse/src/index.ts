export type { BigQueryWarehouseOptions } from './bigquery/bigqueryWarehouse.ts';
export { BigQueryWarehouse } from './bigquery/bigqueryWarehouse.ts';
export type { BigQueryTableName } from './bigquery/ddl.ts';
export { bigqueryReadingsDdl, DDL_FILE_HEADER } from './bigquery/ddl.ts';
export { DuckdbWarehouse, duckdbReadingsDdl } from './duckdb/duckdbWarehouse.ts';
export type { ImportFormat, ImportOptions, ImportSummary, Rejection } from './importer.ts';
export { HeaderError, importReadings } from './importer.ts';
export { describeWarehouse, duckdbPath, openWarehouse, WarehouseOpenError } from './open.ts';
export type {
  BackfillStatement,
  NodeRow,
  NodeStatement,
  PaneStatement,
  RecentStatement,
  Scope,
} from './sql/backfillQueries.ts';
export {
  backfillStatements,
  nodeOfRow,
  nodeStatement,
  paneOfRow,
  paneStatement,
  readingOfRow,
  recentStatement,
} from './sql/backfillQueries.ts';
export type { Dialect, Param, ParamType, Statement } from './sql/dialect.ts';
export { bigquery, duckdb } from './sql/dialect.ts';
export type { ColumnType, RowOrigin, WarehouseRow } from './table.ts';
export { COLUMNS, READINGS_TABLE, rowOf } from './table.ts';
export type { InsertOutcome, Warehouse } from './warehouse.ts';
