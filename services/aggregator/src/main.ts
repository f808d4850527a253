import { allShardKeys, type Clock, type Config, GROUPS, systemClock } from '@streamgauge/core';
import { AggregateStore, connectRedis, ReadModelWriter, StreamConsumer, whenReady } from '@streamgauge/redis';
import type { Logger } from 'pino';
import type { Observable } from 'rxjs';
import { Aggregator } from './aggregator.ts';
import { type Processed, runPipeline } from './pipeline.ts';
import { paneBoundaries } from './ticks.ts';

export interface RunningAggregator {
  readonly processed$: Observable<Processed>;
  /** Nodes in the live state. */
  nodeCount(): number;
  /** Finishes the batch in hand, commits it, closes connections. */
  stop(): Promise<void>;
  /** Settles when the pipeline ends (after stop, or on a fatal error). */
  readonly done: Promise<void>;
}

export interface AggregatorRuntime {
  readonly clock?: Clock;
  /** Replaces the pane-boundary timer (tests drive the clock themselves). */
  readonly ticks$?: Observable<number>;
}

/** Longer than any write takes (a full rewrite of 10k nodes' keys takes about a second). */
const COMMAND_TIMEOUT_MS = 30_000;

/** State outlives the 30-day horizon by a day, then a silent node's state expires. */
const STATE_TTL_SECONDS = 31 * 24 * 3600;

export async function startAggregator(
  config: Config,
  logger: Logger,
  runtime: AggregatorRuntime = {},
): Promise<RunningAggregator> {
  const clock = runtime.clock ?? systemClock;
  const log = logger.child({ consumer: config.aggregator.consumer });
  // A watchdog on every command: a reply lost to a cut connection must end in
  // an error (then a retry: every write here is idempotent), never in a hang.
  const redis = connectRedis(config.redis, { name: 'aggregator', commandTimeoutMs: COMMAND_TIMEOUT_MS });
  const blocking = connectRedis(config.redis, {
    name: 'aggregator-read',
    commandTimeoutMs: config.aggregator.blockMs + COMMAND_TIMEOUT_MS,
  });
  // Metrics are written on their own connection, so `latest` writes never queue behind them.
  const metrics = connectRedis(config.redis, {
    name: 'aggregator-metrics',
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
  });
  for (const connection of [redis, blocking, metrics]) {
    connection.on('error', (error) => log.warn({ err: error }, 'redis connection error'));
  }
  await whenReady(redis, 30_000);

  const shards = allShardKeys(config.stream.shards);
  const consumer = new StreamConsumer(blocking, {
    shards,
    group: GROUPS.aggregator,
    consumer: config.aggregator.consumer,
    count: config.aggregator.readCount,
    blockMs: config.aggregator.blockMs,
  });
  await consumer.ensureGroups();
  const aggregator = new Aggregator(
    shards.map((shard) => ({ shard, store: new AggregateStore(redis, shard, STATE_TTL_SECONDS) })),
    {
      latest: new ReadModelWriter(redis, config.cacheTtlSeconds),
      metrics: new ReadModelWriter(metrics, config.cacheTtlSeconds),
    },
    // Readings may be stamped ahead of this clock by ingest's allowance plus host clock skew.
    {
      group: GROUPS.aggregator,
      aheadMs: config.ingest.maxFutureMs + 60_000,
      metricsIntervalMs: config.aggregator.metricsIntervalMs,
      clock,
      logger: log,
    },
  );
  await aggregator.start();

  const pipeline = runPipeline(consumer, aggregator, runtime.ticks$ ?? paneBoundaries(clock), log);
  pipeline.processed$.subscribe((done) => {
    if (done.kind === 'batches' && done.outcome.entries > 0) log.debug(done.outcome, 'batch applied');
    if (done.kind === 'batches' && (done.outcome.tooLate > 0 || done.outcome.tooEarly > 0)) {
      log.info(
        { tooLate: done.outcome.tooLate, tooEarly: done.outcome.tooEarly },
        'readings outside the live windows',
      );
    }
  });
  log.info({ streams: shards.map((s) => s.stream), nodes: aggregator.nodeCount }, 'aggregator running');

  const close = async () => {
    await Promise.all([redis, blocking, metrics].map((c) => c.quit().catch(() => {})));
    for (const connection of [redis, blocking, metrics]) connection.disconnect();
  };
  // A graceful stop writes what a coalesced flush still owed the dashboard.
  const done = pipeline.done
    .then(() => aggregator.flush())
    .catch((error: unknown) => {
      log.error({ err: error }, 'aggregator stopped on an error');
      throw error;
    })
    .finally(close);
  return {
    processed$: pipeline.processed$,
    nodeCount: () => aggregator.nodeCount,
    done,
    async stop() {
      pipeline.stop();
      await done;
      log.info('aggregator stopped');
    },
  };
}
