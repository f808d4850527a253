import { metricSamples, metricValue, parseMetrics, scrapeMetrics } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { ProcessMetrics, serveMetrics } from '../src/index.ts';

async function samples(metrics: ProcessMetrics) {
  return parseMetrics((await metrics.scrape()).body);
}

describe('ProcessMetrics', () => {
  it('labels every series with the service, and exports only what the process records', async () => {
    const metrics = new ProcessMetrics({ service: 'ingest', defaultMetrics: false });
    metrics.ingest.readings('http').add({ accepted: 3, rejected: 1, duplicates: 2 });
    metrics.ingest.sent('readings');
    metrics.ingest.sent('readings');
    const all = await samples(metrics);
    expect(all.every((s) => s.labels.service === 'ingest')).toBe(true);
    const readings = (outcome: string) =>
      metricValue(all, 'streamgauge_readings_total', { source: 'http', outcome });
    expect([readings('accepted'), readings('rejected'), readings('duplicate')]).toEqual([3, 1, 2]);
    expect(
      metricValue(all, 'messaging_client_sent_messages_total', {
        messaging_system: 'redis',
        messaging_operation_name: 'send',
        messaging_destination_name: 'readings',
      }),
    ).toBe(2);
    expect(all.some((s) => s.name.startsWith('messaging_process_duration'))).toBe(false);
    expect(all.some((s) => s.name.startsWith('process_'))).toBe(false);
  });

  it('records a consumer group per batch, and the age of what the aggregator wrote', async () => {
    const metrics = new ProcessMetrics({ service: 'aggregator', defaultMetrics: false });
    const consumer = metrics.consumer('aggregator');
    consumer.batch('readings:{0}', { entries: 5, failed: 1, dead: 2 }, 0.2);
    consumer.batch('readings:{1}', { entries: 3, failed: 0, dead: 0 }, 0.02);
    metrics.aggregator.readings({ applied: 900, tooLate: 7, tooEarly: 1 });
    const now = 1_000_000_000_000;
    const eventTimes = new Map([
      ['N1', now - 2_000],
      ['N2', now - 3 * 86_400_000],
      ['N3', now + 5_000],
    ]);
    metrics.aggregator.latestWritten(new Set(['N1', 'N2', 'N3', 'gone']), (id) => eventTimes.get(id), now);
    const all = await samples(metrics);
    const group = { messaging_consumer_group_name: 'aggregator' };
    expect(
      metricSamples(all, 'messaging_client_consumed_messages_total', group).map((s) => [
        s.labels.messaging_destination_name,
        s.value,
      ]),
    ).toEqual([
      ['readings:{0}', 5],
      ['readings:{1}', 3],
    ]);
    expect(metricValue(all, 'messaging_process_duration_seconds_count', group)).toBe(2);
    expect(metricValue(all, 'messaging_process_duration_seconds_sum', group)).toBeCloseTo(0.22);
    expect(metricValue(all, 'messaging_process_duration_seconds_bucket', { ...group, le: '0.025' })).toBe(1);
    expect(metricValue(all, 'streamgauge_failed_entries_total', { ...group, outcome: 'retried' })).toBe(1);
    expect(metricValue(all, 'streamgauge_failed_entries_total', { ...group, outcome: 'dead_lettered' })).toBe(
      2,
    );
    expect(metricValue(all, 'streamgauge_aggregator_readings_total', { outcome: 'applied' })).toBe(900);
    expect(metricValue(all, 'streamgauge_aggregator_readings_total', { outcome: 'too_late' })).toBe(7);
    expect(metricValue(all, 'streamgauge_aggregator_readings_total', { outcome: 'too_early' })).toBe(1);
    // One observation per node with a latest reading; ahead of the clock counts as 0.
    expect(metricValue(all, 'streamgauge_reading_event_age_seconds_count')).toBe(3);
    expect(metricValue(all, 'streamgauge_reading_event_age_seconds_sum')).toBe(2 + 3 * 86_400);
    expect(metricValue(all, 'streamgauge_reading_event_age_seconds_bucket', { le: '0.05' })).toBe(1);
    expect(metricValue(all, 'streamgauge_reading_event_age_seconds_bucket', { le: '2.5' })).toBe(2);
    expect(metricValue(all, 'streamgauge_reading_event_age_seconds_bucket', { le: '259200' })).toBe(3);
  });

  it('counts archived rows and backfill runs', async () => {
    const metrics = new ProcessMetrics({ service: 'archiver', defaultMetrics: false });
    metrics.archiver.rows(10, 4);
    metrics.archiver.rows(0, 1);
    metrics.backfill.run('complete', 12);
    metrics.backfill.run('failed', 0.5);
    const all = await samples(metrics);
    expect(metricValue(all, 'streamgauge_archiver_rows_total', { outcome: 'inserted' })).toBe(10);
    expect(metricValue(all, 'streamgauge_archiver_rows_total', { outcome: 'duplicate' })).toBe(5);
    expect(metricValue(all, 'streamgauge_reconcile_runs_total', { status: 'complete' })).toBe(1);
    expect(metricValue(all, 'streamgauge_reconcile_runs_total', { status: 'partial' })).toBe(0);
    expect(metricValue(all, 'streamgauge_reconcile_runs_total', { status: 'failed' })).toBe(1);
    expect(metricValue(all, 'streamgauge_reconcile_duration_seconds_sum')).toBe(12.5);
  });

  it("serves another registry's series with its own, adding up those of the same name and labels", async () => {
    const main = new ProcessMetrics({ service: 'streamgauge' });
    const thread = new ProcessMetrics({ service: 'streamgauge', defaultMetrics: false });
    main.consumer('archiver').batch('readings', { entries: 4, failed: 0, dead: 0 }, 0.1);
    thread.consumer('aggregator').batch('readings', { entries: 7, failed: 1, dead: 0 }, 0.3);
    main.archiver.rows(5, 1);
    thread.aggregator.readings({ applied: 40, tooLate: 0, tooEarly: 0 });
    // The same series in both (one failure counted on each side): one sample, the sum.
    main.consumer('aggregator').batch('readings', { entries: 2, failed: 1, dead: 0 }, 0.01);
    const remove = main.addSource(() => thread.registry.getMetricsAsJSON());
    const { body } = await main.scrape();
    const all = parseMetrics(body);
    const consumed = (group: string) =>
      metricSamples(all, 'messaging_client_consumed_messages_total', {
        messaging_consumer_group_name: group,
      }).map((s) => s.value);
    expect([consumed('archiver'), consumed('aggregator')]).toEqual([[4], [9]]);
    expect(
      metricValue(all, 'streamgauge_failed_entries_total', {
        messaging_consumer_group_name: 'aggregator',
        outcome: 'retried',
      }),
    ).toBe(2);
    expect(metricValue(all, 'streamgauge_aggregator_readings_total', { outcome: 'applied' })).toBe(40);
    expect(metricValue(all, 'streamgauge_archiver_rows_total', { outcome: 'inserted' })).toBe(5);
    expect(metricValue(all, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    // A series of one registry only comes through whatever prom-client's merge would do with copies of it.
    expect(metricValue(all, 'process_start_time_seconds')).toBeGreaterThan(0);
    expect(all.every((s) => s.labels.service === 'streamgauge')).toBe(true);
    // One HELP and one TYPE per family, however many registries hold it.
    expect(body.match(/^# TYPE messaging_client_consumed_messages_total /gm)).toHaveLength(1);
    remove();
    expect(
      metricValue(await samples(main), 'streamgauge_aggregator_readings_total', { outcome: 'applied' }),
    ).toBe(undefined);
  });

  it('includes the Node.js process series by default', async () => {
    const all = await samples(new ProcessMetrics({ service: 'aggregator' }));
    expect(metricValue(all, 'process_cpu_seconds_total', { service: 'aggregator' })).toBeGreaterThan(0);
    expect(metricValue(all, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
  });
});

describe('serveMetrics', () => {
  it('answers GET /metrics on its own port, 404 elsewhere', async () => {
    const metrics = new ProcessMetrics({ service: 'archiver', defaultMetrics: false });
    metrics.archiver.rows(2, 0);
    const server = await serveMetrics(metrics.registry, { host: '127.0.0.1', port: 0 });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const response = await fetch(`${server.url}/metrics`);
      expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(await response.text()).toContain(
        'streamgauge_archiver_rows_total{outcome="inserted",service="archiver"} 2',
      );
      expect(
        metricValue(await scrapeMetrics(`${server.url}/metrics?x=1`), 'streamgauge_archiver_rows_total'),
      ).toBe(2);
      expect((await fetch(`${server.url}/`)).status).toBe(404);
      expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('answers the probes: /healthz while it runs, /readyz once the service says it is ready, with the reason when not', async () => {
    const metrics = new ProcessMetrics({ service: 'aggregator', defaultMetrics: false });
    const server = await serveMetrics(metrics.registry, {
      host: '127.0.0.1',
      port: 0,
      ready: () => metrics.ready(),
    });
    const probe = async (path: string) => {
      const response = await fetch(`${server.url}${path}`);
      return { status: response.status, body: await response.json() };
    };
    try {
      expect(await probe('/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
      expect(await probe('/readyz')).toEqual({
        status: 503,
        body: { status: 'unavailable', error: 'starting' },
      });
      let redisAnswers = true;
      metrics.readyWhen(async () => {
        if (!redisAnswers) throw new Error('Redis: connection refused');
      });
      expect(await probe('/readyz')).toEqual({ status: 200, body: { status: 'ready' } });
      redisAnswers = false;
      expect(await probe('/readyz')).toEqual({
        status: 503,
        body: { status: 'unavailable', error: 'Redis: connection refused' },
      });
      // A check that hangs (a stopped Redis) is answered within a second.
      metrics.readyWhen(() => new Promise(() => {}));
      const started = Date.now();
      expect((await probe('/readyz')).status).toBe(503);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await server.close();
    }
  });

  it('fails to start on a port in use', async () => {
    const metrics = new ProcessMetrics({ service: 'archiver', defaultMetrics: false });
    const first = await serveMetrics(metrics.registry, { host: '127.0.0.1', port: 0 });
    try {
      const port = Number(new URL(first.url).port);
      await expect(serveMetrics(metrics.registry, { host: '127.0.0.1', port })).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
    } finally {
      await first.close();
    }
  });
});
