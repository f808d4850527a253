import { duckdbPath, startArchiver } from '@streamgauge/archiver';
import type { Command } from 'commander';
import { configFromEnv, runUntilSignal } from '../context.ts';
import { createLogger } from '../logger.ts';

export function archiveCommand(program: Command): void {
  program
    .command('archive')
    .description(
      "run the archiver (consumer group 'archiver'): every reading into the warehouse (DuckDB under DATA_DIR)",
    )
    .option('--consumer <name>', 'consumer name in the group (ARCHIVER_CONSUMER, default archiver-1)')
    .action(async (options: { consumer?: string }) => {
      const config = configFromEnv({ ARCHIVER_CONSUMER: options.consumer });
      const logger = createLogger(config.logLevel, 'archiver');
      logger.info({ warehouse: duckdbPath(config) }, 'warehouse: DuckDB');
      const archiver = await startArchiver(config, logger);
      await Promise.race([runUntilSignal(() => archiver.stop()), archiver.done]);
    });
}
