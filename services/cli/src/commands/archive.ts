import type { Command } from 'commander';
import { configFromEnv } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';
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
    .option(
      '--no-backfill',
      'without the backfill scheduler, when `streamgauge backfill` runs it on its own (BigQuery)',
    )
    .action(async (options: { consumer?: string; backfill: boolean }) => {
      const config = configFromEnv({ ARCHIVER_CONSUMER: options.consumer });
      if (!options.backfill && config.bigquery === undefined) {
        // DuckDB allows one writer: no other process could run the backfill, nor answer `backfill --now`.
        throw new CommandError(
          EXIT.usage,
          'archive --no-backfill needs the BigQuery warehouse (BIGQUERY_PROJECT): with DuckDB the backfill can only run in the process that holds the file',
        );
      }
      const archiverLogger = createLogger(config, 'archiver');
      // One /metrics for the process: the archiver's series and the backfill's beside them.
      const endpoint = await serveProcessMetrics(config, 'archiver', archiverLogger);
      await withMetricsEndpoint(endpoint, async (metrics) => {
        const host = await startWarehouseHost(
          config,
          { archiver: archiverLogger, backfill: createLogger(config, 'backfill') },
          metrics,
          { backfill: options.backfill },
        );
        await Promise.race([runUntilSignal(() => host.stop()), host.done]);
      });
    });
}
