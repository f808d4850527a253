import { randomUUID } from 'node:crypto';
import {
  BackfillBusyError,
  type ReconcileProgress,
  type ReconcileReport,
  startBackfill,
} from '@streamgauge/backfill';
import { type Config, reconcileKeys } from '@streamgauge/core';
import type { RedisClient } from '@streamgauge/redis';
import { openWarehouse, type Warehouse, WarehouseOpenError } from '@streamgauge/warehouse';
import type { Command } from 'commander';
import { configFromEnv, opsRedis, runUntilSignal } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';
import { commandLogger, createLogger } from '../logger.ts';
import { type ProgressBar, progressBar } from '../progress.ts';

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
        print(report, options.json === true);
        if (report.status !== 'complete') process.exitCode = EXIT.failure;
      } finally {
        redis.disconnect();
      }
    });
}

async function runScheduler(config: Config): Promise<void> {
  const warehouse = await openWarehouse(config).catch((error: Error) => {
    throw new CommandError(
      EXIT.failure,
      error instanceof WarehouseOpenError && error.locked
        ? `${error.message}: the process holding it (streamgauge archive or start) runs the backfill already; \`streamgauge backfill --now\` asks it for a run`
        : error.message,
    );
  });
  const backfill = await startBackfill(config, warehouse, createLogger(config.logLevel, 'backfill'));
  await runUntilSignal(async () => {
    await backfill.stop();
    await warehouse.close();
  });
}

/**
 * One run, here when this process can open the warehouse and no scheduler
 * runs elsewhere; otherwise asked of the running scheduler (which holds
 * the DuckDB file), following its progress through Redis.
 */
async function reconcileNow(config: Config, redis: RedisClient): Promise<ReconcileReport> {
  const bar = new PhaseBar();
  let warehouse: Warehouse | undefined;
  if ((await redis.exists(reconcileKeys.lock)) === 0) {
    warehouse = await openWarehouse(config).catch((error: Error) => {
      if (error instanceof WarehouseOpenError && error.locked) return undefined;
      throw new CommandError(EXIT.failure, error.message);
    });
  }
  if (warehouse !== undefined) {
    const backfill = await startBackfill(config, warehouse, commandLogger('backfill'), { schedule: false });
    try {
      const report = await backfill.runNow({ onProgress: (p) => bar.update(p) });
      bar.done();
      return report;
    } catch (error) {
      // A scheduler took the lock meanwhile (BigQuery has no file lock): ask it.
      if (!(error instanceof BackfillBusyError)) {
        bar.done();
        throw new CommandError(EXIT.failure, `backfill failed: ${(error as Error).message}`);
      }
    } finally {
      await backfill.stop();
      await warehouse.close();
    }
  }
  const request = randomUUID();
  await redis.set(reconcileKeys.request, request);
  process.stderr.write('asked the running backfill (the process that holds the warehouse) for a run\n');
  const deadline = Date.now() + config.backfill.applyTimeoutMs + 3_600_000;
  while (Date.now() < deadline) {
    const [rawProgress, last] = await Promise.all([
      redis.get(reconcileKeys.progress),
      redis.get(reconcileKeys.last),
    ]);
    const progress = (rawProgress === null ? {} : JSON.parse(rawProgress)) as Partial<
      Omit<ReconcileProgress, 'phase'> & {
        request: string;
        phase: ReconcileProgress['phase'] | 'failed';
        error: string;
      }
    >;
    if (progress.request === request && progress.phase !== undefined && progress.phase !== 'failed') {
      bar.update({ phase: progress.phase, done: progress.done ?? 0, total: progress.total ?? 0 });
    }
    const report = last === null ? undefined : (JSON.parse(last) as ReconcileReport);
    if (report?.request === request) {
      bar.done();
      return report;
    }
    if (progress.request === request && progress.phase === 'failed') {
      bar.done();
      throw new CommandError(EXIT.failure, `backfill failed: ${progress.error}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  bar.done();
  throw new CommandError(
    EXIT.failure,
    'no backfill answered the request (is `streamgauge archive` or `start` running?)',
  );
}

/** One bar over the three phases: warehouse statements, shards published, shards applied. */
class PhaseBar {
  #bar: ProgressBar | undefined;
  #statements = 0;
  #shards = 0;
  #done = 0;

  update(p: ReconcileProgress): void {
    if (p.phase === 'query') this.#statements = p.total;
    else this.#shards = p.total;
    const total = this.#statements + 2 * this.#shards || 1;
    this.#bar ??= progressBar(process.stderr, 'backfill', total);
    const offset =
      p.phase === 'query' ? 0 : p.phase === 'publish' ? this.#statements : this.#statements + this.#shards;
    this.#done = offset + p.done;
    const what = { query: 'warehouse queries', publish: 'shards offered', apply: 'shards applied' }[p.phase];
    this.#bar.update(this.#done, `${p.done}/${p.total} ${what}`);
  }

  done(): void {
    this.#bar?.done(this.#done);
  }
}

function print(report: ReconcileReport, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(report));
    return;
  }
  console.log(
    `backfill ${report.run}: ${report.status}, ${(report.durationMs / 1000).toFixed(1)} s (warehouse ${(report.queryMs / 1000).toFixed(1)} s, ${report.rows} rows, ${report.nodes} nodes, cuts ${report.cuts.join(' ')})`,
  );
  console.log(
    `  panes compared ${report.panesCompared}, changed ${report.panesChanged}; nodes created ${report.nodesCreated}; shards applied ${report.shards.applied}/${report.shards.total}`,
  );
  const drift = Object.entries(report.drift);
  if (drift.length === 0) console.log('  no drift: the live state matched the warehouse');
  for (const [metric, value] of drift) console.log(`  largest drift ${metric}: ${value}`);
  for (const warning of report.warnings) console.log(`  warning: ${warning}`);
  if (report.shards.skipped.length > 0)
    console.log(`  shards ${report.shards.skipped.join(', ')} refused the panes (see the warnings)`);
  if (report.shards.pending.length > 0) {
    console.log(
      `  shards ${report.shards.pending.join(', ')} did not apply the panes in time (is an aggregator running?)`,
    );
  }
}
