import { type Config, type DEFAULT_METRICS_PORTS, metricsPort } from '@streamgauge/core';
import { type MetricsServer, ProcessMetrics, serveMetrics } from '@streamgauge/telemetry';
import type { Logger } from 'pino';
import { CommandError, EXIT } from './exitCodes.ts';

export interface MetricsEndpoint {
  readonly metrics: ProcessMetrics;
  /** `http://host:port` of /metrics; undefined with METRICS_PORT=off. */
  readonly url: string | undefined;
  close(): Promise<void>;
}

/**
 * The metrics of a process that runs `service` (and what runs beside it),
 * served at /metrics on METRICS_PORT, or the service's own default port,
 * unless METRICS_PORT=off. Started before the service, so a METRICS_PORT in
 * use fails the command at once. A default port in use (a second replica on
 * the same host) only warns: the service runs, unscraped, rather than not
 * at all.
 */
export async function serveProcessMetrics(
  config: Config,
  service: keyof typeof DEFAULT_METRICS_PORTS,
  logger: Logger,
): Promise<MetricsEndpoint> {
  const metrics = new ProcessMetrics({ service });
  const port = metricsPort(config, service);
  if (port === undefined) return { metrics, url: undefined, close: async () => {} };
  let server: MetricsServer;
  try {
    server = await serveMetrics(metrics.registry, {
      host: config.metrics.host,
      port,
      ready: () => metrics.ready(),
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      if (config.metrics.port === undefined) {
        logger.warn(
          { port },
          `port ${port} (the ${service}'s default for /metrics) is in use: running without /metrics; set METRICS_PORT`,
        );
        return { metrics, url: undefined, close: async () => {} };
      }
      throw new CommandError(
        EXIT.failure,
        `port ${port} (the ${service}'s /metrics) is in use; set METRICS_PORT, or METRICS_PORT=off`,
      );
    }
    throw error;
  }
  logger.info({ url: `${server.url}/metrics` }, 'metrics listening');
  return { metrics, url: server.url, close: () => server.close() };
}

/** Runs `body` with the endpoint, and closes it however `body` ends. */
export async function withMetricsEndpoint(
  endpoint: MetricsEndpoint,
  body: (metrics: ProcessMetrics) => Promise<void>,
): Promise<void> {
  try {
    await body(endpoint.metrics);
  } finally {
    await endpoint.close();
  }
}
