import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allShardKeys, GROUPS, loadConfig, type Reading, systemClock } from '@streamgauge/core';
import { ReadingLog } from '@streamgauge/redis';
import { ProcessMetrics } from '@streamgauge/telemetry';
import { metricValue, parseMetrics, useRedis, waitForAggregator, waitForDrain } from '@streamgauge/testkit';
import { DuckdbWarehouse, duckdbPath } from '@streamgauge/warehouse';
import { describe, expect, it } from 'vitest';
import { startAggregatorThread, startWarehouseThread } from '../src/serviceThreads/services.ts';

const db = useRedis({ flushEach: true });

/** 30 readings of nodes T0–T2 in the last minute, appended as ingest appends them. */
async function appendReadings(): Promise<Reading[]> {
  const log = new ReadingLog(db.client, {
    shards: 1,
    retentionMs: 48 * 3_600_000,
    dedupeHorizonMs: 48 * 3_600_000,
    clock: systemClock,
  });
  const now = Date.now();
  const readings: Reading[] = Array.from({ length: 30 }, (_, i) => ({
    node_id: `T${i % 3}`,
    timestamp: now - 60_000 + i * 1000,
    flow_rate: i,
  }));
  await log.append(readings, 'test');
  return readings;
}

describe("the aggregator on a thread of its own (streamgauge start's)", () => {
  it('applies what the stream holds, reports its counts and series to the main thread, and stops cleanly', async () => {
    const config = loadConfig({ REDIS_URL: db.url, STREAM_SHARDS: '1', LOG_LEVEL: 'warn' });
    await appendReadings();
    const metrics = new ProcessMetrics({ service: 'streamgauge' });
    const thread = await startAggregatorThread(config, metrics);
    try {
      await waitForAggregator(db.client, 1, 20_000);
      // The newest of node T2 is reading 29, as the thread wrote it.
      expect(await db.client.hget('node:T2:latest', 'flow_rate')).toBe('29');
      // The counts come with the thread's next report (every second).
      for (const deadline = Date.now() + 5_000; thread.nodeCount() < 3 && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(thread.nodeCount()).toBe(3);
      expect(thread.keysWritten()).toBeGreaterThan(0);
      const all = parseMetrics((await metrics.scrape()).body);
      expect(metricValue(all, 'streamgauge_aggregator_readings_total', { outcome: 'applied' })).toBe(30);
      expect(
        metricValue(all, 'messaging_client_consumed_messages_total', {
          messaging_consumer_group_name: GROUPS.aggregator,
        }),
      ).toBe(1);
      expect(metricValue(all, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    } finally {
      await thread.stop();
    }
    await expect(thread.done).resolves.toBeUndefined();
    // Its series leave /metrics with it.
    const after = parseMetrics((await metrics.scrape()).body);
    expect(metricValue(after, 'streamgauge_aggregator_readings_total', { outcome: 'applied' })).toBe(
      undefined,
    );
  }, 60_000);
});

describe("the archiver and the backfill on a thread of their own (streamgauge start's)", () => {
  it('writes every reading into the warehouse, sends its series to the main thread, and closes the file when stopped', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-warehouse-thread-'));
    try {
      const config = loadConfig({
        REDIS_URL: db.url,
        STREAM_SHARDS: '1',
        LOG_LEVEL: 'warn',
        DATA_DIR: dataDir,
      });
      const readings = await appendReadings();
      const metrics = new ProcessMetrics({ service: 'streamgauge' });
      const thread = await startWarehouseThread(config, metrics);
      try {
        const streams = allShardKeys(1).map((shard) => shard.stream);
        await waitForDrain(db.client, streams, GROUPS.archiver, 20_000);
        const all = parseMetrics((await metrics.scrape()).body);
        expect(metricValue(all, 'streamgauge_archiver_rows_total', { outcome: 'inserted' })).toBe(30);
      } finally {
        await thread.stop();
      }
      await expect(thread.done).resolves.toBeUndefined();
      // Closed by the thread: this process can open the file and read every row.
      const warehouse = await DuckdbWarehouse.open(duckdbPath(config));
      try {
        const rows = await warehouse.query(
          'SELECT node_id, epoch_ms("timestamp") AS ms, flow_rate FROM readings ORDER BY ms',
        );
        expect(rows).toEqual(
          readings.map((r) => ({ node_id: r.node_id, ms: BigInt(r.timestamp), flow_rate: r.flow_rate })),
        );
      } finally {
        await warehouse.close();
      }
      const after = parseMetrics((await metrics.scrape()).body);
      expect(metricValue(after, 'streamgauge_archiver_rows_total', { outcome: 'inserted' })).toBe(undefined);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
