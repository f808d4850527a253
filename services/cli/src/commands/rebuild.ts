import { OpsLog, type ReconcileScope } from '@streamgauge/redis';
import type { Command } from 'commander';
import { configFromEnv, opsRedis } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';
import { describeScope, printReport, reconcileNow } from '../reconcileNow.ts';
import { timeArgument } from '../timeArgument.ts';

interface RebuildOptions {
  nodes?: string;
  since?: string;
  json?: boolean;
}

const HOUR_MS = 3_600_000;

export function rebuildCommand(program: Command): void {
  program
    .command('rebuild')
    .description(
      "rebuild the aggregators' live state, and every key derived from it, from the warehouse plus the stream's tail (when the stream no longer holds the range)",
    )
    .option('--nodes <ids>', 'only these nodes (comma-separated); default: every node')
    .option(
      '--since <time>',
      'only panes from this event time on (ISO-8601, epoch ms, or a duration ago such as 6h; rounded down to the hour); default: the whole 30-day horizon',
    )
    .option('--json', 'print the report as JSON')
    .action(async (options: RebuildOptions) => {
      const config = configFromEnv();
      const scope: { nodes?: string[]; since?: number } = {};
      if (options.nodes !== undefined) {
        const nodes = [...new Set(options.nodes.split(',').map((n) => n.trim()))].filter((n) => n !== '');
        if (nodes.length === 0) throw new CommandError(EXIT.usage, '--nodes names no node');
        scope.nodes = nodes;
      }
      if (options.since !== undefined) {
        // Every pane size divides an hour: panes are either wholly rebuilt or left alone.
        scope.since = Math.floor(timeArgument('--since', options.since, Date.now()) / HOUR_MS) * HOUR_MS;
      }
      const redis = await opsRedis(config);
      try {
        // With neither option it is a full run, which also counts as the cache's refresh.
        const scoped = scope.nodes !== undefined || scope.since !== undefined;
        const report = await reconcileNow(
          config,
          redis,
          scoped ? (scope as ReconcileScope) : undefined,
          'rebuild',
        );
        await new OpsLog(redis).record({
          action: 'rebuild',
          scope: describeScope(scope),
          run: report.run,
          status: report.status,
          nodes: report.nodes,
          panes_changed: report.panesChanged,
          nodes_created: report.nodesCreated,
        });
        printReport(report, options.json === true, 'rebuild');
        if (report.status !== 'complete') process.exitCode = EXIT.failure;
      } finally {
        redis.disconnect();
      }
    });
}
