import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import { COLUMNS, DuckdbWarehouse, rowOf, type WarehouseRow } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'streamgauge-duckdb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const at = Date.UTC(2026, 10, 20, 12, 0, 0, 123);

describe('DuckdbWarehouse', () => {
  it('keeps one row per (node_id, timestamp): the first copy wins, across calls and within one', async () => {
    const warehouse = await DuckdbWarehouse.open(':memory:');
    try {
      const first = await warehouse.insert([
        rowOf(
          { node_id: 'A', timestamp: at, flow_rate: 1.5, pressure: 3 },
          { entry: `${at + 1000}-0`, source: 'gw-1' },
        ),
        rowOf({ node_id: 'A', timestamp: at, flow_rate: 9 }, { entry: `${at + 1000}-0`, source: 'gw-1' }),
        rowOf(
          { node_id: 'B', timestamp: at, temperature: 14.25, district_id: 'SELARGIUS' },
          { entry: `${at + 1000}-0`, source: 'gw-1' },
        ),
      ]);
      expect(first).toEqual({ inserted: 2, duplicates: 1 });
      const again = await warehouse.insert([
        rowOf({ node_id: 'A', timestamp: at, flow_rate: 7 }, { entry: `${at + 2000}-0`, source: 'gw-2' }),
        rowOf({ node_id: 'A', timestamp: at + 1, flow_rate: 2 }, { entry: `${at + 2000}-0`, source: 'gw-2' }),
      ]);
      expect(again).toEqual({ inserted: 1, duplicates: 1 });
      expect(await warehouse.count()).toBe(3);
      const rows = await warehouse.query(
        `SELECT node_id, epoch_ms("timestamp")::DOUBLE AS ts, flow_rate, pressure, temperature, district_id, source_file,
                epoch_ms(ingestion_timestamp)::DOUBLE AS ingested
         FROM readings ORDER BY node_id, "timestamp"`,
      );
      expect(rows).toEqual([
        {
          node_id: 'A',
          ts: at,
          flow_rate: 1.5,
          pressure: 3,
          temperature: null,
          district_id: null,
          source_file: 'gw-1',
          ingested: at + 1000,
        },
        {
          node_id: 'A',
          ts: at + 1,
          flow_rate: 2,
          pressure: null,
          temperature: null,
          district_id: null,
          source_file: 'gw-2',
          ingested: at + 2000,
        },
        {
          node_id: 'B',
          ts: at,
          flow_rate: null,
          pressure: null,
          temperature: 14.25,
          district_id: 'SELARGIUS',
          source_file: 'gw-1',
          ingested: at + 1000,
        },
      ]);
    } finally {
      await warehouse.close();
    }
  });

  it('stores every column of every row as given, NULLs included, over several chunks, by either path', async () => {
    const warehouse = await DuckdbWarehouse.open(':memory:');
    // 5000 rows (three of DuckDB's 2048-row chunks), each column NULL in some
    // rows; event times from before 1970 to 2200, to the millisecond.
    const rowAt = (i: number, call: number): WarehouseRow => ({
      node_id: `N-${call}-${i}-é`,
      timestamp: -86_400_000 * 365 + i * 1_234_567_891 + call,
      flow_rate: i % 7 === 0 ? null : i * 0.1 - 50,
      pressure: i % 5 === 0 ? null : 1 / (i + 3),
      pressure_1: i % 3 === 0 ? null : -i,
      pressure_2: i % 11 === 0 ? null : i * 1e9,
      temperature: i % 2 === 0 ? null : 14.25,
      volume: i % 13 === 0 ? null : Number.MAX_SAFE_INTEGER - i,
      data_quality_score: i % 17 === 0 ? null : 0.5,
      district_id: i % 4 === 0 ? null : `D${i % 9}`,
      node_name: i % 6 === 0 ? null : `Logger ${i} — 水`,
      node_type: i % 8 === 0 ? null : 'pressure',
      is_interpolated: i % 3 === 0 ? null : i % 3 === 1,
      source_file: i % 10 === 0 ? null : 'gw-1',
      ingestion_timestamp: at + i,
      stream_entry: i % 9 === 0 ? null : `${at + i}-${i % 4}`,
    });
    try {
      const direct = Array.from({ length: 5000 }, (_, i) => rowAt(i, 0));
      expect(await warehouse.insert(direct)).toEqual({ inserted: 5000, duplicates: 0 });
      // A repeat inside the call refuses the direct append: the staged path writes the rest.
      const staged = Array.from({ length: 5000 }, (_, i) => rowAt(i, 1));
      expect(await warehouse.insert([...staged, rowAt(4999, 1)])).toEqual({ inserted: 5000, duplicates: 1 });
      const selected = COLUMNS.map((c) =>
        c.type === 'timestamp' ? `epoch_ms("${c.name}")::DOUBLE AS "${c.name}"` : `"${c.name}"`,
      );
      const stored = await warehouse.query(
        `SELECT ${selected.join(', ')} FROM readings ORDER BY ingestion_timestamp, "timestamp"`,
      );
      const expected = [...direct, ...staged].sort(
        (a, b) => a.ingestion_timestamp - b.ingestion_timestamp || a.timestamp - b.timestamp,
      );
      expect(stored).toEqual(expected);
    } finally {
      await warehouse.close();
    }
  });

  it('stores each row its own strings when entries of every length share or split chunks (a chunk-wide string is written once)', async () => {
    const warehouse = await DuckdbWarehouse.open(':memory:');
    // Entries of 1 to 2,500 rows, some at the length that ends a chunk early
    // (256) and one under it; within an entry the district and gateway are
    // one value or change at its last row, node_name is NULL throughout or
    // for all but one row, and the whole call shares one node_type.
    const lengths = [1, 300, 2_500, 5, 255, 256, 1_000, 3, 2_048, 700];
    const rows: WarehouseRow[] = [];
    lengths.forEach((length, e) => {
      for (let i = 0; i < length; i++) {
        const last = i === length - 1;
        rows.push({
          node_id: `N${rows.length % 123}`,
          timestamp: at + rows.length,
          flow_rate: rows.length * 0.5,
          pressure: null,
          pressure_1: null,
          pressure_2: null,
          temperature: null,
          volume: null,
          data_quality_score: null,
          district_id: e % 3 === 0 && last ? 'OTHER' : `D${e}`,
          node_name: e % 2 === 0 ? null : last ? `Logger ${e} — 水` : null,
          node_type: 'distribution',
          is_interpolated: null,
          source_file: e % 4 === 1 && last ? 'gw-late' : `gw-${e % 2}`,
          ingestion_timestamp: at + e,
          stream_entry: `${at + e}-0`,
        });
      }
    });
    try {
      expect(await warehouse.insert(rows)).toEqual({ inserted: rows.length, duplicates: 0 });
      // The staged path (a repeat inside the call refuses the direct append) writes them the same way.
      const staged = rows.map((row) => ({ ...row, timestamp: row.timestamp + 1e6 }));
      expect(await warehouse.insert([...staged, staged[0] as WarehouseRow])).toEqual({
        inserted: staged.length,
        duplicates: 1,
      });
      const selected = COLUMNS.map((c) =>
        c.type === 'timestamp' ? `epoch_ms("${c.name}")::DOUBLE AS "${c.name}"` : `"${c.name}"`,
      );
      const stored = await warehouse.query(
        `SELECT ${selected.join(', ')} FROM readings ORDER BY "timestamp"`,
      );
      expect(stored).toEqual([...rows, ...staged]);
    } finally {
      await warehouse.close();
    }
  });

  it('writes a large call once when a row deep inside it is held or repeated: every other row, the first copy', async () => {
    const warehouse = await DuckdbWarehouse.open(':memory:');
    const row = (i: number, flow: number, entry: number) =>
      rowOf(
        { node_id: `N${i % 97}`, timestamp: at + i, flow_rate: flow },
        { entry: `${entry}-0`, source: 'gw' },
      );
    try {
      // Held before: the identity of row 5,000 (past the appender's first chunks).
      expect(await warehouse.insert([row(5_000, -1, at)])).toEqual({ inserted: 1, duplicates: 0 });
      const rows = Array.from({ length: 6_000 }, (_, i) => row(i, i, at + 1));
      // Row 5,500 again at the end, with another value: the first copy wins.
      rows.push(row(5_500, -2, at + 1));
      expect(await warehouse.insert(rows)).toEqual({ inserted: 5_999, duplicates: 2 });
      expect(await warehouse.count()).toBe(6_000);
      const [sums] = await warehouse.query(
        'SELECT sum(flow_rate)::DOUBLE AS total, count(DISTINCT (node_id, "timestamp"))::INTEGER AS identities FROM readings',
      );
      // 0 + 1 + … + 5,999, less row 5,000's value, plus the -1 held before it.
      expect(sums).toEqual({ total: (5_999 * 6_000) / 2 - 5_000 - 1, identities: 6_000 });
      // A call with nothing new (a redelivered batch) writes nothing.
      expect(await warehouse.insert(rows.slice(0, 3_000))).toEqual({ inserted: 0, duplicates: 3_000 });
      expect(await warehouse.count()).toBe(6_000);
    } finally {
      await warehouse.close();
    }
  });

  it('keeps what it committed in its file across a reopen', async () => {
    const path = join(dir, 'warehouse.duckdb');
    const warehouse = await DuckdbWarehouse.open(path);
    await warehouse.insert([
      rowOf({ node_id: 'C', timestamp: at, volume: 1234.5 }, { entry: `${at}-0`, source: '' }),
    ]);
    await warehouse.close();
    const reopened = await DuckdbWarehouse.open(path);
    try {
      expect(await reopened.count()).toBe(1);
      expect(
        await reopened.insert([
          rowOf({ node_id: 'C', timestamp: at, volume: 1 }, { entry: `${at}-0`, source: '' }),
        ]),
      ).toEqual({
        inserted: 0,
        duplicates: 1,
      });
    } finally {
      await reopened.close();
    }
  });
});

