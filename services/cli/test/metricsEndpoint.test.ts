import { createServer, type Server } from 'node:net';
import { DEFAULT_METRICS_PORTS, loadConfig } from '@streamgauge/core';
import { metricValue, scrapeMetrics } from '@streamgauge/testkit';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CommandError } from '../src/exitCodes.ts';
import { serveProcessMetrics } from '../src/metricsEndpoint.ts';

const logged: Record<string, unknown>[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line)) });

/** Holds `port` on every interface (or finds it held already): either way, it is in use. */
async function occupy(port: number): Promise<Server | undefined> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '0.0.0.0', () => resolve(server));
  });
}

describe('serveProcessMetrics', () => {
  it('serves the process metrics, Node.js series included, on METRICS_PORT', async () => {
    const config = loadConfig({ METRICS_HOST: '127.0.0.1', METRICS_PORT: '0' });
    const endpoint = await serveProcessMetrics(config, 'aggregator', logger);
    try {
      endpoint.metrics.consumer('aggregator').batch('readings', { entries: 4, failed: 0, dead: 0 }, 0.1);
      const samples = await scrapeMetrics(`${endpoint.url}/metrics`);
      expect(
        metricValue(samples, 'messaging_client_consumed_messages_total', { service: 'aggregator' }),
      ).toBe(4);
      expect(metricValue(samples, 'process_cpu_seconds_total')).toBeGreaterThan(0);
      expect(logged.at(-1)).toMatchObject({ msg: 'metrics listening', url: `${endpoint.url}/metrics` });
    } finally {
      await endpoint.close();
    }
  });

  it('fails on a METRICS_PORT in use, naming it; runs without /metrics when a default port is', async () => {
    const first = await serveProcessMetrics(loadConfig({ METRICS_PORT: '0' }), 'archiver', logger);
    const port = new URL(first.url ?? '').port;
    try {
      const taken = loadConfig({ METRICS_PORT: port });
      await expect(serveProcessMetrics(taken, 'archiver', logger)).rejects.toThrow(
        new CommandError(
          1,
          `port ${port} (the archiver's /metrics) is in use; set METRICS_PORT, or METRICS_PORT=off`,
        ),
      );
    } finally {
      await first.close();
    }
    const held = await occupy(DEFAULT_METRICS_PORTS.backfill);
    try {
      const endpoint = await serveProcessMetrics(loadConfig({}), 'backfill', logger);
      expect(endpoint.url).toBeUndefined();
      expect(logged.at(-1)).toMatchObject({ level: 40, port: DEFAULT_METRICS_PORTS.backfill });
    } finally {
      held?.close();
    }
  });

  it('serves nothing with METRICS_PORT=off', async () => {
    const endpoint = await serveProcessMetrics(loadConfig({ METRICS_PORT: 'off' }), 'aggregator', logger);
    expect(endpoint.url).toBeUndefined();
    await endpoint.close();
  });
});
