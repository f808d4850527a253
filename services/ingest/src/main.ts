import type { PubSub } from '@google-cloud/pubsub';
import { type Clock, type Config, redactUrl, systemClock } from '@streamgauge/core';
import { pubsubClient } from '@streamgauge/pubsub';
import {
  connectRedis,
  GatewayRegistry,
  loadScripts,
  NodeOwners,
  RateLimits,
  ReadingLog,
  RegistryChanges,
  whenReady,
} from '@streamgauge/redis';
import { ProcessMetrics } from '@streamgauge/telemetry';
import type { Logger } from 'pino';
import { buildIngestApp } from './app.ts';
import { Authenticator } from './authenticator.ts';
import { Gatekeeper } from './gatekeeper.ts';
import { PubSubSource } from './pubsubSource.ts';

export interface RunningIngest {
  /** `http://host:port` the server listens on. */
  readonly url: string;
  /** The Pub/Sub source, when PUBSUB_SUBSCRIPTION is set. */
  readonly pubsub: PubSubSource | undefined;
  /** Stops accepting, finishes in-flight requests and messages, closes Redis. */
  close(): Promise<void>;
}

export interface IngestRuntime {
  /** The Pub/Sub client (tests pass one for the emulator); default: from the configuration. Left open. */
  readonly pubsub?: PubSub;
  /** The process's metrics (served at /metrics); default: this service's own. */
  readonly metrics?: ProcessMetrics;
}

/**
 * A request must be answered even when Redis hangs rather than refuses (a
 * stopped Redis refuses at once). The bound is generous: a full 10,000-reading
 * request holds Redis for ~45 ms, so dozens queued behind each other are normal
 * under load and must not be cut off. A write that times out may still land:
 * the 503 then says so, and the retry reports those readings as duplicates.
 */
const STARTUP_WAIT_MS = 5_000;

export async function startIngest(
  config: Config,
  logger: Logger,
  clock: Clock = systemClock,
  runtime: IngestRuntime = {},
): Promise<RunningIngest> {
  const redis = connectRedis(config.redis, {
    name: 'ingest',
    failFast: true,
    commandTimeoutMs: config.ingest.redisTimeoutMs,
    logger,
  });
  loadScripts(redis);
  // Give Redis a moment so the first requests are not refused while it
  // connects; without it the service still starts, answering 503 until it can.
  await whenReady(redis, STARTUP_WAIT_MS).catch(() =>
    logger.warn({ redis: redactUrl(config.redis.url) }, 'Redis not reachable yet; answering 503 until it is'),
  );
  // Without the process's metrics, its own: /metrics still answers, without the process series.
  const metrics = runtime.metrics ?? new ProcessMetrics({ service: 'ingest', defaultMetrics: false });
  const readingLog = new ReadingLog(redis, { ...config.stream, clock, onAppend: metrics.ingest.sent });
  // Without Redis it is asked again by the first append.
  await readingLog.prepare().catch(() => {});
  let gatekeeper: Gatekeeper | undefined;
  let nodeOwners: NodeOwners | undefined;
  let changes: RegistryChanges | undefined;
  if (config.ingest.auth) {
    const authenticator = new Authenticator(
      new GatewayRegistry(redis, clock),
      config.ingest.authCacheMs,
      clock,
    );
    gatekeeper = new Gatekeeper(authenticator, new RateLimits(redis), config.ingest, clock);
    nodeOwners = new NodeOwners(redis, clock);
    const owners = nodeOwners;
    // Revocations and node moves are pushed: every replica forgets at once.
    changes = RegistryChanges.listen(config.redis, 'ingest-registry', (change) =>
      change === 'gateways' ? authenticator.forget() : owners.forget(),
    );
  } else {
    logger.warn('INGEST_AUTH=off: any client can write readings for any node');
  }
  const app = buildIngestApp({
    config: config.ingest,
    readingLog,
    redis,
    gatekeeper,
    nodeOwners,
    clock,
    logger,
    metrics,
  });
  const url = await app.listen({ host: config.ingest.host, port: config.ingest.port });
  logger.info({ url, streams: readingLog.streams, auth: config.ingest.auth }, 'ingest listening');
  const { pubsub: pubsubConfig } = config.ingest;
  const client =
    pubsubConfig === undefined ? undefined : (runtime.pubsub ?? pubsubClient(config.pubsubClient));
  const source =
    pubsubConfig === undefined || client === undefined
      ? undefined
      : new PubSubSource({
          client,
          readingLog,
          config: { ...config.ingest, pubsub: pubsubConfig },
          clock,
          logger,
          counted: metrics.ingest.readings('pubsub'),
          handled: metrics.pubsub.subscription(pubsubConfig.subscription),
        });
  source?.start();
  return {
    url,
    pubsub: source,
    async close() {
      // Both sources drain into Redis, so both stop before it closes.
      await Promise.all([app.close(), source?.close(), changes?.close()]);
      if (runtime.pubsub === undefined) await client?.close().catch(() => {});
      await redis.quit().catch(() => redis.disconnect());
      logger.info('ingest stopped');
    },
  };
}
