import { randomUUID } from 'node:crypto';
import type { PubSub } from '@google-cloud/pubsub';
import { allShardKeys, type Clock, type Config, GROUPS, liveAheadMs, systemClock } from '@streamgauge/core';
import { AnomalyTopic, pubsubClient } from '@streamgauge/pubsub';
import {
  AggregateStore,
  AnomalySink,
  blockingConnections,
  CommitConnection,
  connectRedis,
  ReadModelWriter,
  ReconcileOffers,
  ShardLeases,
  StreamConsumer,
  whenReady,
} from '@streamgauge/redis';
import { ProcessMetrics } from '@streamgauge/telemetry';
import type { Logger } from 'pino';
import { filter, firstValueFrom, fromEvent, type Observable, skip } from 'rxjs';
import { Aggregator } from './aggregator.ts';
import { AnomalyPublisher, pubsubTarget, redisTarget } from './anomalyPublisher.ts';
import { LeaseKeeper, renewalsBetween } from './leaseKeeper.ts';
import { type Processed, runPipeline } from './pipeline.ts';
import { paneBoundaries } from './ticks.ts';

export interface RunningAggregator {
  readonly processed$: Observable<Processed>;
  /** Nodes in the live state. */
  nodeCount(): number;
  /** Read-model keys this replica has written since it started. */
  keysWritten(): number;
  /** Anomalies open now on the nodes this replica holds, by type. */
  openAnomalies(): ReadonlyMap<string, number>;
  /** The shards (stream names) this replica holds now. */
  heldShards(): string[];
  /** Finishes the batch in hand, commits it, writes what is owed, gives up its leases, closes connections. */
  stop(): Promise<void>;
  /** Settles when the pipeline ends (after stop, or on a fatal error). */
  readonly done: Promise<void>;
}

export interface AggregatorRuntime {
  readonly clock?: Clock;
  /** Replaces the pane-boundary timer (tests drive the clock themselves). */
  readonly ticks$?: Observable<number>;
  /** The Pub/Sub client for ANOMALY_TOPIC (default: from the configuration, honouring PUBSUB_EMULATOR_HOST). */
  readonly pubsub?: PubSub;
  /** The process's metrics (the caller serves them); default: this service's own, recorded but not served. */
  readonly metrics?: ProcessMetrics;
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
  const settings = config.aggregator;
  const log = logger.child({ consumer: settings.consumer });
  const telemetry = runtime.metrics ?? new ProcessMetrics({ service: 'aggregator', defaultMetrics: false });
  const consumed = telemetry.consumer(GROUPS.aggregator);
  const aggregated = telemetry.aggregator;
  // A watchdog on every command: a reply lost to a cut connection must end in
  // an error (then a retry: every write here is idempotent), never in a hang.
  const redis = connectRedis(config.redis, {
    name: 'aggregator',
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    logger: log,
  });
  // Metrics are written on their own connection, so `latest` writes never queue behind them.
  const metrics = connectRedis(config.redis, {
    name: 'aggregator-metrics',
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    logger: log,
  });
  await whenReady(redis, 30_000);
  // Commits go as transactions on a connection of their own (standalone Redis; see CommitConnection).
  const commits = CommitConnection.beside(redis, 'streamgauge:aggregator-commits', log);

  const consumer = new StreamConsumer(
    redis,
    blockingConnections(config.redis, {
      name: 'aggregator-read',
      blockMs: settings.blockMs,
      marginMs: COMMAND_TIMEOUT_MS,
      logger: log,
    }),
    {
      group: GROUPS.aggregator,
      consumer: settings.consumer,
      count: settings.readCount,
      blockMs: settings.blockMs,
      catchup: { readings: settings.catchupReadings },
    },
  );
  // Unique per process: two replicas never share a lease, even under one consumer name.
  const token = `${settings.consumer}/${randomUUID()}`;
  // Renewals share the hot connection on purpose: queued behind a long
  // script they wait, where on a connection of their own they would be
  // answered BUSY while a script runs past lua-time-limit. Tried: with a
  // lease connection of its own, a 100,000-node drain lost its lease over
  // and over (docs/benchmarks.md, "Throughput: the second part of issue 16").
  const leases = new ShardLeases(redis, { token, leaseMs: settings.leaseMs });
  // Renewed first between two commit transactions, on their connection: a
  // renewal landing while a transaction is on its way (it WATCHes the lease)
  // aborts it. When that fails (BUSY, the connection down, the transactions
  // ahead too long), on the shared connection, as above.
  const keeper = new LeaseKeeper(leases, allShardKeys(config.stream.shards), log, {
    ...(commits && {
      renewals: renewalsBetween(
        commits,
        new ShardLeases(commits.client, { token, leaseMs: settings.leaseMs }),
      ),
    }),
  });
  const offers = new ReconcileOffers(redis);
  const writers = {
    latest: new ReadModelWriter(redis, config.cacheTtlSeconds),
    metrics: new ReadModelWriter(metrics, config.cacheTtlSeconds),
  };
  const aggregator = new Aggregator(writers, {
    group: GROUPS.aggregator,
    aheadMs: liveAheadMs(config),
    metricsIntervalMs: settings.metricsIntervalMs,
    longRangesIntervalMs: settings.longRangesIntervalMs,
    shardCount: config.stream.shards,
    maxDeliveries: settings.maxDeliveries,
    sliceReadings: settings.sliceReadings,
    clock,
    logger: log,
    onLeaseLost: (shard) => keeper.lost(shard),
    offers,
    anomalies: config.anomalies.settings,
    onLatestWritten: (nodes, eventTime) => aggregated.latestWritten(nodes, eventTime, clock.now()),
  });

