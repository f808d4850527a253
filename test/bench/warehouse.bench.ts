import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAggregator } from '@streamgauge/aggregator';
import { startArchiver } from '@streamgauge/archiver';
import { startBackfill } from '@streamgauge/backfill';
import { GROUPS, horizonStart, loadConfig, sleep, systemClock } from '@streamgauge/core';
import { ReadingLog } from '@streamgauge/redis';
import { waitForDrain } from '@streamgauge/testkit';
import { DuckdbWarehouse, duckdbPath } from '@streamgauge/warehouse';
import { pino } from 'pino';
import { ServiceProcess } from '../support/serviceProcess.ts';
import { CpuMeter, type CpuTarget } from './lib/cpu.ts';
import { ReadingSource } from './lib/readings.ts';
import { fillLog } from './lib/streams.ts';
import type { SuiteContext } from './lib/types.ts';

export const SUITE = 'warehouse';

/**
 * The archiver: 200,000 readings of 1000 nodes wait in the stream (entries
 * of 1000 readings, as ingest writes them); the clock runs from the
 * archiver's start until group `archiver` has acknowledged them all, i.e.
 * until they are committed in a fresh DuckDB file.
 */
export async function warehouseBench(context: SuiteContext): Promise<void> {
  await archiverBench(context);
  // Waiting for more (the default) against writing each read at once, in the same run.
  const lingers = [loadConfig({}).archiver.lingerMs, 0];
  for (const lingerMs of lingers) await archiverKeepingUp(context, lingerMs);
  await reconcileBench(context);
}

/**
 * The archiver as it runs most of the time: keeping up. `streamgauge
 * archive` in a process of its own while readings arrive at
 * BENCH_ARCHIVER_RATE (default 20,000/s; entries of 1000, 10,000 nodes) for
 * BENCH_SECONDS; its CPU is measured from the first append until it has
 * acknowledged the last entry, and divided by the readings.
 */
