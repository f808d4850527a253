/**
 * The two SQL dialects the warehouse speaks. A query is built once, from
 * the same shape, for each: only these spellings differ.
 */
export type ParamType = 'INT64' | 'TIMESTAMP';

/** A bound parameter; a TIMESTAMP's value is epoch ms. */
export interface Param {
  readonly type: ParamType;
  readonly value: number;
}

/** A parameterized statement: the SQL text for one dialect and its parameters by name. */
export interface Statement {
  readonly sql: string;
  readonly params: Readonly<Record<string, Param>>;
}

export interface Dialect {
  readonly name: 'duckdb' | 'bigquery';
  /** A reference to parameter `name`. */
  param(name: string): string;
  /** A quoted column name. */
  column(name: string): string;
  /** A TIMESTAMP expression as epoch ms (an integer). */
  epochMs(expression: string): string;
  /** Cast to a 64-bit float (every number a query returns is one, so both clients return JS numbers). */
  double(expression: string): string;
  /** Rows where `condition` holds. */
  countIf(condition: string): string;
  /** The value of `expression` in the row with the greatest `orderBy`, NULLs of `expression` skipped. */
  latestNonNull(expression: string, orderBy: string): string;
}

export const duckdb: Dialect = {
  name: 'duckdb',
  param: (name) => `$${name}`,
  column: (name) => `"${name}"`,
  epochMs: (e) => `epoch_ms(${e})`,
  double: (e) => `CAST(${e} AS DOUBLE)`,
  countIf: (c) => `count_if(${c})`,
  // DuckDB's arg_max skips rows whose value is NULL.
  latestNonNull: (e, by) => `arg_max(${e}, ${by})`,
};

export const bigquery: Dialect = {
  name: 'bigquery',
  param: (name) => `@${name}`,
  column: (name) => `\`${name}\``,
  epochMs: (e) => `UNIX_MILLIS(${e})`,
  double: (e) => `CAST(${e} AS FLOAT64)`,
  countIf: (c) => `COUNTIF(${c})`,
  latestNonNull: (e, by) => `ARRAY_AGG(${e} IGNORE NULLS ORDER BY ${by} DESC LIMIT 1)[SAFE_OFFSET(0)]`,
};
