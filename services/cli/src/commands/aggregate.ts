import { startAggregator } from '@streamgauge/aggregator';
import type { Command } from 'commander';
import { configFromEnv } from '../context.ts';
import { runUntilSignal } from '../lifetime.ts';
import { createLogger } from '../logger.ts';
import { serveProcessMetrics, withMetricsEndpoint } from '../metricsEndpoint.ts';

export function aggregateCommand(program: Command): void {
  program
    .command('aggregate')
    .description("run the aggregator (consumer group 'aggregator'): keeps the dashboard's keys fresh")
    .option('--consumer <name>', 'consumer name in the group (AGGREGATOR_CONSUMER, default aggregator-1)')
    .action(async (options: { consumer?: string }) => {
      const config = configFromEnv({ AGGREGATOR_CONSUMER: options.consumer });
      const logger = createLogger(config, 'aggregator');
      const endpoint = await serveProcessMetrics(config, 'aggregator', logger);
      await withMetricsEndpoint(endpoint, async (metrics) => {
        const aggregator = await startAggregator(config, logger, { metrics });
        await Promise.race([runUntilSignal(() => aggregator.stop()), aggregator.done]);
      });
    });
}
