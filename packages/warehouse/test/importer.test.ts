import { describe, expect, it } from 'vitest';
import { DuckdbWarehouse, importReadings } from '../src/index.ts';

async function* linesOf(text: string): AsyncIterable<string> {
  for (const line of text.split('\n')) yield line;
}

const now = Date.UTC(2026, 10, 25, 12);
const options = { source: 'history.csv', nowMs: now, maxFutureMs: 300_000 };

describe('importReadings', () => {
  it('loads a CSV of DATA_MODEL columns, reports duplicates and every rejected line with its reason', async () => {
    const csv = [
      'node_id,timestamp,flow_rate,pressure,temperature,volume,district_id,node_type,is_interpolated,unknown_column',
      '215542,2026-11-01 00:00:00,12.5,3.1,,1000,SELARGIUS,distribution,false,x',
      '215542,2026-11-01T00:15:00Z,13,3.2,14.5,1001.5,SELARGIUS,distribution,0,x',
      '215542,2026-11-01 00:00:00,99,9,,,SELARGIUS,distribution,false,x',
      // Quoted fields, one holding the separator (node ids cannot: see NODE_ID_RULE).
      '"TANK01",2026-11-01 00:00:00,1,,,,SELARGIUS,"storage, elevated",true,x',
      ',2026-11-01 00:00:00,1,,,,,,,',
      '281492,yesterday,1,,,,,,,',
      '281492,2026-11-01 00:00:00,abc,,,,,,,',
      '281492,2026-11-01 00:00:00,1,2',
      '',
    ].join('\n');
    const warehouse = await DuckdbWarehouse.open(':memory:');
    try {
      const summary = await importReadings(linesOf(csv), warehouse, { ...options, format: 'csv' });
      expect(summary).toMatchObject({ lines: 10, imported: 3, duplicates: 1, rejected: 4 });
      expect(summary.reasons).toContainEqual({ reason: 'node_id: is required', count: 1 });
      expect(summary.reasons).toContainEqual({
        reason: 'expected N fields (as the header), got N',
        count: 1,
      });
      expect(summary.examples).toEqual([
        { line: 6, error: 'node_id: is required' },
        { line: 7, error: expect.stringMatching(/^timestamp: "yesterday" is not an ISO-8601 time/) },
        { line: 8, error: 'flow_rate: expected a finite number (L/s), got string "abc"' },
        { line: 9, error: 'expected 10 fields (as the header), got 4' },
      ]);
      const rows = await warehouse.query(
        `SELECT node_id, epoch_ms("timestamp")::DOUBLE AS ts, flow_rate, temperature, is_interpolated, source_file
         FROM readings ORDER BY node_id, "timestamp"`,
      );
      expect(rows).toEqual([
        {
          node_id: '215542',
          ts: Date.UTC(2026, 10, 1),
          flow_rate: 12.5,
          temperature: null,
          is_interpolated: false,
          source_file: 'history.csv',
        },
        {
          node_id: '215542',
          ts: Date.UTC(2026, 10, 1, 0, 15),
          flow_rate: 13,
          temperature: 14.5,
          is_interpolated: false,
          source_file: 'history.csv',
        },
        {
          node_id: 'TANK01',
          ts: Date.UTC(2026, 10, 1),
          flow_rate: 1,
          temperature: null,
          is_interpolated: true,
          source_file: 'history.csv',
        },
      ]);
    } finally {
      await warehouse.close();
    }
  });

  it('loads NDJSON, the HTTP API body format, and rejects a line that is not JSON', async () => {
    const ndjson = [
      JSON.stringify({ node_id: 'N1', timestamp: '2026-11-02T10:00:00+01:00', flow_rate: 2 }),
      '{not json',
      JSON.stringify({ node_id: 'N1', timestamp: Date.UTC(2026, 10, 2, 10), pressure: 3 }),
    ].join('\n');
    const warehouse = await DuckdbWarehouse.open(':memory:');
    try {
      const summary = await importReadings(linesOf(ndjson), warehouse, {
        ...options,
        format: 'ndjson',
        batch: 1,
      });
      expect(summary).toMatchObject({ imported: 2, duplicates: 0, rejected: 1 });
      expect(summary.examples[0]?.line).toBe(2);
      expect(await warehouse.count()).toBe(2);
    } finally {
      await warehouse.close();
    }
  });

  it('reads a spreadsheet export: a byte-order mark, a quoted header, CRLF line ends; hex is not a number', async () => {
    const csv =
      '\uFEFF"node_id","timestamp","flow_rate"\r\nA,2026-11-01 00:00:00,1e1\r\nA,2026-11-01 00:01:00,0x1A\r\n';
    const warehouse = await DuckdbWarehouse.open(':memory:');
    try {
      const summary = await importReadings(linesOf(csv), warehouse, { ...options, format: 'csv' });
      expect(summary).toMatchObject({ imported: 1, rejected: 1 });
      expect(summary.examples[0]).toEqual({
        line: 3,
        error: expect.stringMatching(/^flow_rate: expected a finite number/),
      });
      expect(await warehouse.query('SELECT flow_rate FROM readings')).toEqual([{ flow_rate: 10 }]);
    } finally {
      await warehouse.close();
    }
  });

  it('refuses a CSV whose header does not name node_id and timestamp', async () => {
    const warehouse = await DuckdbWarehouse.open(':memory:');
    try {
      await expect(
        importReadings(linesOf('id,time\n1,2'), warehouse, { ...options, format: 'csv' }),
      ).rejects.toThrow('the CSV header must name node_id and timestamp, got: id,time');
      expect(await warehouse.count()).toBe(0);
    } finally {
      await warehouse.close();
    }
  });
});
