import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  type DuckDBAppender,
  type DuckDBConnection,
  DuckDBInstance,
  type DuckDBType,
  type DuckDBValue,
  TIMESTAMP,
  timestampValue,
  VARCHAR,
} from '@duckdb/node-api';
import { type Dialect, duckdb, type Statement } from '../sql/dialect.ts';
import { COLUMNS, READINGS_TABLE, type WarehouseRow } from '../table.ts';
import type { InsertOutcome, Warehouse } from '../warehouse.ts';
import { appendChunks, type ChunkColumn } from './columnChunks.ts';

const SQL_TYPE = { string: 'VARCHAR', timestamp: 'TIMESTAMP', double: 'DOUBLE', boolean: 'BOOLEAN' } as const;
const STAGE = 'readings_stage';
const DUCKDB_TYPE = { string: VARCHAR, timestamp: TIMESTAMP, double: DOUBLE, boolean: BOOLEAN } as const;
const COLUMN_TYPES: readonly DuckDBType[] = COLUMNS.map((c) => DUCKDB_TYPE[c.type]);
/** The staging table's: a `seq` of the rows' positions first. */
const STAGE_TYPES: readonly DuckDBType[] = [BIGINT, ...COLUMN_TYPES];

/** Each column's value, a function of its own (one property load each, not one by name). */
const VALUE: { readonly [K in keyof WarehouseRow]: (row: WarehouseRow) => WarehouseRow[K] } = {
  node_id: (r) => r.node_id,
  timestamp: (r) => r.timestamp,
  flow_rate: (r) => r.flow_rate,
  pressure: (r) => r.pressure,
  pressure_1: (r) => r.pressure_1,
  pressure_2: (r) => r.pressure_2,
  temperature: (r) => r.temperature,
  volume: (r) => r.volume,
  data_quality_score: (r) => r.data_quality_score,
  district_id: (r) => r.district_id,
  node_name: (r) => r.node_name,
  node_type: (r) => r.node_type,
  is_interpolated: (r) => r.is_interpolated,
  source_file: (r) => r.source_file,
  ingestion_timestamp: (r) => r.ingestion_timestamp,
  stream_entry: (r) => r.stream_entry,
};
const ROW_COLUMNS: readonly ChunkColumn[] = COLUMNS.map((c) =>
  // The archiver's rows come entry by entry.
  c.name === 'stream_entry'
    ? { type: c.type, value: VALUE[c.name], runs: true }
    : { type: c.type, value: VALUE[c.name] },
);
const STAGE_COLUMNS: readonly ChunkColumn[] = [{ type: 'seq', value: (_, index) => index }, ...ROW_COLUMNS];

/** The DuckDB DDL of the readings table; the primary key is what keeps one row per identity. */
export function duckdbReadingsDdl(): string {
  const columns = COLUMNS.map((c) => `  "${c.name}" ${SQL_TYPE[c.type]}${c.key ? ' NOT NULL' : ''}`);
  const key = COLUMNS.filter((c) => c.key).map((c) => `"${c.name}"`);
  return `CREATE TABLE IF NOT EXISTS ${READINGS_TABLE} (\n${columns.join(',\n')},\n  PRIMARY KEY (${key.join(', ')})\n)`;
}

/**
 * The embedded warehouse: one DuckDB file (under DATA_DIR by default).
 *
 * A write first appends the rows straight to the table with DuckDB's
 * appender (its fastest path: no SQL per row), in one transaction. The
 * appender cannot skip a row whose identity is stored, so if the primary key
 * refuses one, the transaction is rolled back and the write takes the second
 * path: the rows go to a staging table, then move in one transaction with
 * `INSERT … SELECT DISTINCT ON (identity) … ON CONFLICT DO NOTHING`, where
 * the primary key skips identities already stored and DISTINCT ON keeps the
 * first copy within the call. Either path is all or nothing, so a retry
 * after a crash writes each reading once.
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

  /**
   * Whether the table's columns are COLUMNS in their order: the appender
   * fills columns by position. A file whose columns differ takes the second
   * path (by name) every time.
   */
  readonly #appendable: boolean;

  private constructor(instance: DuckDBInstance, connection: DuckDBConnection, appendable: boolean) {
    this.#instance = instance;
    this.#connection = connection;
    this.#appendable = appendable;
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
    const order = await connection.runAndReadAll(
      `SELECT column_name FROM duckdb_columns()
       WHERE database_name = current_database() AND schema_name = 'main' AND table_name = '${READINGS_TABLE}'
       ORDER BY column_index`,
    );
    const names = order.getRowObjects().map((row) => String(row.column_name));
    const appendable = names.length === COLUMNS.length && COLUMNS.every((c, i) => names[i] === c.name);
    return new DuckdbWarehouse(instance, connection, appendable);
  }

  insert(rows: readonly WarehouseRow[]): Promise<InsertOutcome> {
    return this.#serialised(async () => {
      if (rows.length === 0) return { inserted: 0, duplicates: 0 };
      // Whatever refused the fast path, the second path says it again if it is no conflict.
      const inserted = (await this.#appendAllNew(rows)) ? rows.length : await this.#insertSkippingHeld(rows);
      return { inserted, duplicates: rows.length - inserted };
    });
  }

  /**
   * The usual write, where no identity of `rows` is stored yet nor repeats
   * among them: appended straight to the table, in one transaction. When the
   * primary key refuses a row (a redelivered batch, a resend), or anything
   * else fails, the transaction is rolled back and false returned, so the
   * caller takes the path that skips what is held. Skipping conflicts costs
   * DuckDB about twice as much per row, so it is paid only when needed.
   */
  async #appendAllNew(rows: readonly WarehouseRow[]): Promise<boolean> {
    if (!this.#appendable) return false;
    try {
      await this.#connection.run('BEGIN TRANSACTION');
      appendAll(await this.#connection.createAppender(READINGS_TABLE), rows, false);
      await this.#connection.run('COMMIT');
      return true;
    } catch {
      await this.#connection.run('ROLLBACK').catch(() => {});
      return false;
    }
  }

  /** Writes the rows whose identity is not stored, the first copy of each; returns how many. */
  async #insertSkippingHeld(rows: readonly WarehouseRow[]): Promise<number> {
    // The staging table is emptied before and after, whatever failed:
    // rows of a failed call must never ride along with the next one.
    await this.#connection.run(`DELETE FROM ${STAGE}`);
    try {
      appendAll(await this.#connection.createAppender(STAGE, 'main', 'temp'), rows, true);
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
        return result.rowsChanged;
      } catch (error) {
        await this.#connection.run('ROLLBACK').catch(() => {});
        throw error;
      }
    } finally {
      await this.#connection.run(`DELETE FROM ${STAGE}`);
    }
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

/** Appends the rows and closes the appender; on a failure, nothing of them stays buffered. */
function appendAll(appender: DuckDBAppender, rows: readonly WarehouseRow[], withSeq: boolean): void {
  try {
    appendChunks(appender, withSeq ? STAGE_TYPES : COLUMN_TYPES, withSeq ? STAGE_COLUMNS : ROW_COLUMNS, rows);
    appender.flushSync();
  } catch (error) {
    // What a refused flush leaves buffered would be flushed again when the
    // appender is closed or collected, into whichever transaction is open then.
    appender.clear();
    throw error;
  } finally {
    appender.closeSync();
  }
}
