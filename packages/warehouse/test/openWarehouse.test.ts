import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@streamgauge/core';
import { describe, expect, it } from 'vitest';
import {
  BigQueryWarehouse,
  DuckdbWarehouse,
  describeWarehouse,
  openWarehouse,
  WarehouseOpenError,
} from '../src/index.ts';

describe('openWarehouse', () => {
  it('opens BigQuery when BIGQUERY_PROJECT is set, the DuckDB file under DATA_DIR otherwise', async () => {
    const bq = loadConfig({ BIGQUERY_PROJECT: 'water-prod', BIGQUERY_DATASET: 'live' });
    const remote = await openWarehouse(bq);
    expect(remote).toBeInstanceOf(BigQueryWarehouse);
    expect(remote.table).toBe('`water-prod.live.readings`');
    expect(describeWarehouse(bq)).toBe('BigQuery water-prod.live.readings');
    await remote.close();

    const dir = mkdtempSync(join(tmpdir(), 'streamgauge-open-'));
    try {
      const config = loadConfig({ DATA_DIR: dir });
      const local = await openWarehouse(config);
      expect(local).toBeInstanceOf(DuckdbWarehouse);
      expect(describeWarehouse(config)).toBe(`DuckDB ${join(dir, 'warehouse.duckdb')}`);
      await local.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the problem when the DuckDB file cannot be opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'streamgauge-open-'));
    try {
      // DATA_DIR is a file: the database cannot be created under it.
      const file = join(dir, 'not-a-dir');
      await import('node:fs').then((fs) => fs.writeFileSync(file, 'x'));
      const error = await openWarehouse(loadConfig({ DATA_DIR: file })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WarehouseOpenError);
      expect((error as Error).message).toContain(
        `cannot open the warehouse ${join(file, 'warehouse.duckdb')}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
