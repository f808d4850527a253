import { join } from 'node:path';
import type { Config } from '@streamgauge/core';
import { BigQueryWarehouse } from './bigquery/bigqueryWarehouse.ts';
import { DuckdbWarehouse } from './duckdb/duckdbWarehouse.ts';
import type { Warehouse } from './warehouse.ts';

/** The embedded warehouse's file. */
export function duckdbPath(config: Config): string {
  return join(config.dataDir, 'warehouse.duckdb');
}

/** Where the readings go, for logs and banners. */
export function describeWarehouse(config: Config): string {
  const bq = config.bigquery;
  return bq ? `BigQuery ${bq.project}.${bq.dataset}.${bq.table}` : `DuckDB ${duckdbPath(config)}`;
}

/**
 * The configured warehouse: BigQuery when BIGQUERY_PROJECT is set, else the
 * DuckDB file under DATA_DIR. A DuckDB file already open in another process
 * (the archiver's) fails with an error that says so.
 */
export async function openWarehouse(config: Config): Promise<Warehouse> {
  const bq = config.bigquery;
  if (bq) {
    return BigQueryWarehouse.create({
      projectId: bq.project,
      dataset: bq.dataset,
      table: bq.table,
      ...(bq.location && { location: bq.location }),
    });
  }
  const path = duckdbPath(config);
  try {
    return await DuckdbWarehouse.open(path);
  } catch (error) {
    const message = (error as Error).message;
    throw new WarehouseOpenError(
      `cannot open the warehouse ${path}: ${message}` +
        (/lock/i.test(message) ? ' (another process holds it: DuckDB has one writer)' : ''),
      /lock/i.test(message),
    );
  }
}

export class WarehouseOpenError extends Error {
  readonly locked: boolean;

  constructor(message: string, locked: boolean) {
    super(message);
    this.name = 'WarehouseOpenError';
    this.locked = locked;
  }
}
