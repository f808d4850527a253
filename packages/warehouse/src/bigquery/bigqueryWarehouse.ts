import { randomUUID } from 'node:crypto';
import {
  BigQuery,
  BigQueryInt,
  type BigQueryOptions,
  BigQueryTimestamp,
  type Job,
  type Query,
  type QueryResultsOptions,
} from '@google-cloud/bigquery';
import { bigquery, type Dialect, type Statement } from '../sql/dialect.ts';
import { READINGS_TABLE, type WarehouseRow } from '../table.ts';
import type { InsertOutcome, Warehouse } from '../warehouse.ts';
import { chunkRows, mergeQuery } from './merge.ts';
import { describeError, type RetryPolicy, statusOf, withRetries } from './retry.ts';

export interface BigQueryWarehouseOptions {
  /** The project that holds the dataset and runs (pays for) the jobs. */
  projectId: string;
  dataset: string;
  /** Default `readings`. */
  table?: string;
  /** Where jobs run (`EU`, `europe-west1`, …): the dataset's location. */
  location?: string;
  /** Another API root, for emulators and tests. A plain `http://` one is sent no credentials. */
  apiEndpoint?: string;
  /** A client to use instead of one built from these options (its own retry settings then apply too). */
  client?: BigQuery;
  /** Retries of a transient failure (HTTP 429/5xx, `rateLimitExceeded`, `backendError`); default 5. */
  maxRetries?: number;
  /** Delay before the first retry, ms, doubling with each retry; default 1000. */
  retryBaseDelayMs?: number;
  /** Rows per result page to ask for; default BigQuery's (pages of up to 10 MB). */
  pageSize?: number;
}

type Row = Record<string, unknown>;

interface JobOutcome {
  readonly rows: Row[];
  /** Rows a DML statement inserted, updated or deleted. */
  readonly affected: number;
}

/**
 * Credentials never travel over plain HTTP: such an endpoint is an emulator
 * or a test's fake, which wants none. The client asks its auth client only
 * for request headers (the project id is always given).
 */
const ANONYMOUS = {
  getRequestHeaders: async () => new Headers(),
} as unknown as BigQueryOptions['authClient'];

/**
 * The warehouse in BigQuery (docs/bigquery.md), over the REST API of
 * `@google-cloud/bigquery`, with credentials found the standard Google way
 * (Application Default Credentials, GOOGLE_APPLICATION_CREDENTIALS).
 *
 * A write is one MERGE query job per chunk of rows, the rows passed as one
 * ARRAY<STRUCT> parameter (merge.ts). BigQuery has no primary key, so the
 * statement itself skips identities already stored; a DML statement is
 * atomic, so a chunk is written whole or not at all, and writing it again
 * after a failure or a crash inserts nothing twice. The alternatives fall
 * short of the port: `insertAll`'s insertId dedupes on a best-effort basis,
 * over about a minute, and its rows cannot be changed by DML for a while;
 * a load job appends without looking at what is stored; the Storage Write
 * API (exactly-once by stream offset, far cheaper per row) needs gRPC
 * streams, a later option for throughput.
 *
 * Inserts of one instance run one at a time (MERGE is a mutating DML
 * statement: BigQuery runs two per table at once and queues 20); reads run
 * concurrently.
 */
