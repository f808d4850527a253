import { type RunningAggregator, startAggregator } from '@streamgauge/aggregator';
import { startArchiver } from '@streamgauge/archiver';
import { type RunningBackfill, startBackfill } from '@streamgauge/backfill';
import {
  addToPane,
  allShardKeys,
  decodePanes,
  encodePanes,
  GROUPS,
  horizonStart,
  NodeWindows,
  type PaneRing,
  RING_OF_RANGE,
  reconcileKeys,
  shardKeys,
  shardOf,
} from '@streamgauge/core';
import { startIngest } from '@streamgauge/ingest';
import { CacheStatus } from '@streamgauge/redis';
import { checkReadModel, generateDataset, waitForAggregator, waitForDrain } from '@streamgauge/testkit';
import { DuckdbWarehouse, duckdbPath, importReadings } from '@streamgauge/warehouse';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { postReadings } from '../support/postReadings.ts';
import { testSystem } from '../support/system.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
});

function system(env: Record<string, string> = {}) {
  return testSystem('backfill', { STREAM_SHARDS: '3', ...env }, (step) => cleanup.push(step));
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function* ndjson(readings: readonly object[]): AsyncIterable<string> {
  for (const r of readings) yield JSON.stringify(r);
}

describe('backfill from the warehouse', () => {
  it('fills every read-model key on a cold start from 30 days of imported history, and only then says initialized', async () => {
    const { redis, config } = await system();
    const now = Date.now();
    const data = generateDataset({ nodes: 12, days: 30, intervalMs: 20 * 60_000, now, seed: 21 });
    const warehouse = await DuckdbWarehouse.open(duckdbPath(config));
    cleanup.push(() => warehouse.close());
    const summary = await importReadings(ndjson(data.sent), warehouse, {
      format: 'ndjson',
      source: 'history.ndjson',
      nowMs: now,
      maxFutureMs: config.ingest.maxFutureMs,
    });
    expect(summary.imported).toBe(data.unique.length);

    // The backfill starts first: the read model is empty, so it runs at once
    // and offers its panes; with no aggregator yet, nothing is in place.
    const archiver = await startArchiver(config, logger, { warehouse });
    cleanup.push(() => archiver.stop());
    const backfill: RunningBackfill = await startBackfill(config, warehouse, logger);
    cleanup.push(() => backfill.stop());
    const status = new CacheStatus(redis);
    await until('the offers', async () => ((await redis.exists('rec:{2}:offer')) === 1 ? true : undefined));
    const before = await status.read(config.cacheRefreshMs, Date.now());
    expect(before).toMatchObject({ initialized: false, status: 'initializing' });
    expect(await redis.exists('nodes:all')).toBe(0);

    const aggregator: RunningAggregator = await startAggregator(config, logger);
    cleanup.push(() => aggregator.stop());
    const report = await until('the report', async () => {
      const raw = await redis.get(reconcileKeys.last);
      return raw === null ? undefined : JSON.parse(raw);
    });
    expect(report).toMatchObject({ status: 'complete', nodesCreated: 12, shards: { total: 3, applied: 3 } });
    // Per node, 30 days of one reading per 20 minutes fill ~280 panes (docs/read-model.md).
    expect(report.panesChanged).toBeGreaterThan(12 * 250);

    const problems = await checkReadModel(redis, data.unique, {
      ttlSeconds: config.cacheTtlSeconds,
      horizonStart: horizonStart(now),
    });
    expect(problems.slice(0, 20)).toEqual([]);
    const after = await status.read(config.cacheRefreshMs, Date.now());
    expect(after).toMatchObject({ initialized: true, status: 'ok' });
    expect(Date.parse(after.lastRefresh ?? '')).toBeGreaterThanOrEqual(
      Date.parse(before.refreshingSince ?? ''),
    );
    expect(after.keys).toBeGreaterThan(12 * 9);
  }, 120_000);

  it('stops at once while a run waits for aggregators that are gone, and records why it ended', async () => {
    const { redis, config } = await system({ BACKFILL_APPLY_TIMEOUT_SECONDS: '300' });
    const now = Date.now();
    const data = generateDataset({ nodes: 3, days: 1, intervalMs: 20 * 60_000, now, seed: 5 });
    const warehouse = await DuckdbWarehouse.open(duckdbPath(config));
    cleanup.push(() => warehouse.close());
    await importReadings(ndjson(data.sent), warehouse, {
      format: 'ndjson',
      source: 'history.ndjson',
      nowMs: now,
      maxFutureMs: config.ingest.maxFutureMs,
    });
    const archiver = await startArchiver(config, logger, { warehouse });
    cleanup.push(() => archiver.stop());
    // A cold start: the run offers its panes and waits for reports no aggregator will write.
    const backfill = await startBackfill(config, warehouse, logger);
    await until('the offers', async () => ((await redis.exists('rec:{2}:offer')) === 1 ? true : undefined));
    const stopping = Date.now();
    await backfill.stop();
    // Within the poll of its wait, not the 300 s apply timeout (Ctrl-C on `streamgauge start`).
    expect(Date.now() - stopping).toBeLessThan(5_000);
    const status = await new CacheStatus(redis).read(config.cacheRefreshMs, Date.now());
    expect(status).toMatchObject({
      initialized: false,
      status: 'error',
      lastError: 'the backfill scheduler stopped before the run completed',
    });
    expect(status.refreshingSince).toBeUndefined();
  }, 60_000);

  it('repairs deleted panes, a phantom reading and a trimmed stream while readings keep arriving, and reports the drift', async () => {
    const { redis, config } = await system();
    const now = Date.now();
    const data = generateDataset({ nodes: 12, days: 30, intervalMs: 20 * 60_000, now, seed: 22 });
    const split = Math.floor(data.sent.length * 0.7);
    const ingest = await startIngest(config, logger);
    cleanup.push(() => ingest.close());
    const warehouse = await DuckdbWarehouse.open(duckdbPath(config));
    cleanup.push(() => warehouse.close());
    const archiver = await startArchiver(config, logger, { warehouse });
    cleanup.push(() => archiver.stop());
    const backfill = await startBackfill(config, warehouse, logger, { schedule: false });
    cleanup.push(() => backfill.stop());
    let aggregator = await startAggregator(config, logger);

    await postReadings(ingest.url, data.sent.slice(0, split), { batch: 200 });
    await waitForAggregator(redis, 3, 60_000);
    const streams = allShardKeys(3).map((k) => k.stream);
    await waitForDrain(
      redis,
      streams,
      GROUPS.archiver,
      60_000,
      (stream) => allShardKeys(3).find((k) => k.stream === stream)?.archive.watermark ?? '',
    );
    await aggregator.stop();

    // Corrupt the live state: one node loses five day panes, another gains
    // a reading that never happened; the streams lose every entry.
    const [lossy, haunted] = ['NODE003', 'NODE007'];
    const stateOf = (id: string) => shardKeys(shardOf(id, 3), 3).aggregateNode(id);
    // The 30-day ring's panes other than the newest (fields `r<ring>` and its
    // recent panes `t<ring>`, core's pane codec): the readings sent so far
    // span three weeks. Written back all in `r<ring>`, as a full write does.
    const field = `r${RING_OF_RANGE['30d']}`;
    const recent = `t${RING_OF_RANGE['30d']}`;
    const daily = async (id: string) => {
      const ring = new NodeWindows(id, 0).rings[RING_OF_RANGE['30d']] as PaneRing;
      decodePanes(ring, (await redis.hgetBuffer(stateOf(id), field)) ?? Buffer.alloc(0));
      decodePanes(ring, (await redis.hgetBuffer(stateOf(id), recent)) ?? Buffer.alloc(0));
      return ring;
    };
    const save = async (id: string, ring: PaneRing, panes: number[]) => {
      await redis.hset(stateOf(id), field, Buffer.from(encodePanes(ring, panes)));
      await redis.hdel(stateOf(id), recent);
    };
    const lossyRing = await daily(lossy);
    const kept = lossyRing.panes();
    const lost = kept.splice(10, 5);
    expect(lost).toHaveLength(5);
    await save(lossy, lossyRing, kept);
    const hauntedRing = await daily(haunted);
    const pane = hauntedRing.panes()[12] as number;
    addToPane(hauntedRing.data, hauntedRing.offsetOf(pane), {
      node_id: haunted,
      timestamp: pane * hauntedRing.paneMs + 1_000,
      flow_rate: 250,
    });
    await save(haunted, hauntedRing, hauntedRing.panes());
    for (const stream of streams) await redis.xtrim(stream, 'MAXLEN', 0);

    aggregator = await startAggregator(config, logger);
    cleanup.push(() => aggregator.stop());
    const sentFirst = new Set(data.sent.slice(0, split).map((r) => `${r.node_id}@${r.timestamp}`));
    const firstPart = data.unique.filter((r) => sentFirst.has(`${r.node_id}@${r.timestamp}`));
    const corrupted = await checkReadModel(redis, firstPart, {
      ttlSeconds: config.cacheTtlSeconds,
      horizonStart: horizonStart(now),
    });
    expect(corrupted.some((p) => p.includes(lossy))).toBe(true);
    expect(corrupted.some((p) => p.includes(haunted))).toBe(true);

    // The archiver stops, so the warehouse falls behind the live state: the
    // readings sent from now on are after the cut, and replayed from the
    // stream. Half of them arrive before the run, half during it.
    await archiver.stop();
    const rest = split + Math.floor((data.sent.length - split) / 2);
    await postReadings(ingest.url, data.sent.slice(split, rest), { batch: 200 });
    await waitForAggregator(redis, 3, 60_000);
    const sending = postReadings(ingest.url, data.sent.slice(rest), { batch: 50 });
    const report = await backfill.runNow();
    await sending;
    await waitForAggregator(redis, 3, 60_000);
    const shardReports = Object.values(await redis.hgetall(reconcileKeys.reports(report.run))).map((json) =>
      JSON.parse(json),
    );
    expect(shardReports.reduce((n, r) => n + r.tailEntries, 0)).toBeGreaterThan(0);

    expect(report.status).toBe('complete');
    expect(report.panesChanged).toBeGreaterThanOrEqual(6);
    expect(report.drift.readings).toBeGreaterThanOrEqual(1);
    expect(report.warnings).toEqual([]);
    expect(report.drift['flow_rate.max'] ?? report.drift['flow_rate.mean']).toBeGreaterThan(0);
    // Only the two nodes that differed from the persisted state were offered.
    expect({ offered: report.nodesOffered, matched: report.nodesMatched }).toEqual({
      offered: 2,
      matched: 10,
    });
    const problems = await checkReadModel(redis, data.unique, {
      ttlSeconds: config.cacheTtlSeconds,
      horizonStart: horizonStart(now),
    });
    expect(problems.slice(0, 20)).toEqual([]);

    // Nothing drifted since: a second run compares every node (the stream
    // after the cut replayed onto the warehouse's panes) and offers none.
    const again = await backfill.runNow();
    expect(again.status).toBe('complete');
    expect({ offered: again.nodesOffered, matched: again.nodesMatched, bytes: again.payloadBytes }).toEqual({
      offered: 0,
      matched: 12,
      bytes: 0,
    });
    expect(again.panesCompared).toBeGreaterThan(1000);
    expect(again.panesChanged).toBe(0);
    expect(again.drift).toEqual({});
    expect(
      (
        await checkReadModel(redis, data.unique, {
          ttlSeconds: config.cacheTtlSeconds,
          horizonStart: horizonStart(now),
        })
      ).slice(0, 20),
    ).toEqual([]);
  }, 180_000);

  it('refuses a run for a shard whose stream lost entries after the cut, and says so', async () => {
    const { redis, config } = await system({ STREAM_SHARDS: '2' });
    const now = Date.now();
    const data = generateDataset({ nodes: 6, days: 3, intervalMs: 30 * 60_000, now, seed: 23 });
    const ingest = await startIngest(config, logger);
    cleanup.push(() => ingest.close());
    const warehouse = await DuckdbWarehouse.open(duckdbPath(config));
    cleanup.push(() => warehouse.close());
    const archiver = await startArchiver(config, logger, { warehouse });
    const backfill = await startBackfill(config, warehouse, logger, { schedule: false });
    cleanup.push(() => backfill.stop());
    let aggregator = await startAggregator(config, logger);
    const half = Math.floor(data.sent.length / 2);
    await postReadings(ingest.url, data.sent.slice(0, half), { batch: 200 });
    const [first, second] = allShardKeys(2);
    if (first === undefined || second === undefined) throw new Error('two shards expected');
    await waitForDrain(redis, [first.stream, second.stream], GROUPS.archiver, 60_000, (stream) =>
      stream === first.stream ? first.archive.watermark : second.archive.watermark,
    );
    // The rest reaches the live state but not the warehouse (after the cut).
    await archiver.stop();
    await postReadings(ingest.url, data.sent.slice(half), { batch: 200 });
    await waitForAggregator(redis, 2, 60_000);
    await aggregator.stop();
    // The run offers its panes; before an aggregator takes them, shard 0's
    // stream loses the entries after the cut: their readings are in no part
    // of the truth, so applying it would drop them from the live state.
    const running = backfill.runNow();
    await until('the offers', async () =>
      (await redis.exists(first.reconcile.offer)) === 1 ? true : undefined,
    );
    await redis.xtrim(first.stream, 'MAXLEN', 0);
    aggregator = await startAggregator(config, logger);
    cleanup.push(() => aggregator.stop());

    const report = await running;
    expect(report.status).toBe('partial');
    expect(report.shards).toMatchObject({ applied: 1, skipped: [0], pending: [] });
    expect(report.warnings.join()).toContain(`were trimmed from ${first.stream}`);
    const stats = await new CacheStatus(redis).read(config.cacheRefreshMs, Date.now());
    expect(stats).toMatchObject({ status: 'error', initialized: false });
    expect(stats.lastError).toContain('refused');
    // Nothing was taken from the live state.
    const problems = await checkReadModel(redis, data.unique, {
      ttlSeconds: config.cacheTtlSeconds,
      horizonStart: horizonStart(now),
    });
    expect(problems.slice(0, 20)).toEqual([]);
  }, 120_000);
});
