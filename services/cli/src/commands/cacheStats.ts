import { CacheStatus } from '@streamgauge/redis';
import type { Command } from 'commander';
import { configFromEnv, opsRedis } from '../context.ts';
import { EXIT } from '../exitCodes.ts';

export function cacheStatsCommand(program: Command): void {
  program
    .command('cache-stats')
    .description('keys, memory, last refresh from the warehouse, last error and status of the cache')
    .option('--json', 'print as JSON')
    .action(async (options: { json?: boolean }) => {
      const config = configFromEnv();
      const redis = await opsRedis(config);
      try {
        const stats = await new CacheStatus(redis).read(config.cacheRefreshMs, Date.now());
        if (options.json) console.log(JSON.stringify(stats));
        else {
          console.log(`status        ${stats.status}`);
          console.log(`keys          ${stats.keys}`);
          console.log(`memory used   ${stats.memoryUsed}`);
          console.log(`initialized   ${stats.initializedAt ?? 'no'}`);
          console.log(`last refresh  ${stats.lastRefresh ?? 'never'}`);
          if (stats.refreshingSince) console.log(`refreshing    since ${stats.refreshingSince}`);
          if (stats.lastError) console.log(`last error    ${stats.lastErrorAt}: ${stats.lastError}`);
        }
        if (stats.status === 'error' || stats.status === 'stale') process.exitCode = EXIT.failure;
      } finally {
        redis.disconnect();
      }
    });
}
