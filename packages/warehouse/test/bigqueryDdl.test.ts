import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bigqueryReadingsDdl, COLUMNS, DDL_FILE_HEADER } from '../src/index.ts';

describe('the BigQuery readings table', () => {
  it('is partitioned by day on timestamp and clustered by district, node and time, with every column', () => {
    const ddl = bigqueryReadingsDdl({ project: 'water-prod', dataset: 'telemetry' });
    expect(ddl).toContain('CREATE TABLE IF NOT EXISTS `water-prod.telemetry.readings` (');
    expect(ddl).toContain('PARTITION BY DATE(`timestamp`)');
    expect(ddl).toContain('CLUSTER BY `district_id`, `node_id`, `timestamp`');
    expect(ddl).toContain('`timestamp` TIMESTAMP NOT NULL');
    expect(ddl).toContain('`flow_rate` FLOAT64,');
    expect(ddl).toContain('`is_interpolated` BOOL,');
    for (const column of COLUMNS) expect(ddl).toContain(`\`${column.name}\``);
  });

  it('refuses a name that would break out of the quoting', () => {
    expect(() => bigqueryReadingsDdl({ project: 'p', dataset: 'd`; DROP TABLE x; --' })).toThrow(
      'not a BigQuery name',
    );
  });

  it('is what infra/bigquery/readings.sql holds', () => {
    const file = readFileSync(new URL('../../../infra/bigquery/readings.sql', import.meta.url), 'utf8');
    expect(file).toBe(DDL_FILE_HEADER + bigqueryReadingsDdl({ project: 'PROJECT', dataset: 'DATASET' }));
  });
});