describe('DuckdbWarehouse after a failed write', () => {
  it('writes nothing of a call that failed, and nothing of it rides along with the next call', async () => {
    const warehouse = await DuckdbWarehouse.open(':memory:');
    try {
      const good = rowOf({ node_id: 'D', timestamp: at, flow_rate: 1 }, { entry: `${at}-0`, source: 'gw' });
      // A row that cannot be stored: its key is missing.
      const broken = { ...good, node_id: null } as unknown as typeof good;
      await expect(warehouse.insert([good, broken])).rejects.toThrow();
      expect(await warehouse.count()).toBe(0);
      expect(
        await warehouse.insert([rowOf({ node_id: 'E', timestamp: at }, { entry: `${at}-0`, source: 'gw' })]),
      ).toEqual({
        inserted: 1,
        duplicates: 0,
      });
      expect(await warehouse.query('SELECT node_id FROM readings')).toEqual([{ node_id: 'E' }]);
    } finally {
      await warehouse.close();
    }
  });

  it('opens a file made before stream_entry existed, and adds the column', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'streamgauge-upgrade-'));
    const path = join(dir, 'warehouse.duckdb');
    try {
      const old = await DuckDBInstance.create(path);
      const connection = await old.connect();
      await connection.run(
        'CREATE TABLE readings (node_id VARCHAR NOT NULL, "timestamp" TIMESTAMP NOT NULL, flow_rate DOUBLE, PRIMARY KEY (node_id, "timestamp"))',
      );
      await connection.run("INSERT INTO readings VALUES ('OLD', TIMESTAMP '2026-11-01 00:00:00', 1.5)");
      connection.closeSync();
      old.closeSync();
      const warehouse = await DuckdbWarehouse.open(path);
      try {
        const at = Date.UTC(2026, 10, 2);
        expect(
          await warehouse.insert([
            rowOf({ node_id: 'NEW', timestamp: at, flow_rate: 2 }, { entry: `${at}-7`, source: 'gw' }),
          ]),
        ).toEqual({
          inserted: 1,
          duplicates: 0,
        });
        expect(await warehouse.query('SELECT node_id, stream_entry FROM readings ORDER BY node_id')).toEqual([
          { node_id: 'NEW', stream_entry: `${at}-7` },
          { node_id: 'OLD', stream_entry: null },
        ]);
      } finally {
        await warehouse.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes by name into a file whose columns are in another order (where appending by position would swap values)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'streamgauge-order-'));
    const path = join(dir, 'warehouse.duckdb');
    try {
      const other = await DuckDBInstance.create(path);
      const connection = await other.connect();
      // pressure before flow_rate: both DOUBLE, so a positional append would not fail, only swap them.
      await connection.run(
        'CREATE TABLE readings (node_id VARCHAR NOT NULL, "timestamp" TIMESTAMP NOT NULL, pressure DOUBLE, flow_rate DOUBLE, PRIMARY KEY (node_id, "timestamp"))',
      );
      connection.closeSync();
      other.closeSync();
      const warehouse = await DuckdbWarehouse.open(path);
      try {
        const at = Date.UTC(2026, 10, 2);
        const row = rowOf(
          { node_id: 'N', timestamp: at, flow_rate: 2.5, pressure: 3.75 },
          { entry: `${at}-1`, source: 'gw' },
        );
        expect(await warehouse.insert([row])).toEqual({ inserted: 1, duplicates: 0 });
        expect(await warehouse.query('SELECT flow_rate, pressure FROM readings')).toEqual([
          { flow_rate: 2.5, pressure: 3.75 },
        ]);
      } finally {
        await warehouse.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
