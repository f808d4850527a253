import { startBackfill } from '@streamgauge/backfill';
import type { Config } from '@streamgauge/core';
import { openWarehouse, WarehouseOpenError } from '@streamgauge/warehouse';
import type { Command } from 'commander';
import { configFromEnv, opsRedis } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';
import { runUntilSignal } from '../lifetime.ts';
import { createLogger } from '../logger.ts';
import { serveProcessMetrics, withMetricsEndpoint } from '../metricsEndpoint.ts';
import { printReport, reconcileNow } from '../reconcileNow.ts';

interface BackfillOptions {
  now?: boolean;
  json?: boolean;
}

export function backfillCommand(program: Command): void {
  program
    .command('backfill')
    .description(
      'reconcile the live 30-day panes from the warehouse: at start when the read model is empty, then every CACHE_REFRESH_HOURS',
    )
    .option('--now', 'run one reconcile now, show its progress and report, and exit')
    .option('--json', 'with --now: print the report as JSON')
    .action(async (options: BackfillOptions) => {
      const config = configFromEnv();
      if (!options.now) {
        await runScheduler(config);
        return;
      }
      const redis = await opsRedis(config);
      try {
        const report = await reconcileNow(config, redis);
        printReport(report, options.json === true);
        if (report.status !== 'complete') process.exitCode = EXIT.failure;
      } finally {
        redis.disconnect();
      }
    });
}

async function runScheduler(config: Config): Promise<void> {
  const logger = createLogger(config, 'backfill');
  const endpoint = await serveProcessMetrics(config, 'backfill', logger);
  await withMetricsEndpoint(endpoint, async (metrics) => {
    const warehouse = await openWarehouse(config).catch((error: Error) => {
      throw new CommandError(
        EXIT.failure,
        error instanceof WarehouseOpenError && error.locked
          ? `${error.message}: the process holding it (streamgauge archive or start) runs the backfill already; \`streamgauge backfill --now\` asks it for a run`
          : error.message,
      );
    });
    const backfill = await startBackfill(config, warehouse, logger, { metrics });
    await runUntilSignal(async () => {
      await backfill.stop();
      await warehouse.close();
    });
  });
}
