import { allShardKeys, CHANGES_CHANNEL, type Config, GROUPS } from '@streamgauge/core';
import { startDashboard } from '@streamgauge/dashboard';
import { startIngest } from '@streamgauge/ingest';
import { catchupBacklog, GatewayRegistry, groupsOf, NodeOwners, type RedisClient } from '@streamgauge/redis';
import { DISTRICT, GatewaySimulator } from '@streamgauge/simulator';
import { ProcessMetrics } from '@streamgauge/telemetry';
import { describeWarehouse } from '@streamgauge/warehouse';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { configFromEnv, opsRedis } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';
import { Lifetime, Stopping } from '../lifetime.ts';
import { redisForStart } from '../localRedis.ts';
import { createLogger } from '../logger.ts';
import {
  type AggregatorThread,
  startAggregatorThread,
  startWarehouseThread,
} from '../serviceThreads/services.ts';
import { parsePositive } from './simulate.ts';

interface StartOptions {
  simulate?: boolean;
  allowForeignKeys?: boolean;
  statusSeconds: string;
  nodes: string;
  rate: string;
}

export function startCommand(program: Command): void {
  program
    .command('start')
    .description(
      'run ingest, the aggregator and the archiver (each on a thread of its own) in one process (starting Redis when none answers)',
    )
    .option('--simulate', 'also run a gateway simulator that sends readings through the HTTP API')
    .option('--nodes <n>', 'simulated loggers', '12')
    .option('--rate <r>', 'simulated readings per second', '12')
    .option('--status-seconds <s>', 'seconds between status lines', '10')
    .option(
      '--allow-foreign-keys',
      "write into a Redis database that also holds another application's keys (refused otherwise)",
    )
    .action(async (options: StartOptions) => {
      const base = configFromEnv();
      // The console stays readable: warnings and errors only, unless LOG_LEVEL says otherwise.
      const logger = createLogger(base, 'streamgauge', 'warn');
      // Signals are taken from here on: a Ctrl-C while starting stops what already runs.
      const lifetime = new Lifetime();
      try {
        await runServices(lifetime, base, options, logger);
      } catch (error) {
        // A part that fails because a signal stopped what it needed is no error of its own.
        if (!(error instanceof Stopping || lifetime.stopping)) throw error;
      } finally {
        await lifetime.stop();
      }
    });
}