  const pipeline = runPipeline(consumer, aggregator, keeper, runtime.ticks$ ?? paneBoundaries(clock), log, {
    claimIdleMs: settings.claimIdleMs,
    newState: (shard, leaseToken) => ({
      shard,
      store: new AggregateStore(redis, shard, {
        ttlSeconds: STATE_TTL_SECONDS,
        token: leaseToken,
        clock,
        ...(commits !== undefined && { connection: commits }),
      }),
    }),
    // The first 'ready' is the initial connection; later ones follow a drop.
    reconnected$: fromEvent(redis, 'ready').pipe(skip(redis.status === 'ready' ? 0 : 1)),
    offers,
    catchupReadings: settings.catchupReadings,
  });
  const sink = new AnomalySink(metrics, { ttlSeconds: config.cacheTtlSeconds });
  const topicName = config.anomalies.topic;
  const pubsub = topicName === undefined ? undefined : (runtime.pubsub ?? pubsubClient(config.pubsubClient));
  const topic =
    pubsub === undefined || topicName === undefined ? undefined : new AnomalyTopic(pubsub, topicName);
  const targets = [redisTarget(sink), ...(topic === undefined ? [] : [pubsubTarget(sink, topic)])];
  const anomalies = new AnomalyPublisher(targets, () => keeper.held, log);
  anomalies.start();
  // Read when /metrics is scraped, on the connection that is not on the hot path.
  const unwatch = [
    telemetry.consumerGroups.watch(metrics, GROUPS.aggregator, allShardKeys(config.stream.shards)),
    telemetry.openAnomalies.watch(() => aggregator.openAnomalies()),
    telemetry.redisMemory.watch(metrics),
  ];
  // /readyz: ready while its Redis answers.
  telemetry.readyWhen(async () => {
    await metrics.ping();
  });
  const settled = new Set<string>();
  pipeline.processed$.subscribe({
    // The pipeline's failure is reported by `done` below.
    error: () => {},
    next: (done) => {
      if (done.kind === 'release') settled.delete(done.stream);
      if (done.kind !== 'batches') return;
      if (done.settled !== undefined) settled.add(done.settled);
      if (done.outcome.entries > 0) {
        consumed.batch(done.stream, done.outcome, done.seconds);
        aggregated.readings(done.outcome);
        log.debug(done.outcome, 'batch applied');
      }
      if (done.outcome.tooLate > 0 || done.outcome.tooEarly > 0) {
        log.info(
          { tooLate: done.outcome.tooLate, tooEarly: done.outcome.tooEarly },
          'readings outside the live windows',
        );
      }
    },
  });
  const close = async () => {
    for (const stop of unwatch) stop();
    await anomalies.stop();
    await topic?.close();
    if (runtime.pubsub === undefined) await pubsub?.close().catch(() => {});
    await keeper.stop();
    await commits?.close();
    await Promise.all([redis, metrics].map((c) => c.quit().catch(() => {})));
    for (const connection of [redis, metrics]) connection.disconnect();
  };
  // A graceful stop writes what a coalesced flush still owed the dashboard
  // and the unsaved detector states of nodes in an anomaly, stops reading (a blocked read
  // must not take entries after the successor has scanned what is pending),
  // then hands its shards over at once (instead of after the lease expires).
  const done = pipeline.done
    .then(() => aggregator.flush())
    .then(() => aggregator.checkpoint())
    .finally(() => consumer.close())
    .catch((error: unknown) => {
      log.error({ err: error }, 'aggregator stopped on an error');
      throw error;
    })
    .finally(close);
  done.catch(() => {});
  // Running means: the shards that were free are taken, their state loaded
  // and what was pending on them applied.
  await keeper.start();
  const holdsAll = () => keeper.held.every((shard) => settled.has(shard.stream));
  if (!holdsAll())
    await firstValueFrom(pipeline.processed$.pipe(filter(holdsAll)), { defaultValue: undefined });
  log.info(
    { shards: config.stream.shards, held: keeper.held.map((s) => s.stream), token },
    'aggregator running',
  );

  return {
    processed$: pipeline.processed$,
    nodeCount: () => aggregator.nodeCount,
    keysWritten: () => writers.latest.keysWritten + writers.metrics.keysWritten,
    openAnomalies: () => aggregator.openAnomalies(),
    heldShards: () => keeper.held.map((s) => s.stream),
    done,
    async stop() {
      pipeline.stop();
      await done;
      log.info('aggregator stopped');
    },
  };
}
