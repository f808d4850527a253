import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Just enough of the BigQuery v2 REST API, on 127.0.0.1, for the real
 * `@google-cloud/bigquery` client pointed at it with `apiEndpoint`: the
 * calls that client makes to run a query job and read its result
 * (jobs.insert, jobs.getQueryResults, jobs.get for a job it adopts). It
 * records every request, answers query jobs with what the test says, and
 * fails requests on demand. It does not run SQL.
 */

export type RequestKind = 'jobs.insert' | 'jobs.get' | 'jobs.getQueryResults' | 'other';

export interface RecordedRequest {
  readonly kind: RequestKind;
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
}

export interface ParameterType {
  readonly type: string;
  readonly arrayType?: ParameterType;
  readonly structTypes?: readonly { readonly name: string; readonly type: ParameterType }[];
}

export interface ParameterValue {
  readonly value?: string | number | boolean | null;
  readonly arrayValues?: readonly ParameterValue[];
  readonly structValues?: Readonly<Record<string, ParameterValue>>;
}

export interface QueryParameter {
  readonly name?: string;
  readonly parameterType: ParameterType;
  readonly parameterValue: ParameterValue;
}

/** The `configuration.query` of a jobs.insert request. */
export interface JobQuery {
  readonly query: string;
  readonly useLegacySql?: boolean;
  readonly parameterMode?: string;
  readonly queryParameters?: readonly QueryParameter[];
}

export interface JobInsert {
  readonly jobReference: { readonly projectId: string; readonly jobId: string; readonly location?: string };
  readonly configuration: { readonly query: JobQuery };
}

export interface Field {
  readonly name: string;
  readonly type: 'STRING' | 'FLOAT' | 'INTEGER' | 'TIMESTAMP' | 'BOOLEAN';
}

export interface ErrorReply {
  readonly status: number;
  readonly reason: string;
  readonly message?: string;
}

/** What a query job yields: rows (TIMESTAMP values as epoch ms), a DML count, or a failure. */
export type Outcome =
  | {
      readonly fields: readonly Field[];
      readonly rows: readonly (readonly unknown[])[];
      /** Rows per page when the request names no maxResults; default all. */
      readonly pageSize?: number;
      /** getQueryResults calls answered `jobComplete: false` first. */
      readonly runningPolls?: number;
    }
  | { readonly affectedRows: number }
  | { readonly error: ErrorReply };

interface StoredJob {
  readonly insert: JobInsert;
  readonly outcome: Outcome;
  polls: number;
}

interface Failure {
  readonly kind: RequestKind;
  readonly reply: ErrorReply;
  /** Do the work, then answer the error anyway (a lost response). */
  readonly afterDoing: boolean;
}

const ROUTES: readonly { method: string; pattern: RegExp; kind: RequestKind }[] = [
  { method: 'POST', pattern: /^\/bigquery\/v2\/projects\/[^/]+\/jobs$/, kind: 'jobs.insert' },
  { method: 'GET', pattern: /^\/bigquery\/v2\/projects\/[^/]+\/jobs\/([^/]+)$/, kind: 'jobs.get' },
  {
    method: 'GET',
    pattern: /^\/bigquery\/v2\/projects\/[^/]+\/queries\/([^/]+)$/,
    kind: 'jobs.getQueryResults',
  },
];

export class FakeBigQuery {
  readonly requests: RecordedRequest[] = [];
  /** Answers each new query job; default an empty result. */
  answer: (query: JobQuery) => Outcome = () => ({ fields: [], rows: [] });
  readonly #server = createServer((request, response) => void this.#handle(request, response));
  readonly #jobs = new Map<string, StoredJob>();
  #failures: Failure[] = [];

