import { allShardKeys, GROUPS } from '@streamgauge/core';
import {
  OpsLog,
  ReplayGroupMissingError,
  replayTotals,
  type ShardReplay,
  StreamReplay,
} from '@streamgauge/redis';
import type { Command } from 'commander';
import { configFromEnv, opsRedis } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';
import { commandLogger } from '../logger.ts';
import { progressBar } from '../progress.ts';
import { timeArgument } from '../timeArgument.ts';

interface ReplayOptions {
  group: string;
  from: string;
  to: string;
  dryRun?: boolean;
  json?: boolean;
  wait: boolean;
  timeout: string;
}

export function replayCommand(program: Command): void {
  program
    .command('replay')
    .description(
      'deliver a range of the stream to a consumer group again (entries it already applied are not counted twice); --from/--to are arrival times or entry ids',
    )
    .requiredOption('--group <group>', `the consumer group (${Object.values(GROUPS).join(', ')})`)
    .requiredOption(
      '--from <time|id>',
      'first entry: an ISO-8601 time, epoch ms, a stream entry id, a duration ago (30m, 2h, 7d) or - (the start)',
    )
    .option('--to <time|id>', 'last entry, inclusive (same forms; + is the end)', '+')
    .option('--dry-run', 'say what would be replayed, and change nothing')
    .option('--json', 'print the outcome as JSON')
    .option(
      '--no-wait',
      'return once the entries are handed back, without waiting for the group to process them',
    )
    .option('--timeout <seconds>', 'how long to wait for the group to process them', '600')
    .action(async (options: ReplayOptions) => {
      const config = configFromEnv();
      const now = Date.now();
      const from = streamPosition('--from', options.from, now, 'start');
      const to = streamPosition('--to', options.to, now, 'end');
      const timeoutMs = seconds('--timeout', options.timeout) * 1000;
      const redis = await opsRedis(config);
      try {
        const run = `${now.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
        const replays = await Promise.all(
          allShardKeys(config.stream.shards).map(async (shard) => {
            // The aggregator's applied mark: entries after it are not replayed yet.
            const mark = options.group === GROUPS.aggregator ? await redis.get(shard.aggregateApplied) : null;
            const range = { group: options.group, from, to, ...(mark !== null && { appliedThrough: mark }) };
            return new StreamReplay(redis, shard, range, run);
          }),
        );
        const range = { group: options.group, from, to };
        if (options.dryRun) {
          const plans = await Promise.all(replays.map((r) => r.plan())).catch(usageOnMissingGroup);
          report({ ...range, dryRun: true, shards: plans }, options.json === true);
          return;
        }
        const idleMs = config.aggregator.claimIdleMs;
        const done = await Promise.all(replays.map((r) => r.run(idleMs))).catch(usageOnMissingGroup);
        const totals = replayTotals(done);
        await new OpsLog(redis).record({
          action: 'replay',
          run,
          group: options.group,
          from,
          to,
          entries: totals.replayed,
          readings: totals.readings,
          left_out: totals.pending + totals.undelivered + totals.deadLettered + totals.unsettled,
        });
        commandLogger(config, 'replay').info({ ...range, entries: totals.replayed }, 'replay handed back');
        const outcome = { ...range, dryRun: false, shards: done };
        if (!options.wait || totals.replayed === 0) {
          report(outcome, options.json === true);
          return;
        }
        const remaining = await waitFor(replays, done, totals.replayed, timeoutMs);
        if (remaining === 0) await Promise.all(replays.map((r) => r.cleanUp()));
        report({ ...outcome, remaining }, options.json === true);
        if (remaining > 0) {
          throw new CommandError(
            EXIT.failure,
            `${remaining} replayed entries are still pending after ${timeoutMs / 1000} s; they stay pending and are processed when a consumer of group ${options.group} runs (is one running?)`,
          );
        }
      } finally {
        redis.disconnect();
      }
    });
}

/** Waits until the group has processed every entry handed back, with a progress bar; returns how many are left. */
async function waitFor(
  replays: readonly StreamReplay[],
  done: readonly ShardReplay[],
  total: number,
  timeoutMs: number,
): Promise<number> {
  const bar = progressBar(process.stderr, 'replay', total);
  const deadline = Date.now() + timeoutMs;
  let remaining = total;
  for (;;) {
    const counts = await Promise.all(replays.map((r, i) => r.remaining(done[i] as ShardReplay)));
    remaining = counts.reduce((a, b) => a + b, 0);
    bar.update(total - remaining, `${total - remaining}/${total} entries processed`);
    if (remaining === 0 || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  bar.done(total - remaining);
  return remaining;
}

function report(
  outcome: {
    group: string;
    from: string;
    to: string;
    dryRun: boolean;
    shards: readonly ShardReplay[];
    remaining?: number;
  },
  json: boolean,
): void {
  const totals = replayTotals(outcome.shards);
  if (json) {
    console.log(JSON.stringify({ ...outcome, totals }));
    return;
  }
  const verb = outcome.dryRun ? 'would replay' : 'replayed';
  console.log(
    `${verb} ${totals.replayed} entries (${totals.readings} readings) to group ${outcome.group}, range ${outcome.from} .. ${outcome.to}`,
  );
  for (const s of outcome.shards) {
    const leftOut = [
      s.pending > 0 && `${s.pending} still pending`,
      s.undelivered > 0 && `${s.undelivered} not yet delivered`,
      s.deadLettered > 0 && `${s.deadLettered} dead-lettered (see streamgauge dlq)`,
      s.unsettled > 0 && `${s.unsettled} after the applied mark (an earlier entry is still being processed)`,
    ].filter(Boolean);
    console.log(
      `  ${s.stream}: ${s.entries} entries in range, ${s.replayed} ${verb}${leftOut.length > 0 ? `; left out: ${leftOut.join(', ')}` : ''}`,
    );
  }
  if (outcome.remaining !== undefined && outcome.remaining === 0) {
    console.log(`  the group processed every one (entries it had applied already were not counted again)`);
  }
}

function usageOnMissingGroup(error: unknown): never {
  if (error instanceof ReplayGroupMissingError) throw new CommandError(EXIT.usage, error.message);
  throw error;
}

/**
 * A stream position from the command line: an entry id, `-`/`+`, or a time
 * (timeArgument's forms). Times select entries by arrival (their id), which
 * is what a stream range is.
 */
export function streamPosition(option: string, value: string, now: number, side: 'start' | 'end'): string {
  if (value === '-' || value === '+' || /^\d+-\d+$/.test(value)) return value;
  const time = timeArgument(option, value, now);
  // An end time covers every entry of its millisecond.
  return side === 'end' ? `${time}-18446744073709551615` : `${time}-0`;
}

function seconds(option: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new CommandError(EXIT.usage, `${option} must be a positive number of seconds`);
  return n;
}
