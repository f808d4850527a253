import {
  emptyPane,
  PANE,
  PANE_MEASUREMENTS,
  type PaneMeasurement,
  type Reading,
  RINGS,
  STAT_AT,
} from '@streamgauge/core';
import type { Dialect, Param, Statement } from './dialect.ts';

/** The reading column behind each pane measurement. */
const MEASURED: Record<PaneMeasurement, string> = {
  flow: 'flow_rate',
  pressure: 'pressure',
  temperature: 'temperature',
  volume: 'volume',
};

const METADATA_COLUMNS = ['node_name', 'node_type', 'district_id'] as const;
const LATEST_COLUMNS = ['flow_rate', 'pressure', 'temperature', 'volume'] as const;

const DAY_MS = 86_400_000;

/**
 * What a backfill reads: event times `[from, until]`. `cutTime` splits the
 * rows that came through the stream: those accepted before it are summed
 * into panes (every shard's archive is past them); later ones are returned
 * one by one, for the caller to keep those within their own shard's cut.
 * Imported rows are always summed.
 */
export interface Scope {
  readonly from: number;
  readonly until: number;
  readonly cutTime: number;
}

export interface PaneStatement {
  readonly kind: 'panes';
  /** Index into RINGS (the ring the panes belong to; the series' ring takes full panes too). */
  readonly ring: number;
  readonly statement: Statement;
}

export interface NodeStatement {
  readonly kind: 'nodes';
  readonly statement: Statement;
}

export interface RecentStatement {
  readonly kind: 'recent';
  readonly statement: Statement;
}

export type BackfillStatement = PaneStatement | NodeStatement | RecentStatement;

/**
 * The statements of one backfill at `now`: per pane size, the panes of the
 * ring the live windows keep (the hourly ring's 30 days in one statement
 * per day, so they run in parallel and each reads one partition), and the
 * nodes' latest values and metadata, all over the rows accepted before
 * `cutTime`; and the rows accepted since, one by one. `aheadMs` is how far
 * ahead of the clock the live windows accept a reading.
 */
export function backfillStatements(
  dialect: Dialect,
  table: string,
  /** `since`: only panes from this event time on (an hour boundary); latest values, metadata and recent rows still over the horizon. */
  options: { now: number; aheadMs: number; cutTime: number; since?: number },
): BackfillStatement[] {
  const { now, aheadMs, cutTime } = options;
  const since = options.since ?? Number.NEGATIVE_INFINITY;
  const until = now + aheadMs;
  const statements: BackfillStatement[] = [];
  let horizon = now;
  RINGS.forEach(({ paneMs, history }, ring) => {
    const ringStart = (Math.floor(now / paneMs) - history) * paneMs;
    horizon = Math.min(horizon, ringStart);
    // Every pane holding a reading at or after `since` is read whole (panes may be longer than an hour).
    const from = Math.max(ringStart, Math.floor(since / paneMs) * paneMs);
    // Chunks end on day boundaries: a day is a whole number of every pane size.
    for (let start = from; start <= until; ) {
      const end = Math.min((Math.floor(start / DAY_MS) + 1) * DAY_MS - 1, until);
      statements.push({
        kind: 'panes',
        ring,
        statement: paneStatement(dialect, table, paneMs, { from: start, until: end, cutTime }),
      });
      start = end + 1;
    }
  });
  const scope = { from: horizon, until, cutTime };
  statements.push({ kind: 'nodes', statement: nodeStatement(dialect, table, scope) });
  // Recent rows over the whole horizon too: the newest reading, whatever its
  // event time, is the node's latest value (panes before `since` are left
  // alone by the reconcile itself).
  statements.push({ kind: 'recent', statement: recentStatement(dialect, table, scope) });
  return statements;
}

