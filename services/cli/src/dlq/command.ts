import { readFileSync } from 'node:fs';
import { allShardKeys, type Config, GROUPS } from '@streamgauge/core';
import { DeadLetterGoneError, DeadLetterHandleError, DeadLetters } from '@streamgauge/redis';
import type { Command } from 'commander';
import { configFromEnv, opsRedis } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';
import { commandLogger } from '../logger.ts';
import { dropAllDeadLetters, dropDeadLetters } from './drop.ts';
import { inspectDeadLetter, listDeadLetters } from './inspect.ts';
import { redrive } from './redrive.ts';
import {
  badHandleText,
  dropJson,
  droppedCount,
  droppedText,
  listJson,
  listText,
  missingText,
  notRedrivenText,
  redriveJson,
  redriveNote,
  redriveText,
  showDetail,
  showText,
} from './render.ts';
import type { Session } from './session.ts';

interface ListOptions {
  group?: string;
  shard?: string;
  limit: string;
  json?: boolean;
}

interface RedriveCommandOptions {
  file?: string;
  dryRun?: boolean;
  json?: boolean;
}

interface DropOptions {
  all?: boolean;
  group?: string;
  shard?: string;
  yes?: boolean;
  json?: boolean;
}

export function dlqCommand(program: Command): void {
  const dlq = program
    .command('dlq')
    .description(
      'dead letters (entries a consumer group gave up on): list, show, redrive (send back once fixed) or drop them; every redrive and drop is recorded in the ops log',
    );

  dlq
    .command('list')
    .description('one line per dead letter, oldest first, shard by shard')
    .option('--group <group>', `only this group's (${Object.values(GROUPS).join(', ')})`)
    .option('--shard <n>', 'only this stream shard')
    .option('--limit <n>', 'show at most this many', '50')
    .option('--json', 'print JSON')
    .action(async (options: ListOptions) => {
      const limit = positive('--limit', options.limit);
      await withDeadLetters(async (session) => {
        const shards = shardsOf(options.shard, session.config);
        const listing = await listDeadLetters(session, shards, { ...groupFilter(options.group), limit });
        console.log(
          options.json
            ? listJson(listing)
            : listText(listing, { limit, filtered: options.group !== undefined }),
        );
      });
    });

  dlq
    .command('show')
    .description(
      "one dead letter in full: the error, the other groups' dead letters of the entry, the original entry's fields, and what a redrive would do",
    )
    .argument('<id>', 'the dead letter, as dlq list shows it (<shard>:<id>)')
    .option('--json', 'print JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      await withDeadLetters(async (session) => {
        const inspection = await inspectDeadLetter(session, id);
        const detail = showDetail(inspection);
        console.log(options.json ? JSON.stringify(detail) : showText(inspection, detail));
      });
    });

  dlq
    .command('redrive')
    .description(
      'send a dead letter back through the pipeline, exactly once: as a new entry of its shard (the original content, or repaired readings from --file), or, when a group that counts readings applied the original already, the original re-delivered to the groups that gave up on it only',
    )
    .argument('<id>', 'the dead letter, as dlq list shows it (<shard>:<id>)')
    .option(
      '--file <file>',
      'repaired readings (JSON: a reading, an array of readings, or {"readings": [...]}), validated as ingest does; all must be valid and of this shard',
    )
    .option('--dry-run', 'say what would be done, and change nothing')
    .option('--json', 'print the outcome as JSON')
    .action(async (id: string, options: RedriveCommandOptions) => {
      const repaired = options.file === undefined ? undefined : readText(options.file);
      await withDeadLetters(async (session) => {
        const result = await redrive(session, {
          handle: id,
          ...(repaired !== undefined && { repaired }),
          dryRun: options.dryRun === true,
        });
        if (result.kind !== 'redriven') {
          throw new CommandError(EXIT.failure, notRedrivenText(result, options.file));
        }
        console.log(options.json ? redriveJson(result) : redriveText(result));
        const note = redriveNote(result);
        if (note !== undefined) console.error(note);
      });
    });

  dlq
    .command('drop')
    .description(
      'delete dead letters for good (their entries are not processed); each is recorded in the ops log',
    )
    .argument('[ids...]', 'dead letters, as dlq list shows them (<shard>:<id>)')
    .option('--all', 'every dead letter (of --group, of --shard); needs --yes')
    .option('--group <group>', 'with --all: only this group’s')
    .option('--shard <n>', 'with --all: only this stream shard')
    .option('--yes', 'confirm --all')
    .option('--json', 'print JSON')
    .action(async (ids: string[], options: DropOptions) => {
      if (options.all === true && ids.length > 0) {
        throw new CommandError(EXIT.usage, 'give dead letter ids, or --all, not both');
      }
      if (options.all !== true && ids.length === 0) {
        throw new CommandError(
          EXIT.usage,
          'give the dead letters to drop (<shard>:<id> ...), or --all --yes',
        );
      }
      if (options.all !== true && (options.group !== undefined || options.shard !== undefined)) {
        throw new CommandError(EXIT.usage, '--group and --shard select dead letters for --all only');
      }
      if (options.all === true && options.yes !== true) {
        throw new CommandError(
          EXIT.usage,
          '--all drops every dead letter selected, for good: add --yes to confirm (see them first with streamgauge dlq list)',
        );
      }
      await withDeadLetters(async (session) => {
        if (options.all === true) {
          const shards = shardsOf(options.shard, session.config);
          const dropped = await dropAllDeadLetters(session, shards, groupFilter(options.group).group);
          console.log(options.json ? dropJson(dropped, []) : droppedCount(dropped.length));
          return;
        }
        const outcome = await dropDeadLetters(session, ids);
        if (options.json) console.log(dropJson(outcome.dropped, outcome.missing));
        else if (outcome.dropped.length > 0) console.log(droppedText(outcome.dropped));
        for (const handle of outcome.missing) console.error(missingText(handle));
        if (outcome.missing.length > 0) process.exitCode = EXIT.failure;
      });
    });
}

