import { Command, CommanderError } from 'commander';
import { aggregateCommand } from './commands/aggregate.ts';
import { archiveCommand } from './commands/archive.ts';
import { backfillCommand } from './commands/backfill.ts';
import { cacheStatsCommand } from './commands/cacheStats.ts';
import { dashboardCommand } from './commands/dashboard.ts';
import { detectCommand } from './commands/detect.ts';
import { gatewaysCommand } from './commands/gateways.ts';
import { importCommand } from './commands/import.ts';
import { ingestCommand } from './commands/ingest.ts';
import { nodesCommand } from './commands/nodes.ts';
import { rebuildCommand } from './commands/rebuild.ts';
import { replayCommand } from './commands/replay.ts';
import { simulateCommand } from './commands/simulate.ts';
import { startCommand } from './commands/start.ts';
import { statusCommand } from './commands/status.ts';
import { viewersCommand } from './commands/viewers.ts';
import { dlqCommand } from './dlq/command.ts';
import { CommandError, EXIT } from './exitCodes.ts';

export function buildProgram(): Command {
  const program = new Command('streamgauge')
    .description('Streaming pipeline for water-network sensor readings (Redis Streams → dashboard keys).')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.addHelpText(
    'after',
    '\nConfiguration comes from the environment (REDIS_URL or REDIS_HOST/REDIS_PORT/REDIS_DB, ...);' +
      '\nsee README.md. Exit codes: 0 ok, 1 failure, 2 usage, 3 configuration, 4 Redis unreachable.',
  );
  startCommand(program);
  ingestCommand(program);
  aggregateCommand(program);
  archiveCommand(program);
  dashboardCommand(program);
  simulateCommand(program);
  gatewaysCommand(program);
  viewersCommand(program);
  nodesCommand(program);
  importCommand(program);
  backfillCommand(program);
  cacheStatsCommand(program);
  detectCommand(program);
  statusCommand(program);
  dlqCommand(program);
  replayCommand(program);
  rebuildCommand(program);
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }
  return program;
}

/** Runs the command line and returns the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof CommandError) {
      console.error(`streamgauge: ${error.message}`);
      return error.exitCode;
    }
    console.error(`streamgauge: ${(error as Error).stack ?? String(error)}`);
    return EXIT.failure;
  }
}
