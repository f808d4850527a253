import type { Command } from 'commander';
import { configFromEnv, runUntilSignal } from '../context.ts';
import { createLogger } from '../logger.ts';
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
      const host = await startWarehouseHost(config, {
        archiver: createLogger(config.logLevel, 'archiver'),
        backfill: createLogger(config.logLevel, 'backfill'),
      });
      await Promise.race([runUntilSignal(() => host.stop()), host.done]);
    });
}
