export type { BigQueryTableName } from './bigquery/ddl.ts';
export { bigqueryReadingsDdl, DDL_FILE_HEADER } from './bigquery/ddl.ts';
export { DuckdbWarehouse, duckdbReadingsDdl } from './duckdb/duckdbWarehouse.ts';
export type { ImportFormat, ImportOptions, ImportSummary, Rejection } from './importer.ts';
export { HeaderError, importReadings } from './importer.ts';
export type { ColumnType, WarehouseRow } from './table.ts';
export { COLUMNS, READINGS_TABLE, rowOf } from './table.ts';
export type { InsertOutcome, Warehouse } from './warehouse.ts';