  static async start(): Promise<FakeBigQuery> {
    const fake = new FakeBigQuery();
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  /** The `apiEndpoint` to give the client. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Jobs created (an insert answered 409 creates none). */
  get jobsCreated(): number {
    return this.#jobs.size;
  }

  /** Answers the next `times` requests of `kind` with an error. */
  failNext(
    kind: RequestKind,
    reply: ErrorReply,
    options: { times?: number; afterDoing?: boolean } = {},
  ): void {
    for (let i = 0; i < (options.times ?? 1); i++) {
      this.#failures.push({ kind, reply, afterDoing: options.afterDoing ?? false });
    }
  }

  of(kind: RequestKind): RecordedRequest[] {
    return this.requests.filter((r) => r.kind === kind);
  }

  /** The bodies of the jobs.insert requests, in order. */
  jobInserts(): JobInsert[] {
    return this.of('jobs.insert').map((r) => r.body as JobInsert);
  }

  reset(): void {
    this.requests.length = 0;
    this.#jobs.clear();
    this.#failures = [];
    this.answer = () => ({ fields: [], rows: [] });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(request.url ?? '/', 'http://fake');
    const method = request.method ?? 'GET';
    const route = ROUTES.find((r) => r.method === method && r.pattern.test(url.pathname));
    const kind = route?.kind ?? 'other';
    this.requests.push({
      kind,
      method,
      path: url.pathname,
      query: url.searchParams,
      headers: request.headers,
      body: text ? JSON.parse(text) : undefined,
    });
    const failure = this.#takeFailure(kind);
    if (failure && !failure.afterDoing) return send(response, ...errorBody(failure.reply));
    const id = decodeURIComponent(route?.pattern.exec(url.pathname)?.[1] ?? '');
    const [status, body] =
      kind === 'jobs.insert'
        ? this.#insert(JSON.parse(text) as JobInsert)
        : kind === 'jobs.get'
          ? this.#get(id)
          : kind === 'jobs.getQueryResults'
            ? this.#results(id, url.searchParams)
            : errorBody({ status: 501, reason: 'notImplemented', message: `${method} ${url.pathname}` });
    if (failure) return send(response, ...errorBody(failure.reply));
    send(response, status, body);
  }

  #takeFailure(kind: RequestKind): Failure | undefined {
    const at = this.#failures.findIndex((f) => f.kind === kind);
    return at < 0 ? undefined : this.#failures.splice(at, 1)[0];
  }

  #insert(insert: JobInsert): [number, unknown] {
    const { jobId, projectId } = insert.jobReference;
    if (this.#jobs.has(jobId)) {
      return errorBody({
        status: 409,
        reason: 'duplicate',
        message: `Already Exists: Job ${projectId}:${jobId}`,
      });
    }
    const job: StoredJob = { insert, outcome: this.answer(insert.configuration.query), polls: 0 };
    this.#jobs.set(jobId, job);
    return [200, resource(job)];
  }

  #get(id: string): [number, unknown] {
    const job = this.#jobs.get(id);
    return job
      ? [200, resource(job)]
      : errorBody({ status: 404, reason: 'notFound', message: `Not found: Job ${id}` });
  }

  #results(id: string, query: URLSearchParams): [number, unknown] {
    const job = this.#jobs.get(id);
    if (!job) return errorBody({ status: 404, reason: 'notFound', message: `Not found: Job ${id}` });
    const { outcome } = job;
    if ('error' in outcome) return errorBody(outcome.error);
    const base = { kind: 'bigquery#getQueryResultsResponse', jobReference: job.insert.jobReference };
    if ('affectedRows' in outcome) {
      return [
        200,
        { ...base, jobComplete: true, totalRows: '0', numDmlAffectedRows: String(outcome.affectedRows) },
      ];
    }
    if (job.polls++ < (outcome.runningPolls ?? 0)) return [200, { ...base, jobComplete: false }];
    const start = Number(query.get('pageToken') ?? 0);
    const size = Number(query.get('maxResults') ?? outcome.pageSize ?? outcome.rows.length);
    const end = Math.min(start + size, outcome.rows.length);
    return [
      200,
      {
        ...base,
        jobComplete: true,
        totalRows: String(outcome.rows.length),
        schema: { fields: outcome.fields.map((f) => ({ ...f, mode: 'NULLABLE' })) },
        rows: outcome.rows
          .slice(start, end)
          .map((row) => ({ f: row.map((v, i) => ({ v: cell(outcome.fields[i], v) })) })),
        ...(end < outcome.rows.length ? { pageToken: String(end) } : {}),
      },
    ];
  }
}

/** The job resource, as jobs.insert and jobs.get return it: done, or failed. */
function resource(job: StoredJob): unknown {
  const failed = 'error' in job.outcome ? job.outcome.error : undefined;
  const error = failed && { reason: failed.reason, message: failed.message ?? failed.reason };
  return {
    kind: 'bigquery#job',
    id: `${job.insert.jobReference.projectId}:${job.insert.jobReference.jobId}`,
    jobReference: { location: 'US', ...job.insert.jobReference },
    configuration: job.insert.configuration,
    status: error ? { state: 'DONE', errorResult: error, errors: [error] } : { state: 'DONE' },
    statistics:
      'affectedRows' in job.outcome
        ? { query: { numDmlAffectedRows: String(job.outcome.affectedRows) } }
        : {},
  };
}

/** A value as the REST API writes it in a row: a string (TIMESTAMP as int64 µs, what the client asks for), or null. */
function cell(field: Field | undefined, value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (field?.type === 'TIMESTAMP') return String(BigInt(value as number) * 1000n);
  return String(value);
}

function errorBody(reply: ErrorReply): [number, unknown] {
  const message = reply.message ?? reply.reason;
  return [
    reply.status,
    { error: { code: reply.status, message, errors: [{ message, domain: 'global', reason: reply.reason }] } },
  ];
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  response.end(JSON.stringify(body));
}
