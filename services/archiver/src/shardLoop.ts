import { setTimeout as delay } from 'node:timers/promises';
import { GROUPS, type ShardKeys } from '@streamgauge/core';
import { ArchiveLog, type RedisClient, ShardReader, type StreamConsumer } from '@streamgauge/redis';
import type { ProcessMetrics } from '@streamgauge/telemetry';
import type { Logger } from 'pino';
import type { ArchiveOutcome, Archiver } from './archiver.ts';

export interface ShardLoopOptions {
  readonly consumer: StreamConsumer;
  /** The shared connection: the batches' commits go over it, and its reconnections call for a scan of what is pending. */
  readonly redis: RedisClient;
  readonly archiver: Archiver;
  /** Entries pending this long on any consumer are claimed and archived again. */
  readonly claimIdleMs: number;
  /** After a read of fewer than LINGER_BELOW_READINGS, the next waits this long (ARCHIVER_LINGER_MS). */
  readonly lingerMs: number;
  readonly metrics: ProcessMetrics;
  readonly logger: Logger;
  readonly onBatch?: (outcome: ArchiveOutcome) => void;
}

/**
 * A write of this many readings costs DuckDB about a third per reading of
 * what a write of a thousand does (its primary-key index and per-statement
 * work), so a loop that keeps up waits for about this many.
 */
export const LINGER_BELOW_READINGS = 10_000;

/**
 * One shard's loop: what its ShardReader pulls (its pending entries first,
 * then new ones), each batch written to the warehouse, then acknowledged.
 * A pull or a batch that fails is logged and retried after a backoff; the
 * failed batch stays pending, to be claimed again. Ends once `signal` is
 * aborted, after the batch in hand.
 */
export async function archiveShard(
  shard: ShardKeys,
  options: ShardLoopOptions,
  signal: AbortSignal,
): Promise<void> {
  const { redis, archiver, metrics, logger } = options;
  const consumed = metrics.consumer(GROUPS.archiver);
  const archiveLog = new ArchiveLog(redis, shard);
  const reader = new ShardReader(options.consumer, shard, {
    claimIdleMs: options.claimIdleMs,
    onRetry: (error, attempt) =>
      logger.warn({ err: error, attempt, stream: shard.stream }, 'reading the stream failed; retrying'),
    onForgotten: (consumers) =>
      logger.info(
        { stream: shard.stream, consumers },
        'removed consumers idle for an hour with nothing pending',
      ),
  });
  const reconnected = () => reader.reconnected();
  redis.on('ready', reconnected);
  const archiveNext = async (): Promise<number> => {
    const { batch } = await reader.next();
    if (batch.entries.length === 0) return 0;
    const started = performance.now();
    const outcome = await archiver.apply(batch, archiveLog);
    consumed.batch(shard.stream, outcome, (performance.now() - started) / 1000);
    metrics.archiver.rows(outcome.inserted, outcome.duplicates);
    options.onBatch?.(outcome);
    logger.debug({ stream: shard.stream, ...outcome }, 'batch archived');
    return outcome.readings;
  };
  try {
    while (!signal.aborted) {
      const readings = await reader.retry(archiveNext, signal);
      // An empty read already waited (the read blocks); one that found little lets more arrive.
      if (readings > 0 && readings < LINGER_BELOW_READINGS && options.lingerMs > 0) {
        await delay(options.lingerMs, undefined, { signal }).catch(() => {});
      }
    }
  } catch (error) {
    // The retries end by rejecting once the loop is told to stop; that is its end, not a failure.
    if (!signal.aborted) throw error;
  } finally {
    redis.off('ready', reconnected);
  }
}
