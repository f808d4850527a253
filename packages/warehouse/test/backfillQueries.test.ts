import {
  compareEntryIds,
  NodeWindows,
  PANE_SIZES,
  type Reading,
  RINGS,
  reconcileNode,
  STAT_AT,
  seededRandom,
  windowsFromPanes,
} from '@streamgauge/core';
import { describe, expect, it } from 'vitest';
import {
  backfillStatements,
  bigquery,
  DuckdbWarehouse,
  duckdb,
  nodeOfRow,
  paneOfRow,
  readingOfRow,
  rowOf,
} from '../src/index.ts';

const HOUR = 3_600_000;
const now = Date.UTC(2026, 10, 25, 12, 34, 56);
const aheadMs = 360_000;

/** Readings over 31 days for three nodes, some with measurements or metadata missing. */
function history(): Reading[] {
  const rand = seededRandom(7);
  const readings: Reading[] = [];
  for (const node of ['A', 'B', 'C']) {
    for (let t = now - 31 * 24 * HOUR; t <= now + 120_000; t += 7 * 60_000 + Math.floor(rand() * 60_000)) {
      readings.push({
        node_id: node,
        timestamp: t,
        ...(rand() > 0.1 && { flow_rate: rand() < 0.2 ? 0 : Math.round(rand() * 5000) / 100 }),
        ...(node !== 'C' && { pressure: 2 + rand() * 3 }),
        ...(rand() > 0.5 && { temperature: 10 + rand() * 8 }),
        ...(rand() > 0.95 && { node_name: `name-${node}-${t % 7}` }),
        ...(rand() > 0.97 && { district_id: `D${t % 3}` }),
      });
    }
  }
  return readings;
}

