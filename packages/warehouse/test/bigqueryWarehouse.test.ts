import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BigQueryWarehouse, type BigQueryWarehouseOptions } from '../src/bigquery/bigqueryWarehouse.ts';
import { backfillStatements, bigquery, COLUMNS, rowOf, type WarehouseRow } from '../src/index.ts';
import {
  FakeBigQuery,
  type JobInsert,
  type ParameterValue,
  type QueryParameter,
} from './support/fakeBigQuery.ts';

// The real client, against a local fake of the REST API (support/fakeBigQuery.ts).
let fake: FakeBigQuery;
// The client sends everything to BIGQUERY_EMULATOR_HOST when set: keep a developer's out of this file.
const emulatorHost = process.env.BIGQUERY_EMULATOR_HOST;

beforeAll(async () => {
  delete process.env.BIGQUERY_EMULATOR_HOST;
  fake = await FakeBigQuery.start();
});
afterAll(async () => {
  await fake.close();
  if (emulatorHost !== undefined) process.env.BIGQUERY_EMULATOR_HOST = emulatorHost;
});
beforeEach(() => fake.reset());

const TABLE = '`water-test.telemetry.readings`';
const at = Date.UTC(2026, 10, 20, 12, 0, 0, 123);

function open(options: Partial<BigQueryWarehouseOptions> = {}): BigQueryWarehouse {
  return BigQueryWarehouse.create({
    projectId: 'water-test',
    dataset: 'telemetry',
    apiEndpoint: fake.endpoint,
    retryBaseDelayMs: 1,
    ...options,
  });
}

function params(insert: JobInsert | undefined): Map<string, QueryParameter> {
  return new Map((insert?.configuration.query.queryParameters ?? []).map((p) => [p.name ?? '', p]));
}

function row(node: string, timestamp: number, fields: Partial<WarehouseRow> = {}): WarehouseRow {
  return { ...rowOf({ node_id: node, timestamp }, { entry: `${at + 5000}-0`, source: 'gw-1' }), ...fields };
}

