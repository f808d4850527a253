import { type PipelineReport, pipelineReport } from '@streamgauge/redis';
import type { Command } from 'commander';
import { configFromEnv, opsRedis } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';

interface StatusOptions {
  json?: boolean;
  maxLag: string;
  maxPendingAge: string;
  maxConsumerIdle: string;
  maxDeadLetters?: string;
}

export function statusCommand(program: Command): void {
  program
    .command('status')
    .description(
      'per stream shard and consumer group: entries, lag, pending, consumers, dead letters, archive watermark; the last reconcile; the cache',
    )
    .option('--json', 'print as JSON')
    .option('--max-lag <entries>', 'unhealthy when a group is more entries behind than this', '10000')
    .option('--max-pending-age <seconds>', 'unhealthy when an entry has been pending longer than this', '300')
    .option(
      '--max-consumer-idle <seconds>',
      'unhealthy when a group has entries waiting and none of its consumers read for this long',
      '60',
    )
    .option(
      '--max-dead-letters <count>',
      'unhealthy when a shard holds more dead letters than this (default: not checked)',
    )
    .action(async (options: StatusOptions) => {
      const config = configFromEnv();
      const limits = {
        lag: threshold('--max-lag', options.maxLag),
        pendingAgeMs: threshold('--max-pending-age', options.maxPendingAge) * 1000,
        consumerIdleMs: threshold('--max-consumer-idle', options.maxConsumerIdle) * 1000,
        ...(options.maxDeadLetters !== undefined && {
          deadLetters: threshold('--max-dead-letters', options.maxDeadLetters),
        }),
      };
      const redis = await opsRedis(config);
      try {
        const report = await pipelineReport(
          redis,
          { shards: config.stream.shards, cacheRefreshMs: config.cacheRefreshMs },
          limits,
          Date.now(),
        );
        if (options.json) console.log(JSON.stringify(report));
        else print(report);
        if (!report.healthy) process.exitCode = EXIT.failure;
      } finally {
        redis.disconnect();
      }
    });
}

function threshold(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new CommandError(EXIT.usage, `${name}: expected a number ≥ 0, got ${JSON.stringify(value)}`);
  return n;
}

function print(report: PipelineReport): void {
  console.log(report.healthy ? 'healthy' : `UNHEALTHY: ${report.problems.length} problem(s)`);
  for (const problem of report.problems) console.log(`  ! ${problem}`);
  for (const shard of report.shards) {
    console.log(
      `\n${shard.stream}: ${shard.length} entries${shard.firstEntryAt ? `, ${shard.firstEntryAt} .. ${shard.lastEntryAt}` : ''}; dead letters ${shard.deadLetters}; archived up to ${shard.archiveWatermark ?? '-'}${shard.catchup > 0 ? `; catch-up lanes ${shard.catchup} entries since ${shard.catchupSince}` : ''}`,
    );
    for (const g of shard.groups) {
      const oldest =
        g.oldestPendingAgeMs === undefined ? '' : `, oldest ${Math.round(g.oldestPendingAgeMs / 1000)} s`;
      console.log(
        `  group ${g.name}: lag ${g.lag}, pending ${g.pending}${oldest}, delivered up to ${g.lastDelivered}`,
      );
      for (const c of g.consumers)
        console.log(`    consumer ${c.name}: pending ${c.pending}, idle ${Math.round(c.idleMs / 1000)} s`);
    }
  }
  const r = report.reconcile;
  console.log(
    `\nlast reconcile: ${r ? `${r.run} ${r.status} at ${r.finishedAt}, ${r.panesChanged} panes changed` : 'none'}`,
  );
  const c = report.cache;
  console.log(
    `cache: ${c.status}, ${c.keys} keys, ${c.memoryUsed}, last refresh ${c.lastRefresh ?? 'never'}`,
  );
}