describe('backfill statements', () => {
  it('compute, on DuckDB, exactly the panes, latest values and metadata the live windows hold', async () => {
    const readings = history();
    const warehouse = await DuckdbWarehouse.open(':memory:');
    try {
      // Half through stream entries before the cut, some after it (to be replayed), some imported.
      const cut = `${now - HOUR}-5`;
      const origin = (i: number) =>
        i % 3 === 0
          ? { source: 'history.csv', importedAt: now - 2 * HOUR }
          : i % 3 === 1
            ? { entry: `${now - HOUR}-${i % 10}`, source: 'gw' }
            : { entry: `${now - 2 * HOUR}-0`, source: 'gw' };
      await warehouse.insert(readings.map((r, i) => rowOf(r, origin(i))));
      const within = readings.filter((_, i) => i % 3 !== 1 || i % 10 <= 5);
      expect(within.length).toBeLessThan(readings.length);

      // The independent computation: every reading within the cut added to live windows.
      const expected = new Map<string, NodeWindows>();
      for (const r of within) {
        let w = expected.get(r.node_id);
        if (w === undefined) {
          w = new NodeWindows(r.node_id, aheadMs);
          expected.set(r.node_id, w);
        }
        w.add(r, now);
      }

      const statements = backfillStatements(duckdb, warehouse.table, { now, aheadMs, cutTime: now - HOUR });
      const panes = new Map<string, number[]>();
      const nodes = new Map<string, ReturnType<typeof nodeOfRow>>();
      const recent: Reading[] = [];
      for (const statement of statements) {
        const rows = await warehouse.select(statement.statement);
        for (const row of rows) {
          if (statement.kind === 'recent') {
            const { reading, entry } = readingOfRow(row);
            expect(compareEntryIds(entry, `${now - HOUR}-0`)).toBeGreaterThanOrEqual(0);
            if (compareEntryIds(entry, cut) <= 0) recent.push(reading);
          } else if (statement.kind === 'nodes') {
            const node = nodeOfRow(row);
            nodes.set(node.nodeId, node);
          } else {
            const list = panes.get(String(row.node_id)) ?? [];
            list.push(statement.ring, Number(row.pane), ...paneOfRow(row));
            panes.set(String(row.node_id), list);
          }
        }
      }
      expect([...panes.keys()].sort()).toEqual(['A', 'B', 'C']);
      expect(recent.length).toBeGreaterThan(100);
      for (const [id, live] of expected) {
        const built = windowsFromPanes(id, aheadMs, Float64Array.from(panes.get(id) ?? []), now);
        const node = nodes.get(id);
        if (node) {
          built.latest = node.latest;
          built.metadata = { ...node.metadata };
        }
        for (const r of recent) if (r.node_id === id) built.add(r, now);
        let compared = 0;
        RINGS.forEach((_, r) => {
          const a = live.rings[r];
          const b = built.rings[r];
          if (a === undefined || b === undefined) throw new Error('ring missing');
          const current = a.paneOf(now);
          for (let pane = current - a.history; pane <= current + a.ahead; pane++) {
            const x = a.offsetOf(pane);
            const y = b.offsetOf(pane);
            // Both layouts (full panes, the series' hours) keep the reading count first.
            const count = x < 0 ? 0 : (a.data[x] as number);
            expect(y < 0 ? 0 : b.data[y], `${id} ring ${r} pane ${pane}`).toBe(count);
            if (count === 0) continue;
            compared++;
            for (let i = 0; i < a.width; i++) {
              const want = a.data[x + i] as number;
              const got = b.data[y + i] as number;
              if (Number.isFinite(want)) expect(got).toBeCloseTo(want, 6);
              else expect(got).toBe(want);
            }
          }
        });
        expect(compared, 'panes compared').toBeGreaterThan(280);
        // And within the reconcile's own tolerance: not one pane would be replaced.
        expect(reconcileNode(live, built, now, {})).toMatchObject({ changed: 0, identityChanged: false });
        expect(built.latest).toEqual(live.latest);
        expect(built.metadata).toEqual(live.metadata);
      }
      // Population variance × n is Welford's M2 (a pane with one value has none).
      const some = expected.get('A')?.evaluate('24h', now).pane;
      expect(some?.[STAT_AT.flow.n as number]).toBeGreaterThan(100);
    } finally {
      await warehouse.close();
    }
  });

  it('with `since`, read panes from that hour on only, and latest values and recent rows over the whole horizon', () => {
    const since = Math.floor((now - 6 * HOUR) / HOUR) * HOUR;
    const all = backfillStatements(duckdb, 'readings', { now, aheadMs, cutTime: now });
    const recent = backfillStatements(duckdb, 'readings', { now, aheadMs, cutTime: now, since });
    expect(recent.length).toBeLessThan(all.length);
    const from = (s: (typeof all)[number]) => s.statement.params.from?.value as number;
    for (const statement of recent) {
      // A pane holding `since` is read whole: from its start, for panes longer than an hour.
      if (statement.kind === 'panes') {
        const paneMs = RINGS[statement.ring]?.paneMs ?? 0;
        expect(from(statement)).toBeGreaterThanOrEqual(Math.floor(since / paneMs) * paneMs);
      } else
        expect(from(statement)).toBe(
          from(all.find((s) => s.kind === statement.kind) as (typeof all)[number]),
        );
    }
    expect(recent.filter((s) => s.kind === 'panes').map(from)).toContain(since);
  });

  it('speak BigQuery: backquoted names, typed named parameters, UNIX_MILLIS, COUNTIF, one statement per day of the hourly ring', () => {
    const table = '`proj.ds.readings`';
    const statements = backfillStatements(bigquery, table, { now, aheadMs, cutTime: 1764000000000 });
    const hourly = statements.filter((s) => s.kind === 'panes' && s.ring === PANE_SIZES.length - 1);
    expect(hourly.length).toBe(31);
    for (const { statement } of statements) {
      expect(statement.sql).toContain(`FROM ${table}`);
      expect(statement.sql).not.toMatch(/\$\w|"timestamp"|epoch_ms|count_if|arg_max/);
      expect(statement.params.from?.type).toBe('TIMESTAMP');
      expect(statement.params.cut_time).toEqual({ type: 'TIMESTAMP', value: 1764000000000 });
      for (const name of Object.keys(statement.params)) expect(statement.sql).toContain(`@${name}`);
    }
    const [first] = hourly;
    expect(first?.statement.sql).toContain('FLOOR(UNIX_MILLIS(`timestamp`) / @pane_ms)');
    expect(first?.statement.sql).toContain('COUNTIF(`flow_rate` > 0)');
    expect(first?.statement.sql).toContain('`stream_entry` IS NULL OR `ingestion_timestamp` < @cut_time');
    // Consecutive day chunks cover the window without a gap or an overlap.
    for (let i = 1; i < hourly.length; i++) {
      expect(hourly[i]?.statement.params.from?.value).toBe(
        (hourly[i - 1]?.statement.params.until?.value ?? 0) + 1,
      );
    }
    const nodes = statements.find((s) => s.kind === 'nodes');
    expect(nodes?.statement.sql).toContain(
      'ARRAY_AGG(`node_name` IGNORE NULLS ORDER BY `timestamp` DESC LIMIT 1)[SAFE_OFFSET(0)]',
    );
  });
});