export class BigQueryWarehouse implements Warehouse {
  readonly dialect: Dialect = bigquery;
  /** `` `project.dataset.table` ``, as statements name it. */
  readonly table: string;
  readonly #client: BigQuery;
  readonly #location: string | undefined;
  readonly #retry: RetryPolicy;
  readonly #pageSize: number | undefined;
  #inserts: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(options: BigQueryWarehouseOptions) {
    const table = options.table ?? READINGS_TABLE;
    // The rule of bigqueryReadingsDdl: nothing that could break out of the backquotes.
    for (const part of [options.projectId, options.dataset, table]) {
      if (!/^[A-Za-z0-9_.-]+$/.test(part)) throw new Error(`not a BigQuery name: ${JSON.stringify(part)}`);
    }
    this.table = `\`${options.projectId}.${options.dataset}.${table}\``;
    this.#location = options.location;
    this.#retry = { maxRetries: options.maxRetries ?? 5, baseDelayMs: options.retryBaseDelayMs ?? 1000 };
    this.#pageSize = options.pageSize;
    this.#client = options.client ?? clientFor(options);
  }

  static create(options: BigQueryWarehouseOptions): BigQueryWarehouse {
    return new BigQueryWarehouse(options);
  }

  async insert(rows: readonly WarehouseRow[]): Promise<InsertOutcome> {
    this.#assertOpen();
    return this.#serialised(async () => {
      let inserted = 0;
      // One statement per chunk, in order: each chunk is atomic, and a retry
      // of the whole call after a failure part-way skips the chunks written.
      for (const chunk of chunkRows(rows)) {
        inserted += (await this.#run(mergeQuery(this.table, chunk), 'insert')).affected;
      }
      return { inserted, duplicates: rows.length - inserted };
    });
  }

  async count(): Promise<number> {
    this.#assertOpen();
    const { rows } = await this.#run({ query: `SELECT COUNT(*) AS n FROM ${this.table}` }, 'count');
    return Number(rows[0]?.n ?? 0);
  }

  async select(statement: Statement): Promise<Row[]> {
    this.#assertOpen();
    const params: Record<string, BigQueryInt | BigQueryTimestamp> = {};
    const types: Record<string, string> = {};
    for (const [name, param] of Object.entries(statement.params)) {
      // INT64 goes as a decimal string (exact beyond 2^53 on the wire), TIMESTAMP as an ISO instant in UTC.
      params[name] =
        param.type === 'TIMESTAMP' ? BigQuery.timestamp(new Date(param.value)) : BigQuery.int(param.value);
      types[name] = param.type;
    }
    return (await this.#run({ query: statement.sql, params, types }, 'query')).rows;
  }

  /** Runs any statement (DDL, ops, tests) and returns its rows. */
  async query(sql: string): Promise<Row[]> {
    this.#assertOpen();
    return (await this.#run({ query: sql }, 'statement')).rows;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#inserts.catch(() => {});
  }

  /**
   * Runs one statement as a query job and reads every page of its result,
   * retrying transient failures. The job id is chosen here and kept across
   * retries while the job may exist: if an earlier attempt created the job
   * and only the answer was lost, BigQuery says 409 and that job is waited
   * for, so a statement never runs twice at once. A job that failed changed
   * nothing, and is run again under a new id.
   */
  #run(query: Query, what: string): Promise<JobOutcome> {
    let jobId = newJobId();
    const start = async (): Promise<Job> => {
      const [job] = await this.#client.createQueryJob({ ...query, jobId, location: this.#location });
      return job;
    };
    return withRetries(
      this.#retry,
      async () => {
        let job: Job;
        try {
          job = await start();
        } catch (error) {
          if (statusOf(error) !== 409) throw error;
          job = this.#client.job(jobId, { location: this.#location });
          const [metadata] = await job.getMetadata();
          if (metadata.status?.errorResult) {
            jobId = newJobId();
            job = await start();
          }
        }
        return this.#results(job);
      },
      (error, attempts) =>
        new Error(
          `BigQuery ${what} on ${this.table} failed${attempts > 1 ? ` after ${attempts} attempts` : ''}: ${describeError(error)}`,
          { cause: error },
        ),
    );
  }

  /**
   * Every row of every page, by page token. (The client's own `autoPaginate`
   * quietly stops after the first page when `maxResults` is set.) While the
   * job runs, BigQuery holds each request up to 10 s and answers
   * `jobComplete: false`; the client then hands back the same request.
   */
  async #results(job: Job): Promise<JobOutcome> {
    const rows: Row[] = [];
    let affected = 0;
    let request: QueryResultsOptions | null = {
      autoPaginate: false,
      ...(this.#pageSize === undefined ? {} : { maxResults: this.#pageSize }),
    };
    while (request) {
      const [page, next, response] = await job.getQueryResults(request);
      for (const row of page) rows.push(plainRow(row));
      const changed = response && 'numDmlAffectedRows' in response ? response.numDmlAffectedRows : undefined;
      if (changed !== undefined && changed !== null) affected = Number(changed);
      request = next as QueryResultsOptions | null;
    }
    return { rows, affected };
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error(`the BigQuery warehouse ${this.table} is closed`);
  }

  #serialised<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#inserts.then(work, work);
    this.#inserts = next.catch(() => {});
    return next;
  }
}

function clientFor(options: BigQueryWarehouseOptions): BigQuery {
  // The client sends every request to BIGQUERY_EMULATOR_HOST when it is set, whatever apiEndpoint says.
  const endpoint = process.env.BIGQUERY_EMULATOR_HOST || options.apiEndpoint;
  return new BigQuery({
    projectId: options.projectId,
    location: options.location,
    apiEndpoint: options.apiEndpoint,
    // Retries are this adapter's (#run): the client's look at the HTTP status
    // only (not at a 403's reason), and cannot rerun a job that failed.
    retryOptions: { autoRetry: false },
    ...(endpoint?.startsWith('http://') ? { authClient: ANONYMOUS } : {}),
  });
}

/** Query job ids: letters, digits, `_` and `-`. */
function newJobId(): string {
  return `streamgauge_${randomUUID()}`;
}

/** A result row with plain values: TIMESTAMP as epoch ms, INT64 as a number, NULL as null. */
function plainRow(row: Row): Row {
  const plain: Row = {};
  for (const [name, value] of Object.entries(row)) plain[name] = plainValue(value);
  return plain;
}

function plainValue(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (value instanceof BigQueryTimestamp) return Date.parse(value.value);
  if (value instanceof BigQueryInt) return Number(value);
  return value;
}