async function archiverKeepingUp(context: SuiteContext, lingerMs: number): Promise<void> {
  await context.redis.flush();
  const rate = Number(process.env.BENCH_ARCHIVER_RATE ?? 20_000);
  const perEntry = 1000;
  const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-bench-archiver-'));
  const log = new ReadingLog(context.redis.client, {
    shards: 1,
    retentionMs: 48 * 3_600_000,
    dedupeHorizonMs: 48 * 3_600_000,
    clock: systemClock,
  });
  const archiver = await ServiceProcess.start({
    command: 'archive',
    env: {
      REDIS_URL: context.redis.url,
      DATA_DIR: dataDir,
      METRICS_PORT: '0',
      ARCHIVER_LINGER_MS: String(lingerMs),
    },
  });
  try {
    context.log(`archiver keeping up: ${rate} readings/s offered, ARCHIVER_LINGER_MS=${lingerMs}`);
    const source = new ReadingSource({ nodes: 10_000 });
    const cpu = new CpuMeter([
      { name: 'archiver', pid: archiver.pid },
      ...(context.redis.pid === undefined ? [] : [{ name: 'redis', pid: context.redis.pid }]),
      { name: 'bench', pid: 'self' },
    ]);
    cpu.start();
    const started = performance.now();
    const windowMs = context.options.seconds * 1000;
    let offered = 0;
    for (let elapsed = 0; elapsed < windowMs; elapsed = performance.now() - started) {
      // Paced every 50 ms: as many entries as the rate asks for by now.
      while (offered < (rate * elapsed) / 1000) {
        await log.append(
          Array.from({ length: perEntry }, () => source.nextReading()),
          'bench',
        );
        offered += perEntry;
      }
      await sleep(50);
    }
    await waitForDrain(context.redis.client, ['readings'], GROUPS.archiver, 600_000);
    const seconds = (performance.now() - started) / 1000;
    const usage = cpu.stop();
    const cpuUs = (((usage.archiver ?? 0) / 100) * seconds * 1e6) / offered;
    context.record({
      suite: SUITE,
      case: `archiver keeping up at ${rate}/s, ARCHIVER_LINGER_MS=${lingerMs}: CPU per reading`,
      seconds,
      readings: offered,
      requests: offered / perEntry,
      readingsPerSec: Math.round(offered / seconds),
      requestsPerSec: offered / perEntry / seconds,
      cpu: usage,
      notes: [`archiver CPU ${cpuUs.toFixed(1)} µs per reading (its process, DuckDB's threads included)`],
      figures: { archiverCpuUsPerReading: cpuUs, lingerMs },
    });
  } finally {
    await archiver.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function archiverBench(context: SuiteContext): Promise<void> {
  await context.redis.flush();
  const total = 200_000;
  const nodes = 1_000;
  const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-bench-warehouse-'));
  try {
    const log = new ReadingLog(context.redis.client, {
      shards: 1,
      retentionMs: 48 * 3_600_000,
      dedupeHorizonMs: 48 * 3_600_000,
      clock: systemClock,
    });
    context.log(`archiver: ${total} readings of ${nodes} nodes into DuckDB`);
    await fillLog(log, { total, nodes, now: Date.now() });
    const targets: CpuTarget[] = [{ name: 'bench', pid: 'self' }];
    if (context.redis.pid !== undefined) targets.push({ name: 'redis', pid: context.redis.pid });
    const cpu = new CpuMeter(targets);
    cpu.start();
    const started = performance.now();
    const archiver = await startArchiver(
      loadConfig({ REDIS_URL: context.redis.url, DATA_DIR: dataDir }),
      pino({ level: 'silent' }),
    );
    try {
      await waitForDrain(context.redis.client, ['readings'], GROUPS.archiver, 600_000);
    } finally {
      await archiver.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    context.record({
      suite: SUITE,
      case: 'archiver: stream → DuckDB (staged insert), 1000 nodes',
      batch: 1000,
      seconds,
      readings: total,
      requests: total / 1000,
      readingsPerSec: Math.round(total / seconds),
      requestsPerSec: total / 1000 / seconds,
      cpu: cpu.stop(),
      notes: ['in-process archiver (its CPU shows as bench); includes opening the DuckDB file'],
    });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The backfill: 30 days × 1000 nodes × one reading a minute (about 43
 * million rows, generated in DuckDB) reconciled into an empty live state
 * (a cold start: every pane created) and then again (every pane compared,
 * none changed), with the aggregator applying the panes in process. The
 * time is the run's, from the first warehouse query to the last shard's
 * report.
 */
async function reconcileBench(context: SuiteContext): Promise<void> {
  await context.redis.flush();
  const nodes = 1_000;
  const now = Date.now();
  const start = horizonStart(now);
  const minutes = Math.floor((now - 60_000 - start) / 60_000);
  const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-bench-reconcile-'));
  const config = loadConfig({ REDIS_URL: context.redis.url, DATA_DIR: dataDir, STREAM_SHARDS: '4' });
  try {
    const warehouse = await DuckdbWarehouse.open(duckdbPath(config));
    try {
      const filling = performance.now();
      await warehouse.query(`
        INSERT INTO readings (node_id, "timestamp", flow_rate, pressure, temperature, ingestion_timestamp, source_file)
        SELECT 'NODE' || lpad(CAST(n AS VARCHAR), 4, '0'),
               make_timestamp(CAST((${start} + m * 60000) * 1000 AS BIGINT)),
               CASE WHEN hash(n, m) % 20 = 0 THEN 0 ELSE 5 + (hash(n, m) % 3000) / 100.0 END,
               2 + (hash(m, n) % 400) / 100.0,
               12 + (hash(n + m) % 600) / 100.0,
               make_timestamp(CAST(${now} * 1000 AS BIGINT)),
               'bench'
        FROM range(${nodes}) t(n), range(${minutes}) s(m)`);
      const rows = await warehouse.count();
      context.log(
        `reconcile: ${rows} rows (${nodes} nodes × ${minutes} minutes) generated in ${((performance.now() - filling) / 1000).toFixed(0)} s`,
      );
      const logger = pino({ level: 'silent' });
      const aggregator = await startAggregator(config, logger);
      const backfill = await startBackfill(config, warehouse, logger, { schedule: false });
      try {
        for (const pass of ['cold start: every pane created', 'again: every pane compared, none changed']) {
          const cpu = new CpuMeter([
            { name: 'bench', pid: 'self' },
            ...(context.redis.pid === undefined ? [] : [{ name: 'redis', pid: context.redis.pid }]),
          ]);
          cpu.start();
          const report = await backfill.runNow();
          const seconds = report.durationMs / 1000;
          context.record({
            suite: SUITE,
            case: `reconcile 30 d × ${nodes} nodes × 1/min from DuckDB, ${pass}`,
            seconds,
            readings: rows,
            requests: report.statements,
            readingsPerSec: Math.round(rows / seconds),
            requestsPerSec: report.statements / seconds,
            cpu: cpu.stop(),
            notes: [
              `status ${report.status}; warehouse queries ${(report.queryMs / 1000).toFixed(1)} s (${report.statements} statements, ${report.rows} pane rows, concurrency ${config.backfill.concurrency}); offered ${(report.payloadBytes / 1e6).toFixed(0)} MB (${report.nodesOffered} nodes; ${report.nodesMatched} matched the persisted state and were left out); panes compared ${report.panesCompared}, changed ${report.panesChanged}`,
              'aim: ≤ 30 s (issue 5); the aggregator applies in process (its CPU shows as bench)',
            ],
          });
        }
      } finally {
        await backfill.stop();
        await aggregator.stop();
      }
    } finally {
      await warehouse.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
