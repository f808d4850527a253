import { randomUUID } from 'node:crypto';
import {
  BackfillBusyError,
  type ReconcileProgress,
  type ReconcileReport,
  startBackfill,
} from '@streamgauge/backfill';
import { allShardKeys, type Config } from '@streamgauge/core';
import { heldShards, ReconcileControl, type ReconcileScope, type RedisClient } from '@streamgauge/redis';
import { openWarehouse, type Warehouse, WarehouseOpenError } from '@streamgauge/warehouse';
import { CommandError, EXIT } from './exitCodes.ts';
import { commandLogger } from './logger.ts';
import { type ProgressBar, progressBar } from './progress.ts';

/**
 * One run, here when this process can open the warehouse and no scheduler
 * runs elsewhere; otherwise asked of the running scheduler (which holds
 * the DuckDB file), following its progress through Redis.
 */
export async function reconcileNow(
  config: Config,
  redis: RedisClient,
  scope?: ReconcileScope,
  label = 'backfill',
): Promise<ReconcileReport> {
  await requireAggregators(config, redis, label);
  const bar = new PhaseBar(label);
  const control = new ReconcileControl(redis);
  let warehouse: Warehouse | undefined;
  if (!(await control.held())) {
    warehouse = await openWarehouse(config).catch((error: Error) => {
      if (error instanceof WarehouseOpenError && error.locked) return undefined;
      throw new CommandError(EXIT.failure, error.message);
    });
  }
  if (warehouse !== undefined) {
    const backfill = await startBackfill(config, warehouse, commandLogger(config, 'backfill'), {
      schedule: false,
    });
    try {
      const report = await backfill.runNow({ ...(scope && { scope }), onProgress: (p) => bar.update(p) });
      bar.done();
      return report;
    } catch (error) {
      // A scheduler took the lock meanwhile (BigQuery has no file lock): ask it.
      if (!(error instanceof BackfillBusyError)) {
        bar.done();
        throw new CommandError(EXIT.failure, `${label} failed: ${(error as Error).message}`);
      }
    } finally {
      await backfill.stop();
      await warehouse.close();
    }
  }
  const request = randomUUID();
  await control.ask({ request, ...(scope && { scope }) });
  process.stderr.write('asked the running backfill (the process that holds the warehouse) for a run\n');
  const deadline = Date.now() + config.backfill.applyTimeoutMs + 3_600_000;
  while (Date.now() < deadline) {
    const [published, last] = await Promise.all([control.progress(), control.lastReport()]);
    const progress = (published ?? {}) as Partial<
      Omit<ReconcileProgress, 'phase'> & {
        request: string;
        phase: ReconcileProgress['phase'] | 'failed';
        error: string;
      }
    >;
    if (progress.request === request && progress.phase !== undefined && progress.phase !== 'failed') {
      bar.update({ phase: progress.phase, done: progress.done ?? 0, total: progress.total ?? 0 });
    }
    const report = last as ReconcileReport | null;
    if (report?.request === request) {
      bar.done();
      return report;
    }
    if (progress.request === request && progress.phase === 'failed') {
      bar.done();
      throw new CommandError(EXIT.failure, `${label} failed: ${progress.error}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  bar.done();
  throw new CommandError(
    EXIT.failure,
    'no backfill answered the request (is `streamgauge archive` or `start` running?)',
  );
}

/**
 * A run offers panes that the aggregator holding each shard applies: with no
 * aggregator running it could only wait BACKFILL_APPLY_TIMEOUT_SECONDS for
 * nobody. Said at once instead; shards no replica holds now are named (a
 * replica may take them over during the run).
 */
async function requireAggregators(config: Config, redis: RedisClient, label: string): Promise<void> {
  const shards = allShardKeys(config.stream.shards);
  const held = await heldShards(redis, shards);
  if (held.length === 0) {
    throw new CommandError(
      EXIT.failure,
      `no aggregator is running (no replica holds a shard): a ${label} run offers panes that the aggregators apply. ` +
        'Start one (`streamgauge aggregate`, or `streamgauge start`) and run it again.',
    );
  }
  if (held.length < shards.length) {
    const free = shards.filter((shard) => !held.includes(shard)).map((shard) => shard.stream);
    process.stderr.write(
      `warning: no aggregator holds ${free.join(', ')} now; unless a replica takes them over, those shards will not apply the run\n`,
    );
  }
}

/** One bar over the three phases: warehouse statements, shards published, shards applied. */
class PhaseBar {
  readonly #label: string;
  #bar: ProgressBar | undefined;
  #statements = 0;
  #shards = 0;
  #done = 0;

  constructor(label: string) {
    this.#label = label;
  }

  update(p: ReconcileProgress): void {
    if (p.phase === 'query') this.#statements = p.total;
    else this.#shards = p.total;
    const total = this.#statements + 2 * this.#shards || 1;
    this.#bar ??= progressBar(process.stderr, this.#label, total);
    const offset =
      p.phase === 'query' ? 0 : p.phase === 'publish' ? this.#statements : this.#statements + this.#shards;
    this.#done = offset + p.done;
    const what = {
      query: 'phase 1/3, querying the warehouse: statements',
      publish: 'phase 2/3, offering the panes: shards',
      apply: 'phase 3/3, waiting for the aggregators to apply them: shards',
    }[p.phase];
    this.#bar.update(this.#done, `${what} ${p.done}/${p.total}`);
  }

  done(): void {
    this.#bar?.done(this.#done);
  }
}

export function printReport(report: ReconcileReport, json: boolean, what = 'backfill'): void {
  if (json) {
    console.log(JSON.stringify(report));
    return;
  }
  const scope = report.scope === undefined ? '' : ` (${describeScope(report.scope)})`;
  console.log(
    `${what} ${report.run}${scope}: ${report.status}, ${(report.durationMs / 1000).toFixed(1)} s (warehouse ${(report.queryMs / 1000).toFixed(1)} s, ${report.rows} rows, ${report.nodes} nodes, cuts ${report.cuts.join(' ')})`,
  );
  console.log(
    `  panes compared ${report.panesCompared}, changed ${report.panesChanged}; nodes created ${report.nodesCreated}; shards applied ${report.shards.applied}/${report.shards.total}`,
  );
  // Absent from the report of a scheduler that predates the comparison.
  if (report.nodesOffered !== undefined) {
    console.log(
      `  nodes offered ${report.nodesOffered} (${(report.payloadBytes / 1e6).toFixed(1)} MB), left out ${report.nodesMatched}: they matched the aggregators' persisted state`,
    );
  }
  const drift = Object.entries(report.drift);
  if (report.panesCompared === 0) {
    console.log('  nothing compared: no pane was compared, so nothing is known about drift');
  } else if (drift.length === 0) console.log('  no drift: the live state matched the warehouse');
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

export function describeScope(scope: ReconcileScope): string {
  const parts: string[] = [];
  parts.push(scope.nodes === undefined ? 'every node' : `nodes ${scope.nodes.join(',')}`);
  if (scope.since !== undefined) parts.push(`panes from ${new Date(scope.since).toISOString()}`);
  return parts.join(', ');
}