function scopeFilter(d: Dialect, rows: 'summed' | 'recent'): string {
  const ts = d.column('timestamp');
  const ingested = d.column('ingestion_timestamp');
  const entry = d.column('stream_entry');
  return [
    `${ts} >= ${d.param('from')} AND ${ts} <= ${d.param('until')}`,
    rows === 'summed'
      ? `AND (${entry} IS NULL OR ${ingested} < ${d.param('cut_time')})`
      : `AND ${entry} IS NOT NULL AND ${ingested} >= ${d.param('cut_time')}`,
  ].join('\n  ');
}

function scopeParams(scope: Scope): Record<string, Param> {
  return {
    from: { type: 'TIMESTAMP', value: scope.from },
    until: { type: 'TIMESTAMP', value: scope.until },
    cut_time: { type: 'TIMESTAMP', value: scope.cutTime },
  };
}

/**
 * Per node and pane of `paneMs`, what a live pane holds (pane.ts): count,
 * readings flowing, newest event time, and per measurement n, mean, M2
 * (population variance × n), min and max.
 */
export function paneStatement(d: Dialect, table: string, paneMs: number, scope: Scope): Statement {
  const ts = d.column('timestamp');
  const stats = PANE_MEASUREMENTS.flatMap((m) => {
    const x = d.column(MEASURED[m]);
    return [
      `${d.double(`COUNT(${x})`)} AS ${m}_n`,
      `${d.double(`AVG(${x})`)} AS ${m}_mean`,
      `${d.double(`VAR_POP(${x}) * COUNT(${x})`)} AS ${m}_m2`,
      `${d.double(`MIN(${x})`)} AS ${m}_min`,
      `${d.double(`MAX(${x})`)} AS ${m}_max`,
    ];
  });
  const sql = [
    'SELECT',
    `  ${d.column('node_id')} AS node_id,`,
    `  ${d.double(`FLOOR(${d.epochMs(ts)} / ${d.param('pane_ms')})`)} AS pane,`,
    `  ${d.double('COUNT(*)')} AS count,`,
    `  ${d.double(d.countIf(`${d.column('flow_rate')} > 0`))} AS flowing,`,
    `  ${d.double(`MAX(${d.epochMs(ts)})`)} AS newest,`,
    `  ${stats.join(',\n  ')}`,
    `FROM ${table}`,
    `WHERE ${scopeFilter(d, 'summed')}`,
    'GROUP BY 1, 2',
  ].join('\n');
  return { sql, params: { ...scopeParams(scope), pane_ms: { type: 'INT64', value: paneMs } } };
}

/**
 * Per node, the newest reading's values (`latest`) and each metadata field's
 * newest non-null value with its event time, as the live windows keep them.
 */
export function nodeStatement(d: Dialect, table: string, scope: Scope): Statement {
  const ts = d.column('timestamp');
  const id = d.column('node_id');
  const columns = [id, ts, ...LATEST_COLUMNS.map(d.column), ...METADATA_COLUMNS.map(d.column)];
  const meta = METADATA_COLUMNS.flatMap((c) => [
    `${d.latestNonNull(d.column(c), ts)} AS ${c}`,
    `MAX(CASE WHEN ${d.column(c)} IS NOT NULL THEN ${ts} END) AS ${c}_at`,
  ]);
  const sql = [
    'WITH scope AS (',
    `  SELECT ${columns.join(', ')}`,
    `  FROM ${table}`,
    `  WHERE ${scopeFilter(d, 'summed')}`,
    '), newest AS (',
    `  SELECT ${id} AS node_id, MAX(${ts}) AS latest_at,`,
    `    ${meta.join(',\n    ')}`,
    `  FROM scope GROUP BY ${id}`,
    ')',
    'SELECT',
    '  n.node_id AS node_id,',
    `  ${d.double(d.epochMs('n.latest_at'))} AS latest_at,`,
    ...LATEST_COLUMNS.map((c) => `  ${d.double(`s.${d.column(c)}`)} AS latest_${c},`),
    METADATA_COLUMNS.map((c) => `  n.${c} AS ${c}, ${d.double(d.epochMs(`n.${c}_at`))} AS ${c}_at`).join(
      ',\n',
    ),
    `FROM newest n JOIN scope s ON s.${id} = n.node_id AND s.${ts} = n.latest_at`,
  ].join('\n');
  return { sql, params: scopeParams(scope) };
}

