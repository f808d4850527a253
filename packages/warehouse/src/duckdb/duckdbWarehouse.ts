import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  BIGINT,
  type DuckDBAppender,
  type DuckDBConnection,
  DuckDBInstance,
  type DuckDBType,
  type DuckDBValue,
  TIMESTAMP,
  timestampValue,
} from '@duckdb/node-api';
import { type Dialect, duckdb, type Statement } from '../sql/dialect.ts';
import { COLUMNS, READINGS_TABLE, type WarehouseRow } from '../table.ts';
import type { InsertOutcome, Warehouse } from '../warehouse.ts';

const SQL_TYPE = { string: 'VARCHAR', timestamp: 'TIMESTAMP', double: 'DOUBLE', boolean: 'BOOLEAN' } as const;
const STAGE = 'readings_stage';

/** The DuckDB DDL of the readings table; the primary key is what keeps one row per identity. */
export function duckdbReadingsDdl(): string {
  const columns = COLUMNS.map((c) => `  "${c.name}" ${SQL_TYPE[c.type]}${c.key ? ' NOT NULL' : ''}`);
  const key = COLUMNS.filter((c) => c.key).map((c) => `"${c.name}"`);
  return `CREATE TABLE IF NOT EXISTS ${READINGS_TABLE} (\n${columns.join(',\n')},\n  PRIMARY KEY (${key.join(', ')})\n)`;
}

/**
 * The embedded warehouse: one DuckDB file (under DATA_DIR by default).
 *
 * A write appends the rows to a staging table with DuckDB's appender (its
 * fastest path: no SQL per row), then moves them in one transaction with
 * `INSERT … SELECT DISTINCT ON (identity) … ON CONFLICT DO NOTHING`: the
 * primary key skips identities already stored, DISTINCT ON keeps the first
 * copy within the call. The appender alone cannot skip conflicts, and the
 * transaction makes the write all or nothing, so a retry after a crash
 * writes each reading once.
 *
 * DuckDB lets one process write a database file; writes are serialised here.
 * Reads (`select`) each take a connection of their own, so they run in
 * parallel with each other and with writes, on a snapshot.
 */
export class DuckdbWarehouse implements Warehouse {
  readonly dialect: Dialect = duckdb;
  readonly table = READINGS_TABLE;
  readonly #instance: DuckDBInstance;
  readonly #connection: DuckDBConnection;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(instance: DuckDBInstance, connection: DuckDBConnection) {
    this.#instance = instance;
    this.#connection = connection;
  }

  /** Opens (creating if needed) the database at `path`; `:memory:` for a throw-away one. */
  static async open(path: string): Promise<DuckdbWarehouse> {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const instance = await DuckDBInstance.create(path);
    const connection = await instance.connect();
    await connection.run(duckdbReadingsDdl());
    // A file made by an earlier version lacks the columns added since.
    for (const c of COLUMNS.filter((c) => !c.key)) {
      await connection.run(
        `ALTER TABLE ${READINGS_TABLE} ADD COLUMN IF NOT EXISTS "${c.name}" ${SQL_TYPE[c.type]}`,
      );
    }
    const stageColumns = COLUMNS.map((c) => `"${c.name}" ${SQL_TYPE[c.type]}`).join(', ');
    await connection.run(`CREATE TEMP TABLE ${STAGE} (seq BIGINT, ${stageColumns})`);
    return new DuckdbWarehouse(instance, connection);
  }

  insert(rows: readonly WarehouseRow[]): Promise<InsertOutcome> {
    return this.#serialised(async () => {
      if (rows.length === 0) return { inserted: 0, duplicates: 0 };
      // The staging table is emptied before and after, whatever failed:
      // rows of a failed call must never ride along with the next one.
      await this.#connection.run(`DELETE FROM ${STAGE}`);
      try {
        const appender = await this.#connection.createAppender(STAGE, 'main', 'temp');
        try {
          for (const [seq, row] of rows.entries()) appendRow(appender, seq, row);
        } finally {
          appender.closeSync();
        }
        const names = COLUMNS.map((c) => `"${c.name}"`).join(', ');
        await this.#connection.run('BEGIN TRANSACTION');
        try {
          const result = await this.#connection.run(
            `INSERT INTO ${READINGS_TABLE} (${names})
             SELECT DISTINCT ON ("node_id", "timestamp") ${names} FROM ${STAGE}
             ORDER BY "node_id", "timestamp", seq
             ON CONFLICT DO NOTHING`,
          );
          await this.#connection.run('COMMIT');
          return { inserted: result.rowsChanged, duplicates: rows.length - result.rowsChanged };
        } catch (error) {
          await this.#connection.run('ROLLBACK').catch(() => {});
          throw error;
        }
      } finally {
        await this.#connection.run(`DELETE FROM ${STAGE}`);
      }
    });
  }

  count(): Promise<number> {
    return this.#serialised(async () => {
      const reader = await this.#connection.runAndReadAll(`SELECT count(*) AS n FROM ${READINGS_TABLE}`);
      return Number(reader.getRowObjects()[0]?.n ?? 0);
    });
  }

  /** Runs a query and returns its rows as objects (tests, ops). */
  query(sql: string): Promise<Record<string, unknown>[]> {
    return this.#serialised(async () => (await this.#connection.runAndReadAll(sql)).getRowObjectsJS());
  }

  async select(statement: Statement): Promise<Record<string, unknown>[]> {
    const values: Record<string, DuckDBValue> = {};
    const types: Record<string, DuckDBType> = {};
    for (const [name, param] of Object.entries(statement.params)) {
      if (param.type === 'TIMESTAMP') {
        values[name] = timestampValue(BigInt(param.value) * 1000n);
        types[name] = TIMESTAMP;
      } else {
        values[name] = BigInt(param.value);
        types[name] = BIGINT;
      }
    }
    const connection = await this.#instance.connect();
    try {
      return (await connection.runAndReadAll(statement.sql, values, types)).getRowObjectsJS();
    } finally {
      connection.closeSync();
    }
  }

  async close(): Promise<void> {
    await this.#queue.catch(() => {});
    this.#connection.closeSync();
    this.#instance.closeSync();
  }

  #serialised<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => {});
    return next;
  }
}

function appendRow(appender: DuckDBAppender, seq: number, row: WarehouseRow): void {
  appender.appendBigInt(BigInt(seq));
  for (const column of COLUMNS) {
    const value = row[column.name];
    if (value === null || value === undefined) appender.appendNull();
    else if (column.type === 'string') appender.appendVarchar(value as string);
    else if (column.type === 'double') appender.appendDouble(value as number);
    else if (column.type === 'boolean') appender.appendBoolean(value as boolean);
    else appender.appendTimestamp(timestampValue(BigInt(value as number) * 1000n));
  }
  appender.endRow();
}
