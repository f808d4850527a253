import { type Clock, type Config, liveAheadMs, systemClock } from '@streamgauge/core';
import {
  CacheStatus,
  connectRedis,
  ReconcileOffers,
  type ReconcileScope,
  whenReady,
} from '@streamgauge/redis';
import { ProcessMetrics } from '@streamgauge/telemetry';
import type { Warehouse } from '@streamgauge/warehouse';
import type { Logger } from 'pino';
import { type ReconcileProgress, type ReconcileReport, Reconciler } from './reconciler.ts';
import { BackfillScheduler } from './scheduler.ts';

export interface RunningBackfill {
  /** Runs one backfill now, after the one in hand. */
  runNow(options?: {
    scope?: ReconcileScope;
    onProgress?: (p: ReconcileProgress) => void;
  }): Promise<ReconcileReport>;
  stop(): Promise<void>;
}

/**
 * The backfill beside a warehouse this process has open (DuckDB lets one
 * process open its file, so with DuckDB it runs in the archiver's process).
 * `schedule: false` only runs on demand.
 */
export async function startBackfill(
  config: Config,
  warehouse: Warehouse,
  logger: Logger,
  runtime: { clock?: Clock; schedule?: boolean; metrics?: ProcessMetrics } = {},
): Promise<RunningBackfill> {
  const clock = runtime.clock ?? systemClock;
  const log = logger.child({ component: 'backfill' });
  const redis = connectRedis(config.redis, { name: 'backfill', commandTimeoutMs: 60_000, logger: log });
  try {
    await whenReady(redis, 30_000);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  const reconciler = new Reconciler(
    redis,
    warehouse,
    { offers: new ReconcileOffers(redis), status: new CacheStatus(redis) },
    {
      shards: config.stream.shards,
      aheadMs: liveAheadMs(config),
      concurrency: config.backfill.concurrency,
      applyTimeoutMs: config.backfill.applyTimeoutMs,
      ttlSeconds: Math.max(3600, Math.round((2 * config.cacheRefreshMs) / 1000)),
      clock,
      logger: log,
    },
  );
  const telemetry = runtime.metrics ?? new ProcessMetrics({ service: 'backfill', defaultMetrics: false });
  const runs = telemetry.backfill;
  const scheduler = new BackfillScheduler(redis, reconciler, {
    refreshMs: config.cacheRefreshMs,
    retryMs: 5 * 60_000,
    pollMs: 1_000,
    clock,
    logger: log,
    onRun: (status, durationMs) => runs.run(status, durationMs / 1000),
  });
  const unwatch = telemetry.reconcile.watch(redis);
  // /readyz: ready while its Redis answers.
  telemetry.readyWhen(async () => {
    await redis.ping();
  });
  if (runtime.schedule !== false) scheduler.start();
  return {
    runNow: (options = {}) => scheduler.runNow(options),
    async stop() {
      await scheduler.stop();
      unwatch();
      await redis.quit().catch(() => {});
      redis.disconnect();
    },
  };
}