/** The rows accepted through the stream since `cutTime`, with the entry that carried each. */
export function recentStatement(d: Dialect, table: string, scope: Scope): Statement {
  const values = [...LATEST_COLUMNS, ...METADATA_COLUMNS].map((c) => `${d.column(c)} AS ${c}`);
  const sql = [
    'SELECT',
    `  ${d.column('node_id')} AS node_id, ${d.double(d.epochMs(d.column('timestamp')))} AS timestamp,`,
    `  ${values.join(', ')}, ${d.column('stream_entry')} AS stream_entry`,
    `FROM ${table}`,
    `WHERE ${scopeFilter(d, 'recent')}`,
  ].join('\n');
  return { sql, params: scopeParams(scope) };
}

type Row = Readonly<Record<string, unknown>>;

/** A row of the recent statement as a reading, with the stream entry that carried it. */
export function readingOfRow(row: Row): { reading: Reading; entry: string } {
  const reading: Record<string, unknown> = { node_id: String(row.node_id), timestamp: Number(row.timestamp) };
  for (const c of LATEST_COLUMNS) if (row[c] !== null && row[c] !== undefined) reading[c] = Number(row[c]);
  for (const c of METADATA_COLUMNS) if (row[c] !== null && row[c] !== undefined) reading[c] = String(row[c]);
  return { reading: reading as unknown as Reading, entry: String(row.stream_entry) };
}

/** A row of a pane statement as a pane (pane.ts layout: only the statistics a pane keeps). */
export function paneOfRow(row: Row): Float64Array {
  const pane = emptyPane();
  pane[PANE.count] = Number(row.count);
  pane[PANE.flowing] = Number(row.flowing);
  pane[PANE.newest] = Number(row.newest);
  for (const m of PANE_MEASUREMENTS) {
    const n = Number(row[`${m}_n`] ?? 0);
    if (n === 0) continue;
    const { n: nAt, mean, m2, min, max } = STAT_AT[m];
    if (nAt !== undefined) pane[nAt] = n;
    if (mean !== undefined) pane[mean] = Number(row[`${m}_mean`]);
    if (m2 !== undefined) pane[m2] = Number(row[`${m}_m2`]);
    if (min !== undefined) pane[min] = Number(row[`${m}_min`]);
    if (max !== undefined) pane[max] = Number(row[`${m}_max`]);
  }
  return pane;
}

export interface NodeRow {
  readonly nodeId: string;
  readonly latest: {
    readonly timestamp: number;
    readonly flow_rate?: number;
    readonly pressure?: number;
    readonly temperature?: number;
    readonly volume?: number;
  };
  readonly metadata: Partial<Record<(typeof METADATA_COLUMNS)[number], { value: string; timestamp: number }>>;
}

/** A row of a node statement as the live windows' latest values and metadata. */
export function nodeOfRow(row: Row): NodeRow {
  const latest: Record<string, number> = { timestamp: Number(row.latest_at) };
  for (const c of LATEST_COLUMNS) {
    const value = row[`latest_${c}`];
    if (value !== null && value !== undefined) latest[c] = Number(value);
  }
  const metadata: Record<string, { value: string; timestamp: number }> = {};
  for (const c of METADATA_COLUMNS) {
    const value = row[c];
    if (value !== null && value !== undefined)
      metadata[c] = { value: String(value), timestamp: Number(row[`${c}_at`]) };
  }
  return { nodeId: String(row.node_id), latest: latest as NodeRow['latest'], metadata };
}
