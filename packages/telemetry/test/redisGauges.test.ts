import { allShardKeys, reconcileKeys, type ShardKeys } from '@streamgauge/core';
import { connectRedis } from '@streamgauge/redis';
import { metricSamples, metricValue, parseMetrics, useRedis } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { ProcessMetrics } from '../src/index.ts';

const db = useRedis({ flushEach: true });

async function samples(metrics: ProcessMetrics) {
  return parseMetrics((await metrics.scrape()).body);
}

/** Fresh reads at every scrape. */
const options = { service: 'test', defaultMetrics: false, scrape: { maxAgeMs: 0 } };

describe('consumer group gauges', () => {
  it("count a shard's dead letters once when two threads' registries, each watching its group, are served as one", async () => {
    const [shard] = allShardKeys(1) as [ShardKeys];
    await db.client.xgroup('CREATE', shard.stream, 'aggregator', '$', 'MKSTREAM');
    await db.client.xgroup('CREATE', shard.stream, 'archiver', '$');
    for (let i = 0; i < 3; i++) await db.client.xadd(shard.deadLetters, '*', 'entry', String(i));
    const main = new ProcessMetrics(options);
    const thread = new ProcessMetrics(options);
    main.consumerGroups.watch(db.client, 'archiver', [shard]);
    thread.consumerGroups.watch(db.client, 'aggregator', [shard]);
    main.addSource(() => thread.registry.getMetricsAsJSON());
    const all = await samples(main);
    expect(metricSamples(all, 'streamgauge_dead_letters').map((s) => s.value)).toEqual([3]);
    expect(metricSamples(all, 'streamgauge_consumer_lag')).toHaveLength(2);
  });

  it('report lag and pending per stream shard, for the groups watched', async () => {
    const [a, b] = allShardKeys(2) as [ShardKeys, ShardKeys];
    for (const stream of [a.stream, b.stream]) {
      await db.client.xgroup('CREATE', stream, 'aggregator', '$', 'MKSTREAM');
      await db.client.xgroup('CREATE', stream, 'archiver', '$');
    }
    for (let i = 0; i < 5; i++) await db.client.xadd(a.stream, '*', 'n', '1');
    await db.client.xadd(b.stream, '*', 'n', '1');
    // Two of shard a's entries delivered, one acknowledged.
    const read = (await db.client.xreadgroup(
      'GROUP',
      'aggregator',
      'c1',
      'COUNT',
      2,
      'STREAMS',
      a.stream,
      '>',
    )) as [string, [string, string[]][]][];
    const [first] = read[0]?.[1][0] ?? [];
    await db.client.xack(a.stream, 'aggregator', first as string);

    const metrics = new ProcessMetrics(options);
    const unwatch = metrics.consumerGroups.watch(db.client, 'aggregator', allShardKeys(2));
    const all = await samples(metrics);
    const rows = (name: string) =>
      metricSamples(all, name).map((s) => [
        s.labels.messaging_consumer_group_name,
        s.labels.messaging_destination_name,
        s.value,
      ]);
    expect(rows('streamgauge_consumer_lag')).toEqual([
      ['aggregator', a.stream, 3],
      ['aggregator', b.stream, 1],
    ]);
    expect(rows('streamgauge_consumer_pending')).toEqual([
      ['aggregator', a.stream, 1],
      ['aggregator', b.stream, 0],
    ]);

    // Another service of the process watches its group too; one that stops is left out.
    const unwatchArchiver = metrics.consumerGroups.watch(db.client, 'archiver', allShardKeys(2));
    unwatch();
    expect(
      metricValue(await samples(metrics), 'streamgauge_consumer_lag', {
        messaging_consumer_group_name: 'archiver',
      }),
    ).toBe(6);
    expect(
      metricSamples(await samples(metrics), 'streamgauge_consumer_lag', {
        messaging_consumer_group_name: 'aggregator',
      }),
    ).toEqual([]);
    unwatchArchiver();
  });

  it("report the oldest pending entry's age per group and the dead letters per shard", async () => {
    const [a, b] = allShardKeys(2) as [ShardKeys, ShardKeys];
    for (const stream of [a.stream, b.stream])
      await db.client.xgroup('CREATE', stream, 'archiver', '0', 'MKSTREAM');
    // An entry stamped 90 s ago, delivered and never acknowledged; shard b has none pending.
    const id = `${Date.now() - 90_000}-0`;
    await db.client.xadd(a.stream, id, 'n', '1');
    await db.client.xreadgroup('GROUP', 'archiver', 'c1', 'COUNT', 10, 'STREAMS', a.stream, '>');
    await db.client.xadd(a.deadLetters, '*', 'group', 'archiver');
    await db.client.xadd(a.deadLetters, '*', 'group', 'aggregator');

    const metrics = new ProcessMetrics(options);
    metrics.consumerGroups.watch(db.client, 'archiver', allShardKeys(2));
    const all = await samples(metrics);
    const age = metricSamples(all, 'streamgauge_consumer_pending_oldest_age_seconds');
    expect(age.map((s) => s.labels.messaging_destination_name)).toEqual([a.stream]);
    expect(age[0]?.value).toBeGreaterThanOrEqual(90);
    expect(age[0]?.value).toBeLessThan(100);
    expect(
      metricSamples(all, 'streamgauge_dead_letters').map((s) => [
        s.labels.messaging_destination_name,
        s.value,
      ]),
    ).toEqual([
      [a.stream, 2],
      [b.stream, 0],
    ]);
  });

  it("report Redis' memory used and its maxmemory", async () => {
    const metrics = new ProcessMetrics(options);
    metrics.redisMemory.watch(db.client);
    const info = await db.client.info('memory');
    const max = Number(/^maxmemory:(\d+)/m.exec(info)?.[1]);
    const all = await samples(metrics);
    expect(metricValue(all, 'streamgauge_redis_memory_used_bytes')).toBeGreaterThan(100_000);
    expect(metricValue(all, 'streamgauge_redis_memory_max_bytes')).toBe(max);
  });

  it('leave the series out, and count the failure, when Redis does not answer', async () => {
    // Nothing listens on port 1: every command fails at once.
    const gone = connectRedis(
      { url: 'redis://127.0.0.1:1', explicit: true },
      { name: 'gone', failFast: true },
    );
    gone.on('error', () => {});
    const metrics = new ProcessMetrics(options);
    metrics.consumerGroups.watch(gone, 'aggregator', allShardKeys(1));
    const all = await samples(metrics);
    expect(metricSamples(all, 'streamgauge_consumer_lag')).toEqual([]);
    // A failure is counted as the scrape runs: the next one shows it.
    const next = await samples(metrics);
    const failures = (source: string) =>
      metricValue(next, 'streamgauge_scrape_read_failures_total', { source }) ?? 0;
    expect(failures('consumer_groups')).toBeGreaterThanOrEqual(1);
    expect(failures('reconcile')).toBe(0);
    gone.disconnect();
  });
});