async function withDeadLetters(work: (session: Session) => Promise<void>): Promise<void> {
  const config = configFromEnv();
  const redis = await opsRedis(config);
  // What a redrive or drop did goes to stderr by default (LOG_LEVEL still wins).
  const logger = commandLogger(config, 'dlq', 'info');
  try {
    await work({ dead: new DeadLetters(redis, { shards: config.stream.shards }), config, redis, logger });
  } catch (error) {
    if (error instanceof DeadLetterHandleError) throw new CommandError(EXIT.usage, badHandleText(error));
    if (error instanceof RangeError) throw new CommandError(EXIT.usage, error.message);
    if (error instanceof DeadLetterGoneError) throw new CommandError(EXIT.failure, error.message);
    throw error;
  } finally {
    redis.disconnect();
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new CommandError(EXIT.usage, `cannot read ${file}: ${(error as Error).message}`);
  }
}

function shardsOf(option: string | undefined, config: Config): number[] {
  const all = allShardKeys(config.stream.shards).map((s) => s.shard);
  if (option === undefined) return all;
  const shard = Number(option);
  if (!Number.isInteger(shard) || shard < 0 || shard >= all.length) {
    throw new CommandError(
      EXIT.usage,
      `--shard: expected a shard from 0 to ${all.length - 1} (STREAM_SHARDS=${all.length}), got ${JSON.stringify(option)}`,
    );
  }
  return [shard];
}

function groupFilter(group: string | undefined): { group?: string } {
  if (group === undefined) return {};
  const groups: readonly string[] = Object.values(GROUPS);
  if (!groups.includes(group)) {
    throw new CommandError(
      EXIT.usage,
      `--group ${JSON.stringify(group)}: the groups are ${groups.join(', ')}`,
    );
  }
  return { group };
}

function positive(option: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new CommandError(
      EXIT.usage,
      `${option}: expected a positive whole number, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}
