import { startIngest } from '@streamgauge/ingest';
import { ProcessMetrics } from '@streamgauge/telemetry';
import type { Command } from 'commander';
import { configFromEnv } from '../context.ts';
import { runUntilSignal } from '../lifetime.ts';
import { createLogger } from '../logger.ts';

export function ingestCommand(program: Command): void {
  program
    .command('ingest')
    .description('run the HTTP ingest service (POST /v1/readings)')
    .option('--port <port>', 'port to listen on (INGEST_PORT, default 8080)')
    .option('--host <host>', 'address to listen on (INGEST_HOST, default 0.0.0.0)')
    .action(async (options: { port?: string; host?: string }) => {
      const config = configFromEnv({ INGEST_PORT: options.port, INGEST_HOST: options.host });
      const logger = createLogger(config, 'ingest');
      // Served at /metrics on the ingest port.
      const metrics = new ProcessMetrics({ service: 'ingest' });
      const ingest = await startIngest(config, logger, undefined, { metrics });
      await runUntilSignal(() => ingest.close());
    });
}