describe('open anomalies', () => {
  it('sum what each watched aggregator holds open, by type, every type shown', async () => {
    const metrics = new ProcessMetrics(options);
    expect(metricSamples(await samples(metrics), 'streamgauge_anomalies_open')).toEqual([]);
    let held = new Map([
      ['low_pressure', 2],
      ['offline', 1],
    ]);
    metrics.openAnomalies.watch(() => held);
    const stop = metrics.openAnomalies.watch(() => new Map([['low_pressure', 3]]));
    const open = async () =>
      Object.fromEntries(
        metricSamples(await samples(metrics), 'streamgauge_anomalies_open').map((s) => [
          s.labels.anomaly_type,
          s.value,
        ]),
      );
    expect(await open()).toEqual({
      high_flow: 0,
      low_flow: 0,
      no_flow: 0,
      high_pressure: 0,
      low_pressure: 5,
      offline: 1,
      stuck_sensor: 0,
      gradual_leak: 0,
    });
    // Read afresh at every scrape; a stopped watcher no longer counts.
    stop();
    held = new Map([['offline', 4]]);
    expect(await open()).toMatchObject({ low_pressure: 0, offline: 4 });
  });
});

describe('reconcile gauges', () => {
  it("show the last run's drift per metric and when it finished", async () => {
    const metrics = new ProcessMetrics(options);
    metrics.reconcile.watch(db.client);
    const before = await samples(metrics);
    expect(metricSamples(before, 'streamgauge_reconcile_drift')).toEqual([]);
    // No run yet: no series (a 0 would read as a run in 1970).
    expect(metricSamples(before, 'streamgauge_reconcile_last_finished_timestamp_seconds')).toEqual([]);

    await db.client.set(
      reconcileKeys.last,
      JSON.stringify({
        status: 'complete',
        finishedAt: '2026-05-01T10:00:00.000Z',
        drift: { readings: 3, 'flow_rate.mean': 0.25 },
      }),
    );
    const after = await samples(metrics);
    expect(metricValue(after, 'streamgauge_reconcile_drift', { metric: 'readings' })).toBe(3);
    expect(metricValue(after, 'streamgauge_reconcile_drift', { metric: 'flow_rate.mean' })).toBe(0.25);
    // What did not drift shows as 0.
    expect(metricSamples(after, 'streamgauge_reconcile_drift')).toHaveLength(13);
    expect(metricValue(after, 'streamgauge_reconcile_drift', { metric: 'pressure.max' })).toBe(0);
    expect(
      metricValue(after, 'streamgauge_reconcile_last_finished_timestamp_seconds', {
        status: 'complete',
        scope: 'full',
      }),
    ).toBe(Date.parse('2026-05-01T10:00:00.000Z') / 1000);

    // A scoped rebuild, or a partial run, measured only part of the live state: no drift shown.
    for (const report of [
      { status: 'complete', scope: { nodes: ['N1'] }, labels: { status: 'complete', scope: 'scoped' } },
      { status: 'partial', labels: { status: 'partial', scope: 'full' } },
    ]) {
      await db.client.set(
        reconcileKeys.last,
        JSON.stringify({ ...report, finishedAt: '2026-05-02T10:00:00.000Z', drift: { readings: 9 } }),
      );
      const later = await samples(metrics);
      expect(metricSamples(later, 'streamgauge_reconcile_drift')).toEqual([]);
      expect(metricValue(later, 'streamgauge_reconcile_last_finished_timestamp_seconds', report.labels)).toBe(
        Date.parse('2026-05-02T10:00:00.000Z') / 1000,
      );
    }
  });
});
