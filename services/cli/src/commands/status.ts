import { allShardKeys } from '@streamgauge/core';
import {
  CacheStatus,
  EXPECTED_GROUPS,
  ReconcileControl,
  type ShardStatus,
  shardStatus,
} from '@streamgauge/redis';
import type { Command } from 'commander';
import { configFromEnv, opsRedis } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';

interface StatusOptions {
  json?: boolean;
  maxLag: string;
  maxPendingAge: string;
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
      '--max-dead-letters <count>',
      'unhealthy when a shard holds more dead letters than this (default: not checked)',
    )
    .action(async (options: StatusOptions) => {
      const config = configFromEnv();
      const limits = {
        lag: threshold('--max-lag', options.maxLag),
        pendingAgeMs: threshold('--max-pending-age', options.maxPendingAge) * 1000,
        ...(options.maxDeadLetters !== undefined && {
          deadLetters: threshold('--max-dead-letters', options.maxDeadLetters),
        }),
      };
      const redis = await opsRedis(config);
      try {
        const now = Date.now();
        const shards = await Promise.all(
          allShardKeys(config.stream.shards).map((s) => shardStatus(redis, s, now)),
        );
        const last = (await new ReconcileControl(redis).lastReport()) as LastReconcile | null;
        const cache = await new CacheStatus(redis).read(config.cacheRefreshMs, now);
        const problems = [...shards.flatMap((s) => shardProblems(s, limits)), ...cacheProblems(cache.status)];
        const report = {
          healthy: problems.length === 0,
          problems,
          shards,
          reconcile: last,
          cache,
        };
        if (options.json) console.log(JSON.stringify(report));
        else print(report);
        if (problems.length > 0) process.exitCode = EXIT.failure;
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

function shardProblems(
  shard: ShardStatus,
  limits: { lag: number; pendingAgeMs: number; deadLetters?: number },
): string[] {
  const problems: string[] = [];
  const groups = new Map(shard.groups.map((g) => [g.name, g]));
  for (const name of EXPECTED_GROUPS) {
    const group = groups.get(name);
    if (group === undefined) {
      if (shard.length > 0)
        problems.push(`${shard.stream}: group ${name} does not exist (has its consumer ever run?)`);
      continue;
    }
    if (group.lag > limits.lag)
      problems.push(`${shard.stream}: group ${name} is ${group.lag} entries behind (limit ${limits.lag})`);
    if ((group.oldestPendingAgeMs ?? 0) > limits.pendingAgeMs) {
      problems.push(
        `${shard.stream}: group ${name} has an entry pending for ${Math.round((group.oldestPendingAgeMs ?? 0) / 1000)} s (limit ${limits.pendingAgeMs / 1000} s)`,
      );
    }
  }
  if (limits.deadLetters !== undefined && shard.deadLetters > limits.deadLetters) {
    problems.push(`${shard.stream}: ${shard.deadLetters} dead letters (limit ${limits.deadLetters})`);
  }
  return problems;
}

function cacheProblems(status: string): string[] {
  return status === 'error' || status === 'stale' ? [`cache: ${status} (see streamgauge cache-stats)`] : [];
}

/** What status shows of the backfill's last report. */
interface LastReconcile {
  readonly run: string;
  readonly status: string;
  readonly finishedAt: string;
  readonly panesChanged: number;
}

function print(report: {
  healthy: boolean;
  problems: string[];
  shards: ShardStatus[];
  reconcile: LastReconcile | null;
  cache: { status: string; keys: number; memoryUsed: string; lastRefresh?: string };
}): void {
  console.log(report.healthy ? 'healthy' : `UNHEALTHY: ${report.problems.length} problem(s)`);
  for (const problem of report.problems) console.log(`  ! ${problem}`);
  for (const shard of report.shards) {
    console.log(
      `\n${shard.stream}: ${shard.length} entries${shard.firstEntryAt ? `, ${shard.firstEntryAt} .. ${shard.lastEntryAt}` : ''}; dead letters ${shard.deadLetters}; archived up to ${shard.archiveWatermark ?? '-'}`,
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
