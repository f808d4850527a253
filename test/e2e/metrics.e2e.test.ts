import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allShardKeys, GROUPS, reconcileKeys } from '@streamgauge/core';
import {
  freePort,
  type MetricSample,
  metricSamples,
  metricValue,
  scrapeMetrics,
  type TestRedis,
  testRedis,
  waitForAggregator,
  waitForDrain,
} from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceProcess } from '../support/serviceProcess.ts';

let redis: TestRedis;
let client: Redis;
const services: ServiceProcess[] = [];
const output: string[] = [];
const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-metrics-'));

beforeAll(async () => {
  redis = await testRedis();
  await redis.flush();
  client = new Redis(redis.url);
});
afterAll(async () => {
  for (const service of services.reverse()) await service.stop();
  client.disconnect();
  await redis.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const SHARDS = 2;
const streams = allShardKeys(SHARDS).map((k) => k.stream);

/** Polls `scrape` until `done` holds for its samples (a gauge read at scrape time, an anomaly being copied). */
async function scrapeUntil(
  url: string,
  done: (samples: MetricSample[]) => boolean,
  timeoutMs = 30_000,
): Promise<MetricSample[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const samples = await scrapeMetrics(url);
    if (done(samples)) return samples;
    if (Date.now() > deadline) return samples;
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('/metrics of every service, as they run in production', () => {
  it('shows readings, consumption, event age, lag, pending, drift and open anomalies with exact values', async () => {
    const started = Date.now();
    const [ingestPort, aggregatorPort, archiverPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
    ]);
    const env = {
      REDIS_URL: redis.url,
      STREAM_SHARDS: String(SHARDS),
      DATA_DIR: dataDir,
      INGEST_HOST: '127.0.0.1',
      INGEST_PORT: String(ingestPort),
      INGEST_AUTH: 'off',
      METRICS_HOST: '127.0.0.1',
      AGGREGATOR_METRICS_INTERVAL_MS: '100',
    };
    const start = (command: 'aggregate' | 'archive' | 'ingest', metricsPort?: number) =>
      ServiceProcess.start({
        command,
        env: metricsPort === undefined ? env : { ...env, METRICS_PORT: String(metricsPort) },
        onOutput: (line) => output.push(line),
      }).then((service) => {
        services.push(service);
        return service;
      });
    await start('aggregate', aggregatorPort);
    await start('archive', archiverPort);
    await start('ingest');
    const ingestUrl = `http://127.0.0.1:${ingestPort}`;

    // 30 nodes × 8 readings from the last 4 minutes; node LOW reports a
    // pressure below the 1.5 bar threshold (a low_pressure anomaly).
    const now = Date.now();
    const valid = Array.from({ length: 30 }, (_, n) =>
      Array.from({ length: 8 }, (_, i) => ({
        node_id: n === 0 ? 'LOW' : `N${n}`,
        timestamp: new Date(now - (i * 30 + n) * 1000).toISOString(),
        flow_rate: 10 + i,
        pressure: n === 0 ? 0.5 : 3,
      })),
    ).flat();
    const invalid = [
      { node_id: 'N1' },
      { node_id: 'N2', timestamp: 'soon' },
      { timestamp: valid[0]?.timestamp },
    ];
    const resent = valid.slice(0, 25);
    const post = async (body: unknown[]) => {
      const response = await fetch(`${ingestUrl}/v1/readings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return response.status;
    };
    for (let i = 0; i < valid.length; i += 40) expect(await post(valid.slice(i, i + 40))).toBe(200);
    expect(await post([...resent, ...invalid])).toBe(200);

    await waitForAggregator(client, SHARDS, 60_000);
    await waitForDrain(client, streams, GROUPS.archiver, 60_000);
    const entries = new Map<string, number>();
    for (const stream of streams) entries.set(stream, await client.xlen(stream));
    const totalEntries = [...entries.values()].reduce((a, b) => a + b, 0);

    // Ingest: what it was sent, exactly.
    const ingest = await scrapeMetrics(`${ingestUrl}/metrics`);
    const readings = (outcome: string) =>
      metricValue(ingest, 'streamgauge_readings_total', { source: 'http', outcome });
    expect({
      accepted: readings('accepted'),
      rejected: readings('rejected'),
      duplicate: readings('duplicate'),
    }).toEqual({ accepted: valid.length, rejected: invalid.length, duplicate: resent.length });
    for (const [stream, count] of entries) {
      expect(
        metricValue(ingest, 'messaging_client_sent_messages_total', { messaging_destination_name: stream }),
      ).toBe(count);
    }
    expect(ingest.every((s) => s.labels.service === 'ingest')).toBe(true);
    expect(metricValue(ingest, 'process_cpu_seconds_total')).toBeGreaterThan(0);

    // Aggregator: everything consumed and applied, nothing behind, the anomaly open.
    const group = (name: string) => ({ messaging_consumer_group_name: name });
    const aggregator = await scrapeUntil(
      `http://127.0.0.1:${aggregatorPort}/metrics`,
      (s) =>
        metricValue(s, 'streamgauge_anomalies_open', { anomaly_type: 'low_pressure' }) === 1 &&
        metricValue(s, 'streamgauge_consumer_lag', group('aggregator')) === 0 &&
        metricValue(s, 'streamgauge_consumer_pending', group('aggregator')) === 0,
    );
    for (const [stream, count] of entries) {
      const labels = { ...group('aggregator'), messaging_destination_name: stream };
      expect(metricValue(aggregator, 'messaging_client_consumed_messages_total', labels)).toBe(count);
      expect(metricValue(aggregator, 'streamgauge_consumer_lag', labels)).toBe(0);
      expect(metricValue(aggregator, 'streamgauge_consumer_pending', labels)).toBe(0);
    }
    expect(metricSamples(aggregator, 'streamgauge_consumer_lag')).toHaveLength(SHARDS);
    expect(metricValue(aggregator, 'streamgauge_aggregator_readings_total', { outcome: 'applied' })).toBe(
      valid.length,
    );
    expect(metricValue(aggregator, 'streamgauge_aggregator_readings_total', { outcome: 'too_late' })).toBe(0);
    expect(metricValue(aggregator, 'streamgauge_failed_entries_total', group('aggregator'))).toBe(0);
    const batches = metricValue(aggregator, 'messaging_process_duration_seconds_count', group('aggregator'));
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(batches).toBeLessThanOrEqual(totalEntries);
    expect(
      metricValue(aggregator, 'messaging_process_duration_seconds_sum', group('aggregator')),
    ).toBeGreaterThan(0);
    // One observation per node per batch that wrote its latest key; the
    // newest reading of each node is under 30 s old, so far under an hour.
    const ages = metricValue(aggregator, 'streamgauge_reading_event_age_seconds_count') ?? 0;
    expect(ages).toBeGreaterThanOrEqual(30);
    expect(ages).toBeLessThanOrEqual(valid.length);
    expect(metricValue(aggregator, 'streamgauge_reading_event_age_seconds_sum')).toBeGreaterThanOrEqual(0);
    expect(metricValue(aggregator, 'streamgauge_reading_event_age_seconds_bucket', { le: '3600' })).toBe(
      ages,
    );
    expect(metricValue(aggregator, 'streamgauge_anomalies_open', { anomaly_type: 'low_pressure' })).toBe(1);
    expect(metricValue(aggregator, 'streamgauge_anomalies_open')).toBe(1);
    expect(aggregator.every((s) => s.labels.service === 'aggregator')).toBe(true);
    expect(metricValue(aggregator, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(metricValue(aggregator, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);

    // Archiver (and the backfill in its process): one row per reading, its
    // group drained, and the report of the backfill's first run.
    const archiver = await scrapeUntil(
      `http://127.0.0.1:${archiverPort}/metrics`,
      (s) =>
        (metricValue(s, 'streamgauge_reconcile_runs_total', { status: 'complete' }) ?? 0) >= 1 &&
        metricSamples(s, 'streamgauge_reconcile_drift').length > 0 &&
        metricValue(s, 'streamgauge_consumer_lag', group('archiver')) === 0,
      60_000,
    );
    expect(metricValue(archiver, 'streamgauge_archiver_rows_total', { outcome: 'inserted' })).toBe(
      valid.length,
    );
    expect(metricValue(archiver, 'streamgauge_archiver_rows_total', { outcome: 'duplicate' })).toBe(0);
    for (const [stream, count] of entries) {
      const labels = { ...group('archiver'), messaging_destination_name: stream };
      expect(metricValue(archiver, 'messaging_client_consumed_messages_total', labels)).toBe(count);
      expect(metricValue(archiver, 'streamgauge_consumer_lag', labels)).toBe(0);
      expect(metricValue(archiver, 'streamgauge_consumer_pending', labels)).toBe(0);
    }
    expect(metricSamples(archiver, 'streamgauge_consumer_lag', group('aggregator'))).toEqual([]);
    expect(
      metricValue(archiver, 'messaging_process_duration_seconds_count', group('archiver')),
    ).toBeGreaterThan(0);
    expect(
      metricValue(archiver, 'streamgauge_reconcile_runs_total', { status: 'complete' }),
    ).toBeGreaterThanOrEqual(1);
    expect(metricValue(archiver, 'streamgauge_reconcile_runs_total', { status: 'failed' })).toBe(0);
    expect(metricValue(archiver, 'streamgauge_reconcile_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    const report = JSON.parse((await client.get(reconcileKeys.last)) ?? '{}') as {
      finishedAt: string;
      drift: Record<string, number>;
    };
    for (const drift of metricSamples(archiver, 'streamgauge_reconcile_drift')) {
      expect(drift.value).toBe(report.drift[drift.labels.metric as string] ?? 0);
    }
    expect(
      metricValue(archiver, 'streamgauge_reconcile_drift', { metric: 'readings' }),
    ).toBeGreaterThanOrEqual(0);
    const finished = metricValue(archiver, 'streamgauge_reconcile_last_finished_timestamp_seconds') ?? 0;
    expect(finished * 1000).toBe(Date.parse(report.finishedAt));
    expect(finished * 1000).toBeGreaterThanOrEqual(started - 1000);
    expect(archiver.every((s) => s.labels.service === 'archiver')).toBe(true);
    expect(metricValue(archiver, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(output.filter((line) => line.includes('"level":50'))).toEqual([]);
  }, 180_000);
});
