import type { Command } from 'commander';
import { configFromEnv } from '../context.ts';
import { runUntilSignal } from '../lifetime.ts';
import { createLogger } from '../logger.ts';
import { serveProcessMetrics, withMetricsEndpoint } from '../metricsEndpoint.ts';
import { startWarehouseHost } from '../warehouseHost.ts';

export function archiveCommand(program: Command): void {
  program
    .command('archive')
    .description(
      "run the archiver (consumer group 'archiver': every reading into the warehouse) and the backfill beside it",
    )
    .option('--consumer <name>', 'consumer name in the group (ARCHIVER_CONSUMER, default archiver-1)')
    .action(async (options: { consumer?: string }) => {
      const config = configFromEnv({ ARCHIVER_CONSUMER: options.consumer });
      const archiverLogger = createLogger(config.logLevel, 'archiver');
      // One /metrics for the process: the archiver's series and the backfill's beside them.
      const endpoint = await serveProcessMetrics(config, 'archiver', archiverLogger);
      await withMetricsEndpoint(endpoint, async (metrics) => {
        const host = await startWarehouseHost(
          config,
          { archiver: archiverLogger, backfill: createLogger(config.logLevel, 'backfill') },
          metrics,
        );
        await Promise.race([runUntilSignal(() => host.stop()), host.done]);
      });
    });
}
