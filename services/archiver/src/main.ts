import { allShardKeys, backoffMs, type Config, GROUPS, sleep } from '@streamgauge/core';
import { ArchiveLog, connectRedis, ShardReader, StreamConsumer, whenReady } from '@streamgauge/redis';
import { ProcessMetrics } from '@streamgauge/telemetry';
import { openWarehouse, type Warehouse } from '@streamgauge/warehouse';
import type { Logger } from 'pino';
import { type ArchiveOutcome, Archiver } from './archiver.ts';

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

/**
 * `streamgauge archive`: one loop per stream shard (its pending entries
 * first, then new ones; ShardReader), each batch written to the warehouse,
 * then acknowledged.
 */
export async function startArchiver(
  config: Config,
  logger: Logger,
  runtime: ArchiverRuntime = {},
): Promise<RunningArchiver> {
  const log = logger.child({ consumer: config.archiver.consumer, group: GROUPS.archiver });
  const telemetry = runtime.metrics ?? new ProcessMetrics({ service: 'archiver', defaultMetrics: false });
  const consumed = telemetry.consumer(GROUPS.archiver);
  const redis = connectRedis(config.redis, { name: 'archiver', commandTimeoutMs: COMMAND_TIMEOUT_MS });
  redis.on('error', (error) => log.warn({ err: error }, 'redis connection error'));
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
    (shard) => {
      const blocking = connectRedis(config.redis, {
        name: `archiver-read:${shard.shard}`,
        commandTimeoutMs: config.aggregator.blockMs + COMMAND_TIMEOUT_MS,
      });
      blocking.on('error', (error) =>
        log.warn({ err: error, stream: shard.stream }, 'redis connection error'),
      );
      return blocking;
    },
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
  let stopping = false;
  const loops = allShardKeys(config.stream.shards).map(async (shard) => {
    let groupReady = false;
    const reader = new ShardReader(consumer, shard, { claimIdleMs: config.aggregator.claimIdleMs });
    const archiveLog = new ArchiveLog(redis, shard);
    redis.on('ready', () => reader.reconnected());
    for (let attempt = 0; !stopping; ) {
      try {
        // (Again after Redis lost it: a restart without persistence, a flush.)
        if (!groupReady) {
          await consumer.ensureGroup(shard);
          groupReady = true;
        }
        const { batch } = await reader.next();
        attempt = 0;
        if (batch.entries.length === 0) continue;
        const started = performance.now();
        const outcome = await archiver.apply(batch, archiveLog);
        consumed.batch(shard.stream, outcome, (performance.now() - started) / 1000);
        telemetry.archiver.rows(outcome.inserted, outcome.duplicates);
        runtime.onBatch?.(outcome);
        log.debug({ stream: shard.stream, ...outcome }, 'batch archived');
      } catch (error) {
        if (stopping) break;
        if ((error as Error).message?.includes('NOGROUP')) groupReady = false;
        log.warn({ err: error, attempt, stream: shard.stream }, 'reading the stream failed; retrying');
        await sleep(backoffMs(attempt++, { baseMs: 100, maxMs: 2_000 }));
      }
    }
  });
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
      stopping = true;
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