describe('BigQueryWarehouse.select', () => {
  const fields = [
    { name: 'node_id', type: 'STRING' },
    { name: 'pane', type: 'FLOAT' },
    { name: 'flow_mean', type: 'FLOAT' },
    { name: 'n', type: 'INTEGER' },
    { name: 'newest', type: 'TIMESTAMP' },
  ] as const;
  const rows = [
    ['A', 1, 1.5, 3, at],
    ['A', 2, null, 0, at + 60_000],
    ['B', 1, -0.25, 7, at],
    ['C', 1, 4, 1, null],
    ['D', 1, 1e-9, 2, at + 1],
    ['E', 3, 2.5, 9, at + 2],
    ['F', 4, null, null, at + 3],
  ];
  const expected = rows.map(([node_id, pane, flow_mean, n, newest]) => ({
    node_id,
    pane,
    flow_mean,
    n,
    newest,
  }));

  it('returns every row of every page, in order, numbers as numbers and NULLs as null', async () => {
    fake.answer = () => ({ fields, rows });
    const warehouse = open({ pageSize: 3 });
    expect(await warehouse.select({ sql: 'SELECT 1', params: {} })).toEqual(expected);
    const pages = fake.of('jobs.getQueryResults');
    expect(pages.map((r) => r.query.get('pageToken'))).toEqual([null, '3', '6']);
    expect(pages.map((r) => r.query.get('maxResults'))).toEqual(['3', '3', '3']);
    expect(fake.of('jobs.insert')).toHaveLength(1);
  });

  it('follows the pages BigQuery chooses, and waits while the job is still running', async () => {
    fake.answer = () => ({ fields, rows, pageSize: 2, runningPolls: 2 });
    const selected = await open().select({ sql: 'SELECT 1', params: {} });
    expect(selected).toEqual(expected);
    expect(typeof selected[0]?.pane).toBe('number');
    const pages = fake.of('jobs.getQueryResults');
    expect(pages.map((r) => r.query.get('pageToken'))).toEqual([null, null, null, '2', '4', '6']);
    expect(pages.every((r) => !r.query.has('maxResults'))).toBe(true);
  });

  it('sends the statement as it is, with named parameters typed INT64 and TIMESTAMP, where configured', async () => {
    const sql = 'SELECT @pane_ms AS p FROM `water-test.telemetry.readings` WHERE `timestamp` >= @from';
    const from = Date.UTC(2026, 0, 1, 23, 59, 59, 999);
    await open({ location: 'EU' }).select({
      sql,
      params: {
        from: { type: 'TIMESTAMP', value: from },
        pane_ms: { type: 'INT64', value: 60_000 },
        cut_seq: { type: 'INT64', value: Number.MAX_SAFE_INTEGER },
      },
    });
    const [insert] = fake.jobInserts();
    const config = insert?.configuration.query;
    expect(config?.query).toBe(sql);
    expect(config?.useLegacySql).toBe(false);
    expect(config?.parameterMode).toBe('named');
    const sent = params(insert);
    expect(sent.get('from')?.parameterType).toEqual({ type: 'TIMESTAMP' });
    const instant = String(sent.get('from')?.parameterValue.value);
    expect(instant).toBe('2026-01-01T23:59:59.999Z');
    expect(Date.parse(instant)).toBe(from);
    expect(sent.get('pane_ms')).toMatchObject({
      parameterType: { type: 'INT64' },
      parameterValue: { value: '60000' },
    });
    expect(sent.get('cut_seq')?.parameterValue.value).toBe('9007199254740991');
    expect(insert?.jobReference.location).toBe('EU');
    expect(fake.of('jobs.getQueryResults')[0]?.query.get('location')).toBe('EU');
    // A plain-http endpoint gets no credentials (nor a token request to Google).
    expect(fake.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it('runs the backfill statements with their parameters typed', async () => {
    const warehouse = open();
    const now = Date.UTC(2026, 10, 20, 12, 34, 56, 789);
    const statements = backfillStatements(bigquery, warehouse.table, {
      now,
      aheadMs: 5_000,
      cutTime: now,
    });
    const nodes = statements.find((s) => s.kind === 'nodes');
    const panes = statements.find((s) => s.kind === 'panes');
    for (const { statement } of [panes, nodes].flatMap((s) => (s ? [s] : []))) {
      expect(statement.sql).toContain(`FROM ${TABLE}`);
      await warehouse.select(statement);
      const insert = fake.jobInserts().at(-1);
      expect(insert?.configuration.query.query).toBe(statement.sql);
      const sent = params(insert);
      expect([...sent.keys()].sort()).toEqual(Object.keys(statement.params).sort());
      for (const [name, param] of Object.entries(statement.params)) {
        const { parameterType, parameterValue } = sent.get(name) ?? {};
        expect(parameterType, name).toEqual({ type: param.type });
        const value = String(parameterValue?.value);
        expect(param.type === 'TIMESTAMP' ? Date.parse(value) : Number(value), name).toBe(param.value);
      }
    }
    expect(params(fake.jobInserts()[0]).get('pane_ms')?.parameterType.type).toBe('INT64');
    expect(params(fake.jobInserts()[0]).get('cut_time')?.parameterValue.value).toBe(
      new Date(now).toISOString(),
    );
  });
});

describe('BigQueryWarehouse retries', () => {
  it('retries 503 with backoff, under the same job id, and succeeds', async () => {
    fake.answer = () => ({ fields: [{ name: 'x', type: 'FLOAT' }], rows: [[1]] });
    fake.failNext(
      'jobs.insert',
      { status: 503, reason: 'backendError', message: 'Service unavailable' },
      { times: 2 },
    );
    expect(await open().select({ sql: 'SELECT 1', params: {} })).toEqual([{ x: 1 }]);
    const ids = fake.jobInserts().map((i) => i.jobReference.jobId);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(1);
    expect(fake.jobsCreated).toBe(1);
  });

  it('retries 429 rateLimitExceeded on reading the result, waiting for the job it created', async () => {
    fake.answer = () => ({ fields: [{ name: 'x', type: 'FLOAT' }], rows: [[2]] });
    fake.failNext('jobs.getQueryResults', { status: 429, reason: 'rateLimitExceeded' }, { times: 2 });
    expect(await open().select({ sql: 'SELECT 2', params: {} })).toEqual([{ x: 2 }]);
    expect(fake.of('jobs.getQueryResults')).toHaveLength(3);
    // Attempts 2 and 3 find the job there (409) and adopt it: the query ran once.
    expect(fake.jobsCreated).toBe(1);
    expect(fake.of('jobs.get')).toHaveLength(2);
  });

  it('retries 403 rateLimitExceeded (a reason the client alone would not retry)', async () => {
    fake.failNext('jobs.insert', {
      status: 403,
      reason: 'rateLimitExceeded',
      message: 'Exceeded rate limits',
    });
    expect(await open().select({ sql: 'SELECT 3', params: {} })).toEqual([]);
    expect(fake.of('jobs.insert')).toHaveLength(2);
  });

  it('runs a job that failed with backendError again, under a new id', async () => {
    let jobs = 0;
    fake.answer = () =>
      jobs++ === 0
        ? { error: { status: 500, reason: 'backendError', message: 'Backend error. Job aborted.' } }
        : { fields: [{ name: 'x', type: 'FLOAT' }], rows: [[4]] };
    expect(await open().select({ sql: 'SELECT 4', params: {} })).toEqual([{ x: 4 }]);
    const ids = fake.jobInserts().map((i) => i.jobReference.jobId);
    expect(ids).toHaveLength(3); // created (failed), 409 for the same id, created under a new one
    expect(ids[0]).toBe(ids[1]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(fake.jobsCreated).toBe(2);
  });

  it('fails at once on 400 invalidQuery, naming the table and the reason', async () => {
    fake.failNext('jobs.insert', {
      status: 400,
      reason: 'invalidQuery',
      message: 'Syntax error: Unexpected identifier "SELEC" at [1:1]',
    });
    await expect(open().select({ sql: 'SELEC 1', params: {} })).rejects.toThrow(
      `BigQuery query on ${TABLE} failed: HTTP 400: invalidQuery: Syntax error: Unexpected identifier "SELEC" at [1:1]`,
    );
    expect(fake.requests).toHaveLength(1);
  });

  it('fails at once on 404 notFound', async () => {
    fake.failNext('jobs.insert', {
      status: 404,
      reason: 'notFound',
      message: 'Not found: Table water-test:telemetry.readings',
    });
    await expect(open().count()).rejects.toThrow(
      /count on `water-test\.telemetry\.readings` failed: HTTP 404: notFound/,
    );
    expect(fake.requests).toHaveLength(1);
  });

  it('gives up after maxRetries retries', async () => {
    fake.failNext('jobs.insert', { status: 503, reason: 'backendError' }, { times: 10 });
    await expect(open({ maxRetries: 2 }).select({ sql: 'SELECT 1', params: {} })).rejects.toThrow(
      `BigQuery query on ${TABLE} failed after 3 attempts: HTTP 503: backendError`,
    );
    expect(fake.of('jobs.insert')).toHaveLength(3);
  });
});

describe('BigQueryWarehouse.insert', () => {
  it('sends one MERGE with the rows as a typed ARRAY<STRUCT>, and counts what it inserted', async () => {
    fake.answer = () => ({ affectedRows: 2 });
    const rows = [
      row('A', at, { flow_rate: 1.5, pressure: 3, district_id: 'SELARGIUS', is_interpolated: false }),
      row('A', at, { flow_rate: 9 }),
      row('B', at + 86_400_000, { temperature: 14.25 }),
    ];
    expect(await open().insert(rows)).toEqual({ inserted: 2, duplicates: 1 });

    const [insert] = fake.jobInserts();
    const sql = insert?.configuration.query.query ?? '';
    expect(sql).toMatch(new RegExp(`^MERGE ${TABLE.replace(/[.`]/g, '\\$&')} AS T`));
    expect(sql).toContain('FROM UNNEST(@rows) WITH OFFSET AS ord');
    expect(sql).toContain('QUALIFY ROW_NUMBER() OVER (PARTITION BY `node_id`, `timestamp` ORDER BY ord) = 1');
    expect(sql).toContain('T.`timestamp` BETWEEN @min_ts AND @max_ts');
    expect(sql).toContain('WHEN NOT MATCHED THEN');
    expect(sql).not.toContain('WHEN MATCHED');
    expect(insert?.configuration.query.useLegacySql).toBe(false);

    const sent = params(insert);
    const rowsParam = sent.get('rows');
    expect(rowsParam?.parameterType.type).toBe('ARRAY');
    expect(rowsParam?.parameterType.arrayType?.type).toBe('STRUCT');
    const bigqueryType = { string: 'STRING', timestamp: 'TIMESTAMP', double: 'FLOAT64', boolean: 'BOOL' };
    expect(rowsParam?.parameterType.arrayType?.structTypes).toEqual(
      COLUMNS.map((c) => ({ name: c.name, type: { type: bigqueryType[c.type] } })),
    );
    const values = (rowsParam?.parameterValue.arrayValues ?? []).map((v) => v.structValues ?? {});
    expect(values).toHaveLength(3);
    const first: Record<string, ParameterValue> = values[0] ?? {};
    expect(first.node_id).toEqual({ value: 'A' });
    expect(first.timestamp).toEqual({ value: new Date(at).toISOString() });
    expect(first.ingestion_timestamp).toEqual({ value: new Date(at + 5000).toISOString() });
    expect(first.flow_rate).toEqual({ value: 1.5 });
    expect(first.temperature).toEqual({ value: null });
    expect(first.district_id).toEqual({ value: 'SELARGIUS' });
    expect(first.is_interpolated).toEqual({ value: false });
    expect(first.stream_entry).toEqual({ value: `${at + 5000}-0` });
    expect(values[1]?.flow_rate).toEqual({ value: 9 });
    expect(values[2]?.timestamp).toEqual({ value: new Date(at + 86_400_000).toISOString() });
    expect(Object.keys(first)).toEqual(COLUMNS.map((c) => c.name));

    expect(sent.get('min_ts')).toEqual({
      name: 'min_ts',
      parameterType: { type: 'TIMESTAMP' },
      parameterValue: { value: new Date(at).toISOString() },
    });
    expect(sent.get('max_ts')?.parameterValue.value).toBe(new Date(at + 86_400_000).toISOString());
  });

  it('splits a large call into statements of at most 5,000 rows, run in order', async () => {
    const sizes: number[] = [];
    fake.answer = (query) => {
      const count =
        params({ configuration: { query } } as JobInsert).get('rows')?.parameterValue.arrayValues?.length ??
        0;
      sizes.push(count);
      return { affectedRows: count - 1 };
    };
    const rows = Array.from({ length: 12_001 }, (_, i) => row(`N${i % 50}`, at + i));
    expect(await open().insert(rows)).toEqual({ inserted: 11_998, duplicates: 3 });
    expect(sizes).toEqual([5_000, 5_000, 2_001]);
    const firsts = fake
      .jobInserts()
      .map((i) => params(i).get('rows')?.parameterValue.arrayValues?.[0]?.structValues?.timestamp?.value);
    expect(firsts).toEqual([at, at + 5_000, at + 10_000].map((t) => new Date(t).toISOString()));
  });

  it('keeps a statement to a few MB whatever the rows hold', async () => {
    fake.answer = () => ({ affectedRows: 1 });
    const big = 'x'.repeat(2 * 1024 * 1024);
    const rows = [0, 1, 2].map((i) => row('A', at + i, { source_file: big }));
    expect(await open().insert(rows)).toEqual({ inserted: 3, duplicates: 0 });
    expect(fake.jobInserts()).toHaveLength(3);
  });

  it('is safe to repeat when the answer to a write was lost: the MERGE ran once', async () => {
    fake.answer = () => ({ affectedRows: 1 });
    fake.failNext('jobs.insert', { status: 503, reason: 'backendError' }, { afterDoing: true });
    expect(await open().insert([row('A', at)])).toEqual({ inserted: 1, duplicates: 0 });
    expect(fake.jobsCreated).toBe(1);
    expect(fake.of('jobs.insert')).toHaveLength(2);
  });

  it('sends nothing for no rows', async () => {
    expect(await open().insert([])).toEqual({ inserted: 0, duplicates: 0 });
    expect(fake.requests).toHaveLength(0);
  });
});

describe('BigQueryWarehouse', () => {
  it('counts the rows of its table', async () => {
    fake.answer = () => ({ fields: [{ name: 'n', type: 'INTEGER' }], rows: [[42]] });
    expect(await open().count()).toBe(42);
    expect(fake.jobInserts()[0]?.configuration.query.query).toBe(`SELECT COUNT(*) AS n FROM ${TABLE}`);
  });

  it('names its table in full and refuses a name that would break out of the quoting', () => {
    expect(open({ table: 'readings_v2' }).table).toBe('`water-test.telemetry.readings_v2`');
    expect(open().dialect).toBe(bigquery);
    expect(() => open({ dataset: 'd`; DROP TABLE x; --' })).toThrow('not a BigQuery name');
  });

  it('refuses calls once closed', async () => {
    const warehouse = open();
    await warehouse.close();
    await expect(warehouse.select({ sql: 'SELECT 1', params: {} })).rejects.toThrow(`${TABLE} is closed`);
    await expect(warehouse.insert([row('A', at)])).rejects.toThrow('closed');
    await expect(warehouse.count()).rejects.toThrow('closed');
    expect(fake.requests).toHaveLength(0);
  });
});
