import { allShardKeys, type Config, GROUPS } from '@streamgauge/core';
import { blockingConnections, connectRedis, StreamConsumer, whenReady } from '@streamgauge/redis';
import { ProcessMetrics } from '@streamgauge/telemetry';
import { openWarehouse, type Warehouse } from '@streamgauge/warehouse';
import type { Logger } from 'pino';
import { type ArchiveOutcome, Archiver } from './archiver.ts';
import { archiveShard } from './shardLoop.ts';

export interface RunningArchiver {
  /** Finishes the batches in hand, closes the warehouse and connections. */
  stop(): Promise<void>;
  /** Settles when every shard's loop has ended (after stop, or on a fatal error). */
  readonly done: Promise<void>;
}

export interface ArchiverRuntime {
  /** A warehouse the caller opened (and closes); otherwise the configured one is opened and closed here. */
  readonly warehouse?: Warehouse;
  readonly onBatch?: (outcome: ArchiveOutcome) => void;
  /** The process's metrics (the caller serves them); default: this service's own, recorded but not served. */
  readonly metrics?: ProcessMetrics;
}

/** Longer than any write takes. */
const COMMAND_TIMEOUT_MS = 30_000;

/** `streamgauge archive`: one loop per stream shard (archiveShard), all at once. */
export async function startArchiver(
  config: Config,
  logger: Logger,
  runtime: ArchiverRuntime = {},
): Promise<RunningArchiver> {
  const log = logger.child({ consumer: config.archiver.consumer, group: GROUPS.archiver });
  const telemetry = runtime.metrics ?? new ProcessMetrics({ service: 'archiver', defaultMetrics: false });
  const redis = connectRedis(config.redis, {
    name: 'archiver',
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    logger: log,
  });
  let warehouse: Warehouse;
  try {
    await whenReady(redis, 30_000);
    warehouse = runtime.warehouse ?? (await openWarehouse(config));
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  const consumer = new StreamConsumer(
    redis,
    blockingConnections(config.redis, {
      name: 'archiver-read',
      blockMs: config.aggregator.blockMs,
      marginMs: COMMAND_TIMEOUT_MS,
      logger: log,
    }),
    {
      group: GROUPS.archiver,
      consumer: config.archiver.consumer,
      count: config.aggregator.readCount,
      blockMs: config.aggregator.blockMs,
    },
  );
  const archiver = new Archiver(warehouse, {
    group: GROUPS.archiver,
    maxDeliveries: config.aggregator.maxDeliveries,
    logger: log,
  });
  const stopped = new AbortController();
  const loops = allShardKeys(config.stream.shards).map((shard) =>
    archiveShard(
      shard,
      {
        consumer,
        redis,
        archiver,
        claimIdleMs: config.aggregator.claimIdleMs,
        lingerMs: config.archiver.lingerMs,
        metrics: telemetry,
        logger: log,
        onBatch: runtime.onBatch,
      },
      stopped.signal,
    ),
  );
  const done = Promise.all(loops).then(() => {});
  const unwatch = telemetry.consumerGroups.watch(redis, GROUPS.archiver, allShardKeys(config.stream.shards));
  // /readyz: ready while its Redis answers.
  telemetry.readyWhen(async () => {
    await redis.ping();
  });
  log.info({ shards: config.stream.shards }, 'archiver running');
  return {
    done,
    async stop() {
      stopped.abort();
      archiver.stop();
      // Ends the blocked reads; what they delivered stays pending for the next run.
      consumer.close();
      await done.catch(() => {});
      unwatch();
      if (runtime.warehouse === undefined) await warehouse.close();
      await redis.quit().catch(() => {});
      redis.disconnect();
      log.info('archiver stopped');
    },
  };
}
