import { COLUMNS, READINGS_TABLE } from '../table.ts';

const BIGQUERY_TYPE = {
  string: 'STRING',
  timestamp: 'TIMESTAMP',
  double: 'FLOAT64',
  boolean: 'BOOL',
} as const;

export interface BigQueryTableName {
  readonly project: string;
  readonly dataset: string;
  readonly table?: string;
}

/**
 * The readings table in BigQuery (DATA_MODEL.md): partitioned by day on
 * `timestamp` (queries over a window read only its days), clustered by
 * `district_id, node_id, timestamp`. BigQuery has no enforced primary key:
 * one row per `(node_id, timestamp)` must be kept by how rows are written.
 */
export function bigqueryReadingsDdl(name: BigQueryTableName): string {
  const table = name.table ?? READINGS_TABLE;
  for (const part of [name.project, name.dataset, table]) {
    if (!/^[A-Za-z0-9_.-]+$/.test(part)) throw new Error(`not a BigQuery name: ${JSON.stringify(part)}`);
  }
  const columns = COLUMNS.map((c) => `  \`${c.name}\` ${BIGQUERY_TYPE[c.type]}${c.key ? ' NOT NULL' : ''}`);
  return [
    `CREATE TABLE IF NOT EXISTS \`${name.project}.${name.dataset}.${table}\` (`,
    columns.join(',\n'),
    ')',
    'PARTITION BY DATE(`timestamp`)',
    'CLUSTER BY `district_id`, `node_id`, `timestamp`',
    "OPTIONS (description = 'streamgauge: every reading, one row per (node_id, timestamp)');",
    '',
  ].join('\n');
}

/** The header of infra/bigquery/readings.sql, which holds the DDL for PROJECT.DATASET. */
export const DDL_FILE_HEADER =
  '-- The readings table, generated from packages/warehouse/src/table.ts (a test keeps it in step).\n' +
  '-- Replace PROJECT and DATASET.\n';
