import { COLUMNS, type ColumnType, type WarehouseRow } from '../table.ts';

const FIELD_TYPE: Record<ColumnType, string> = {
  string: 'STRING',
  timestamp: 'TIMESTAMP',
  double: 'FLOAT64',
  boolean: 'BOOL',
};

/**
 * How much one MERGE carries. BigQuery caps an API request at 10 MB, query
 * parameters included; the rows parameter is kept to a few MB so a call
 * stays well under it whatever the rows hold.
 */
export const MAX_ROWS_PER_STATEMENT = 5_000;
export const MAX_BYTES_PER_STATEMENT = 4 * 1024 * 1024;

/** A query job's text and parameters, as the client takes them. */
export interface MergeQuery {
  readonly query: string;
  readonly params: { rows: Record<string, unknown>[]; min_ts: Date; max_ts: Date };
  readonly types: { rows: [Record<string, string>]; min_ts: string; max_ts: string };
}

/**
 * `rows` cut into consecutive chunks of at most `maxRows` rows and (by
 * estimate) `maxBytes` of parameter JSON; a row larger than that on its
 * own is a chunk of its own.
 */
export function chunkRows(
  rows: readonly WarehouseRow[],
  maxRows = MAX_ROWS_PER_STATEMENT,
  maxBytes = MAX_BYTES_PER_STATEMENT,
): WarehouseRow[][] {
  const chunks: WarehouseRow[][] = [];
  let chunk: WarehouseRow[] = [];
  let bytes = 0;
  for (const row of rows) {
    const size = encodedSize(row);
    if (chunk.length > 0 && (chunk.length === maxRows || bytes + size > maxBytes)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(row);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/**
 * The size of a row in the request: its JSON plus what the parameter
 * encoding wraps around each field (`"name":{"value":…}`, ISO timestamps).
 */
function encodedSize(row: WarehouseRow): number {
  return Buffer.byteLength(JSON.stringify(row)) + COLUMNS.length * 16 + 32;
}

/**
 * One MERGE that inserts the rows whose `(node_id, timestamp)` the table
 * does not hold yet: QUALIFY keeps the first copy of an identity within the
 * call (WITH OFFSET is the row's place in the array), WHEN NOT MATCHED skips
 * identities already stored. The BETWEEN bound on the target's `timestamp`
 * lets BigQuery read only the day partitions the rows fall in.
 */
export function mergeQuery(table: string, rows: readonly WarehouseRow[]): MergeQuery {
  const columns = COLUMNS.map((c) => `\`${c.name}\``);
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const row of rows) {
    min = Math.min(min, row.timestamp);
    max = Math.max(max, row.timestamp);
  }
  const query = [
    `MERGE ${table} AS T`,
    'USING (',
    '  SELECT * EXCEPT (ord) FROM UNNEST(@rows) WITH OFFSET AS ord',
    // BigQuery has required a WHERE, GROUP BY or HAVING beside QUALIFY.
    '  WHERE TRUE',
    '  QUALIFY ROW_NUMBER() OVER (PARTITION BY `node_id`, `timestamp` ORDER BY ord) = 1',
    ') AS S',
    'ON T.`node_id` = S.`node_id` AND T.`timestamp` = S.`timestamp`',
    '  AND T.`timestamp` BETWEEN @min_ts AND @max_ts',
    'WHEN NOT MATCHED THEN',
    `  INSERT (${columns.join(', ')})`,
    `  VALUES (${columns.map((c) => `S.${c}`).join(', ')})`,
  ].join('\n');
  const struct: Record<string, string> = {};
  for (const c of COLUMNS) struct[c.name] = FIELD_TYPE[c.type];
  return {
    query,
    params: { rows: rows.map(structOf), min_ts: new Date(min), max_ts: new Date(max) },
    // Every field typed, so a NULL is a NULL of the column's type.
    types: { rows: [struct], min_ts: 'TIMESTAMP', max_ts: 'TIMESTAMP' },
  };
}

function structOf(row: WarehouseRow): Record<string, unknown> {
  const struct: Record<string, unknown> = {};
  for (const c of COLUMNS) {
    const value = row[c.name];
    struct[c.name] = c.type === 'timestamp' && typeof value === 'number' ? new Date(value) : (value ?? null);
  }
  return struct;
}