async function runServices(
  lifetime: Lifetime,
  base: Config,
  options: StartOptions,
  logger: Logger,
): Promise<void> {
  const serviceLogger = (service: string) => createLogger(base, service, 'warn');
  const { config, server } = await lifetime.adopt(
    redisForStart(base, logger, { allowForeignKeys: options.allowForeignKeys === true }).then((local) => ({
      ...local,
      stop: async () => local.server?.stop(),
    })),
  );
  // One /metrics for the whole process, on the ingest port (the aggregator's thread's series too).
  const metrics = new ProcessMetrics({ service: 'streamgauge' });
  // The aggregator and the archiver (with the backfill) each on a thread of
  // its own, beside ingest and the dashboard on this one: each busy part can
  // take a core.
  const aggregator = await lifetime.adopt(startAggregatorThread(config, metrics));
  const archiver = await lifetime.adopt(startWarehouseThread(config, metrics));
  const ingest = await lifetime
    .adopt(
      startIngest(config, serviceLogger('ingest'), undefined, { metrics }).then((running) => ({
        ...running,
        stop: () => running.close(),
      })),
    )
    .catch((error: Error) => {
      throw (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
        ? new CommandError(EXIT.failure, `port ${config.ingest.port} is in use; set INGEST_PORT`)
        : error;
    });

  // On loopback unless DASHBOARD_HOST says otherwise: open to this machine only, no token needed.
  const dashboard = await lifetime
    .adopt(
      startDashboard(config, serviceLogger('dashboard'), {
        host: config.dashboard.host ?? '127.0.0.1',
      }),
    )
    .catch((error: Error) => {
      throw (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
        ? new CommandError(EXIT.failure, `port ${config.dashboard.port} is in use; set DASHBOARD_PORT`)
        : error;
    });

  let simulator: GatewaySimulator | undefined;
  let token: string | undefined;
  if (options.simulate) {
    token = config.ingest.auth ? await simulatorToken(config) : undefined;
    simulator = new GatewaySimulator({
      url: ingest.url,
      ...(token !== undefined && { token }),
      nodes: parsePositive('nodes', options.nodes, true),
      rate: parsePositive('rate', options.rate, false),
      onError: (message) => logger.warn(`simulator: ${message}`),
    });
    if (token !== undefined) await assignSimulatorNodes(config, simulator.nodeIds);
    await lifetime.adopt(Promise.resolve(simulator));
    simulator.start();
  }
  printBanner(
    config,
    { ingest: ingest.url, dashboard: dashboard.url },
    server !== undefined,
    simulator,
    token,
  );

  const statusRedis = await opsRedis(config);
  lifetime.add(async () => statusRedis.disconnect());
  const line = statusLine(config, statusRedis, metrics, aggregator, () => simulator?.stats);
  const status = setInterval(
    () => {
      line().then(
        (text) => console.log(text),
        (error: Error) => logger.warn(`status line: ${error.message}`),
      );
    },
    parsePositive('status-seconds', options.statusSeconds, false) * 1000,
  );
  lifetime.add(async () => clearInterval(status));
  await Promise.race([lifetime.signalled, aggregator.done, archiver.done]);
}

/**
 * The line `start` prints every --status-seconds (10 s): what ingest accepted per second since
 * the last line, how far the aggregator is behind the stream, the keys it
 * wrote, the anomalies open, and the simulator's counts.
 */
function statusLine(
  config: Config,
  redis: RedisClient,
  metrics: ProcessMetrics,
  aggregator: AggregatorThread,
  simulated: () => GatewaySimulator['stats'] | undefined,
): () => Promise<string> {
  let last = { at: Date.now(), accepted: 0 };
  return async () => {
    const now = Date.now();
    const accepted = await acceptedReadings(metrics);
    const perSecond = (accepted - last.accepted) / Math.max(0.001, (now - last.at) / 1000);
    last = { at: now, accepted };
    const [lag, lane] = await Promise.all([
      aggregatorLag(redis, config.stream.shards),
      catchupEntries(redis, config.stream.shards),
    ]);
    const open = [...aggregator.openAnomalies()].filter(([, n]) => n > 0);
    const openTotal = open.reduce((sum, [, n]) => sum + n, 0);
    const s = simulated();
    return [
      `[${new Date(now).toISOString()}] ${perSecond.toFixed(1)} readings/s accepted`,
      `aggregator lag ${lag === undefined ? '?' : lag} entries${lane > 0 ? ` (+${lane} in the catch-up lane)` : ''}`,
      `nodes ${aggregator.nodeCount()}`,
      `keys written ${aggregator.keysWritten()}`,
      `open anomalies ${openTotal}${open.length > 0 ? ` (${open.map(([type, n]) => `${type} ${n}`).join(', ')})` : ''}`,
      ...(s
        ? [`simulator: sent ${s.sent}, accepted ${s.accepted}, failed requests ${s.failedRequests}`]
        : []),
    ].join(' | ');
  };
}

async function acceptedReadings(metrics: ProcessMetrics): Promise<number> {
  const counter = metrics.registry.getSingleMetric('streamgauge_readings_total');
  const values = (await counter?.get())?.values ?? [];
  return values.filter((v) => v.labels.outcome === 'accepted').reduce((sum, v) => sum + v.value, 0);
}

/** Entries of every shard not yet delivered to the aggregator group; undefined when Redis cannot say. */
async function aggregatorLag(redis: RedisClient, shards: number): Promise<number | undefined> {
  let lag = 0;
  for (const shard of allShardKeys(shards)) {
    const group = (await groupsOf(redis, shard.stream)).find((g) => g.name === GROUPS.aggregator);
    if (group?.lag === undefined) return undefined;
    lag += group.lag;
  }
  return lag;
}

/** Entries of late readings waiting in every shard's catch-up lane. */
async function catchupEntries(redis: RedisClient, shards: number): Promise<number> {
  const backlogs = await Promise.all(allShardKeys(shards).map((shard) => catchupBacklog(redis, shard)));
  return backlogs.reduce((sum, backlog) => sum + backlog.entries, 0);
}

/**
 * A token for the built-in simulator: the previous one is revoked, a new one
 * issued. It is held to no rate, since `--rate` says how fast it sends.
 */
async function simulatorToken(config: Config): Promise<string> {
  const redis = await opsRedis(config);
  try {
    const registry = new GatewayRegistry(redis, { now: () => Date.now() });
    const existing = (await registry.list()).find((g) => g.name === 'simulator');
    if (existing && existing.revokedAt === undefined) await registry.revoke('simulator');
    const limits = { readingsPerSecond: 0, requestsPerSecond: 0 };
    return (await registry.add('simulator', { kind: 'district', district: DISTRICT }, limits)).token;
  } finally {
    redis.disconnect();
  }
}

/** The simulator's nodes join its district as an operator's would: assigned, not claimed under the cap. */
async function assignSimulatorNodes(config: Config, nodes: readonly string[]): Promise<void> {
  const redis = await opsRedis(config);
  try {
    await new NodeOwners(redis).assign(nodes, DISTRICT);
  } finally {
    redis.disconnect();
  }
}

function printBanner(
  config: Config,
  urls: { ingest: string; dashboard: string },
  ownRedis: boolean,
  simulator: GatewaySimulator | undefined,
  token: string | undefined,
): void {
  const redis = new URL(config.redis.url);
  const cli = `redis-cli -h ${redis.hostname} -p ${redis.port || 6379}${redis.pathname.length > 1 && redis.pathname !== '/0' ? ` -n ${redis.pathname.slice(1)}` : ''}`;
  const node = simulator?.nodeIds[0] ?? '<node id>';
  const lines = [
    'streamgauge is running: ingest + aggregator + archiver + dashboard',
    `  dashboard  ${urls.dashboard}/   (open it in a browser; API: ${urls.dashboard}/api/v1/openapi.json)`,
    `  ingest     POST ${urls.ingest}/v1/readings   (health: ${urls.ingest}/readyz, metrics: ${urls.ingest}/metrics)`,
    `  redis      ${config.redis.url}${ownRedis ? `   (started by streamgauge; files in ${config.dataDir}/redis)` : ''}`,
    `  warehouse  ${describeWarehouse(config)}   (every reading, one row each; backfill every ${config.cacheRefreshMs / 3_600_000} h)`,
  ];
  if (simulator) {
    lines.push(
      `  simulator  ${simulator.nodeIds.length} loggers of ${DISTRICT} through the HTTP API${token ? `, gateway "simulator" (token ${token})` : ''}`,
    );
  }
  lines.push(
    '',
    'Look at the dashboard keys:',
    `  ${cli} LRANGE nodes:all 0 -1`,
    `  ${cli} HGETALL node:${node}:latest`,
    `  ${cli} HGETALL node:${node}:metrics:1h`,
    `  ${cli} GET node:${node}:timeseries:7d`,
    `  ${cli} HGETALL system:metrics:24h`,
    `  ${cli} SUBSCRIBE ${CHANGES_CHANNEL}`,
    '',
    'Ctrl-C stops everything.',
  );
  console.log(lines.join('\n'));
}
