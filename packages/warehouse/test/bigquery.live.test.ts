import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BigQueryWarehouse } from '../src/bigquery/bigqueryWarehouse.ts';
import { bigquery, bigqueryReadingsDdl, paneStatement, rowOf } from '../src/index.ts';

// Against a real BigQuery (BIGQUERY_TEST_PROJECT, with credentials found the
// standard Google way) or an emulator (BIGQUERY_EMULATOR_HOST, project `test`).
const emulatorHost = process.env.BIGQUERY_EMULATOR_HOST || undefined;
// Given as apiEndpoint instead: with the variable set, the client uses its
// value verbatim as the base URL, without the /bigquery/v2 the API lives under.
delete process.env.BIGQUERY_EMULATOR_HOST;
const emulator =
  emulatorHost && (/^https?:\/\//.test(emulatorHost) ? emulatorHost : `http://${emulatorHost}`);
const project = process.env.BIGQUERY_TEST_PROJECT || (emulator ? 'test' : undefined);
const dataset = process.env.BIGQUERY_TEST_DATASET || 'streamgauge_test';
const location = process.env.BIGQUERY_TEST_LOCATION || undefined;

if (project === undefined) {
  console.warn(
    'bigquery live test skipped: set BIGQUERY_TEST_PROJECT (with credentials) or BIGQUERY_EMULATOR_HOST to run it',
  );
}

describe.skipIf(project === undefined)('BigQueryWarehouse against BigQuery', () => {
  const projectId = project ?? '';
  // A table of its own per run, dropped at the end.
  const table = `readings_test_${Date.now()}_${process.pid}`;
  // Made in beforeAll: a skipped describe still runs its body.
  let warehouse: BigQueryWarehouse;

  beforeAll(async () => {
    warehouse = BigQueryWarehouse.create({ projectId, dataset, table, location, apiEndpoint: emulator });
    await warehouse.query(`CREATE SCHEMA IF NOT EXISTS \`${projectId}.${dataset}\``);
    await warehouse.query(bigqueryReadingsDdl({ project: projectId, dataset, table }));
  }, 120_000);

  afterAll(async () => {
    await warehouse?.query(`DROP TABLE IF EXISTS ${warehouse.table}`);
    await warehouse?.close();
  }, 120_000);

  it('writes each reading once, counts them and reads them back through a backfill statement', async () => {
    // An hour ago, on a minute: a recent day partition, one pane.
    const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
    const entry = `${t0 + 30_000}-0`;
    const rows = [
      rowOf(
        { node_id: 'A', timestamp: t0, flow_rate: 1.5, district_id: 'SELARGIUS' },
        { entry, source: 'gw-1' },
      ),
      rowOf({ node_id: 'A', timestamp: t0, flow_rate: 9 }, { entry, source: 'gw-1' }),
      rowOf({ node_id: 'A', timestamp: t0 + 10_000, flow_rate: 2.5 }, { entry, source: 'gw-1' }),
      rowOf({ node_id: 'B', timestamp: t0, flow_rate: 0, temperature: 14.25 }, { entry, source: 'gw-2' }),
    ];
    expect(await warehouse.insert(rows)).toEqual({ inserted: 3, duplicates: 1 });
    expect(await warehouse.insert(rows)).toEqual({ inserted: 0, duplicates: 4 });
    expect(await warehouse.count()).toBe(3);

    const statement = paneStatement(bigquery, warehouse.table, 60_000, {
      from: t0 - 60_000,
      until: t0 + 60_000,
      // After the rows' entry: they came through the stream before the cut, so they are summed.
      cutTime: t0 + 60_000,
    });
    const panes = (await warehouse.select(statement)).sort((a, b) =>
      String(a.node_id).localeCompare(String(b.node_id)),
    );
    expect(panes).toHaveLength(2);
    expect(panes[0]).toMatchObject({
      node_id: 'A',
      pane: t0 / 60_000,
      count: 2,
      flowing: 2,
      newest: t0 + 10_000,
      flow_n: 2,
      flow_mean: 2,
      flow_m2: 0.5,
      flow_min: 1.5,
      flow_max: 2.5,
      temperature_n: 0,
      temperature_mean: null,
    });
    expect(panes[1]).toMatchObject({
      node_id: 'B',
      count: 1,
      flowing: 0,
      flow_n: 1,
      temperature_mean: 14.25,
    });
  }, 300_000);
});
