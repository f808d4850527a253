import { readFileSync } from 'node:fs';
import {
  allShardKeys,
  BatchError,
  type BatchRules,
  type Config,
  checkBatch,
  type DecodedBatch,
  decodeBatch,
  decodeEntry,
  ENTRY_FIELDS,
  fieldRecord,
  GROUPS,
  identityLabel,
  type Reading,
  shardKeys,
  shardOf,
} from '@streamgauge/core';
import {
  DeadLetterGoneError,
  type DeadLetterRecord,
  DeadLetters,
  DedupeSets,
  OpsLog,
  type RedisClient,
  type RedriveOutcome,
  RedriveRefusedError,
} from '@streamgauge/redis';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { configFromEnv, opsRedis } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';
import { commandLogger } from '../logger.ts';

/** How much of an error a `dlq list` line shows. */
const ERROR_WIDTH = 60;

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
      await withDeadLetters(async ({ dead, config }) => {
        const shards = shardsOf(options.shard, config);
        const letters: DeadLetterRecord[] = [];
        let total = 0;
        let more = false;
        for (const shard of shards) {
          total += await dead.count(shard);
          if (letters.length === limit) {
            more ||=
              (await dead.list(shard, { ...groupFilter(options.group), limit: 1, originals: false })).letters
                .length > 0;
            continue;
          }
          const page = await dead.list(shard, {
            ...groupFilter(options.group),
            limit: limit - letters.length,
          });
          letters.push(...page.letters);
          more ||= page.next !== undefined;
        }
        const views = letters.map(summaryOf);
        if (options.json) {
          console.log(JSON.stringify({ deadLetters: views, shown: views.length, more, total }));
          return;
        }
        printList(views, { more, total, limit, filtered: options.group !== undefined });
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
      await withDeadLetters(async ({ dead, config }) => {
        const letter = await found(dead, id);
        const siblings = await dead.siblings(letter);
        const content = originalContent(letter, config);
        const plan = await dead
          .redrive(letter.handle, {
            ...redriveSettings(config),
            from: 'original',
            ...(content.readings !== undefined && { readings: content.readings, source: content.source }),
            dryRun: true,
          })
          .then(
            (outcome) => ({ outcome }),
            (error: unknown) => {
              if (error instanceof RedriveRefusedError) {
                return {
                  refused:
                    error.reason === 'content'
                      ? `it needs repaired readings: streamgauge dlq redrive ${letter.handle} --file FILE`
                      : error.message,
                };
              }
              throw error;
            },
          );
        const detail = {
          ...summaryOf(letter),
          fields: fieldsOf(letter.original),
          ...(content.decoded !== undefined && { decoded: content.decoded }),
          ...(content.problem !== undefined && { problem: content.problem }),
          otherGroups: siblings.map((s) => ({ handle: s.handle, group: s.group, error: s.error })),
          redrive: plan,
        };
        if (options.json) console.log(JSON.stringify(detail));
        else printShow(letter, detail, content, siblings, plan);
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
      const text = options.file === undefined ? undefined : readText(options.file);
      await withDeadLetters(async ({ dead, config, redis, logger }) => {
        const letter = await found(dead, id, '; nothing was redriven');
        const dedupeSets = (shard: number) =>
          new DedupeSets(redis, shardKeys(shard, config.stream.shards), {
            horizonMs: config.stream.dedupeHorizonMs,
          });
        const content =
          text === undefined ? originalContent(letter, config) : fileContent(text, letter, config);
        if (text !== undefined && content.readings === undefined) {
          throw new CommandError(
            EXIT.failure,
            `nothing was redriven: ${options.file} ${content.problem ?? 'has no valid readings'}`,
          );
        }
        const from = text === undefined ? 'original' : 'file';
        if (from === 'file' && content.readings !== undefined) {
          // A repaired reading that ingest accepted already (through another
          // entry) would be counted twice: the original's own identities aside.
          const own = new Set(originalReadings(letter).map(identityLabel));
          const fresh = content.readings.filter((r) => !own.has(identityLabel(r)));
          const accepted = await dedupeSets(letter.shard).accepted(fresh);
          if (accepted.length > 0) {
            throw new CommandError(
              EXIT.failure,
              `nothing was redriven: ${options.file} holds readings ingest accepted already through other entries (they would count twice): ${accepted
                .slice(0, 5)
                .map(identityLabel)
                .join(', ')}${accepted.length > 5 ? ', …' : ''}`,
            );
          }
        }
        let outcome: RedriveOutcome;
        try {
          outcome = await dead.redrive(letter.handle, {
            ...redriveSettings(config),
            from,
            ...(content.readings !== undefined && { readings: content.readings, source: content.source }),
            dryRun: options.dryRun === true,
          });
        } catch (error) {
          if (error instanceof RedriveRefusedError) {
            throw new CommandError(EXIT.failure, refusalMessage(error, letter, content.problem));
          }
          if (error instanceof DeadLetterGoneError) {
            throw new CommandError(EXIT.failure, `${error.message}; nothing was redriven`);
          }
          throw error;
        }
        const readings =
          outcome.mode === 'append'
            ? (content.readings?.length ?? 0)
            : (content.decoded?.readings.length ?? 0);
        if (!outcome.dryRun) {
          const action = {
            action: 'dlq.redrive',
            stream: outcome.stream,
            entry: outcome.entry,
            deadLetter: outcome.handle,
            group: outcome.groups.join(','),
            resolved: outcome.deadLetters.join(','),
            mode: outcome.mode,
            newEntry: outcome.newEntry,
            from,
            readings,
          };
          if (outcome.mode === 'append' && content.readings !== undefined) {
            await dedupeSets(letter.shard).mark(content.readings);
          }
          await new OpsLog(redis).record(action);
          logger.info(action, 'dead letter redriven');
        }
        if (options.json) console.log(JSON.stringify({ ...outcome, from, readings }));
        else console.log(describeRedrive(outcome, from, readings));
        if (outcome.mode === 'redeliver' && content.problem !== undefined) {
          console.error(
            `note: group ${outcome.groups.join(', ')} may give up on it again, unless it was fixed to accept it: ${content.problem}`,
          );
        }
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
      await withDeadLetters(async ({ dead, config, redis, logger }) => {
        const ops = new OpsLog(redis);
        if (options.all === true) {
          const dropped: DeadLetterRecord[] = [];
          for (const shard of shardsOf(options.shard, config)) {
            const gone = await dead.dropAll(shard, groupFilter(options.group));
            dropped.push(...gone);
            if (gone.length === 0) continue;
            // One record per shard: a mass drop must not push everything else out of the ops log.
            const action = {
              action: 'dlq.drop',
              all: true,
              stream: allShardKeys(config.stream.shards)[shard]?.stream,
              group: options.group ?? '*',
              count: gone.length,
              first: gone[0]?.handle,
              last: gone[gone.length - 1]?.handle,
            };
            await ops.record(action);
            logger.info(action, 'dead letters dropped');
          }
          if (options.json) console.log(JSON.stringify({ dropped: dropped.map(summaryOf), missing: [] }));
          else console.log(`dropped ${dropped.length} dead letter${dropped.length === 1 ? '' : 's'}`);
          return;
        }
        const outcome = await dead.drop(ids);
        for (const letter of outcome.dropped) {
          const action = {
            action: 'dlq.drop',
            stream: letter.stream,
            entry: letter.entry,
            deadLetter: letter.handle,
            group: letter.group,
            error: letter.error,
            deliveries: letter.deliveries,
          };
          await ops.record(action);
          logger.info(action, 'dead letter dropped');
        }
        if (options.json) {
          console.log(JSON.stringify({ dropped: outcome.dropped.map(summaryOf), missing: outcome.missing }));
        } else {
          for (const l of outcome.dropped) {
            console.log(`dropped ${l.handle} (entry ${l.entry} of ${l.stream}, group ${l.group})`);
          }
        }
        for (const handle of outcome.missing) {
          console.error(`streamgauge: dead letter ${handle}: not found (already redriven or dropped)`);
        }
        if (outcome.missing.length > 0) process.exitCode = EXIT.failure;
      });
    });
}

interface Session {
  readonly dead: DeadLetters;
  readonly config: Config;
  readonly redis: RedisClient;
  readonly logger: Logger;
}

async function withDeadLetters(work: (session: Session) => Promise<void>): Promise<void> {
  const config = configFromEnv();
  const redis = await opsRedis(config);
  const logger = commandLogger('dlq');
  // What a redrive or drop did goes to stderr by default (LOG_LEVEL still wins).
  if (process.env.LOG_LEVEL === undefined) logger.level = 'info';
  try {
    await work({ dead: new DeadLetters(redis, { shards: config.stream.shards }), config, redis, logger });
  } catch (error) {
    if (error instanceof RangeError) throw new CommandError(EXIT.usage, error.message);
    throw error;
  } finally {
    redis.disconnect();
  }
}

async function found(dead: DeadLetters, id: string, consequence = ''): Promise<DeadLetterRecord> {
  const letter = await dead.get(id);
  if (letter !== undefined) return letter;
  throw new CommandError(
    EXIT.failure,
    new DeadLetterGoneError(id, await dead.link(id)).message + consequence,
  );
}

function redriveSettings(config: Config) {
  return {
    consumers: {
      [GROUPS.aggregator]: config.aggregator.consumer,
      [GROUPS.archiver]: config.archiver.consumer,
    },
    claimIdleMs: config.aggregator.claimIdleMs,
  };
}

/** What a dead letter's entry holds, and whether it can go back as it is. */
interface Content {
  /** Valid readings, all of the dead letter's shard: what a new entry would carry. */
  readonly readings?: Reading[];
  readonly source: string;
  /** The original entry, decoded (it may still hold invalid readings). */
  readonly decoded?: { readonly source: string; readonly readings: unknown[] };
  /** Why there are no readings to send (a sentence fragment about the entry or the file). */
  readonly problem?: string;
}

function originalContent(letter: DeadLetterRecord, config: Config): Content {
  const what = `the original entry ${letter.entry}`;
  if (letter.original === null || letter.original === undefined) {
    return { source: '', problem: `${what} is no longer in ${letter.stream} (trimmed)` };
  }
  let decoded: { source: string; readings: unknown[] };
  try {
    decoded = decodeEntry(letter.entry, letter.original);
  } catch (error) {
    return { source: '', problem: `${what} does not decode (${(error as Error).message})` };
  }
  const items = decoded.readings.map((raw) => ({ raw }));
  const checked = validate((rules) => ({ items, ...checkBatch(items, rules) }), letter, config);
  if (typeof checked === 'string') return { source: decoded.source, decoded, problem: `${what} ${checked}` };
  return { readings: checked, source: decoded.source, decoded };
}

function fileContent(text: string, letter: DeadLetterRecord, config: Config): Content {
  const checked = validate((rules) => decodeBatch(Buffer.from(text, 'utf8'), 'json', rules), letter, config);
  if (typeof checked === 'string') return { source: '', problem: checked };
  return { readings: checked, source: 'dlq-redrive' };
}

/**
 * Ingest's rules (the reading schema, the batch limit), and every reading of
 * the dead letter's shard: the readings, or what is wrong with them, item by
 * item. `read` checks the batch against the rules it is given.
 */
function validate(
  read: (rules: BatchRules) => DecodedBatch,
  letter: DeadLetterRecord,
  config: Config,
): Reading[] | string {
  let checked: DecodedBatch;
  try {
    checked = read({
      policy: { nowMs: Date.now(), maxFutureMs: config.ingest.maxFutureMs },
      maxReadings: config.ingest.maxBatchReadings,
      unit: 'entry',
      scopeOf: (reading) => {
        const shard = shardOf(reading.node_id, config.stream.shards);
        return shard === letter.shard
          ? undefined
          : `node_id ${JSON.stringify(reading.node_id)} belongs to shard ${shard}, not to this dead letter's shard ${letter.shard} (${letter.stream}); send it through ingest instead`;
      },
    });
  } catch (error) {
    if (error instanceof BatchError) return error.message.replace(/^the (body|entry) /, '');
    throw error;
  }
  // Ingest drops a repeat inside one request; a redrive bypasses that, so it refuses one.
  const first = new Map<string, number>();
  const rejected = [...checked.rejected];
  for (const { index, reading } of checked.valid) {
    const label = identityLabel(reading);
    const earlier = first.get(label);
    if (earlier === undefined) first.set(label, index);
    else rejected.push({ index, error: `the same reading (node_id and timestamp) as reading ${earlier}` });
  }
  rejected.sort((a, b) => a.index - b.index);
  if (rejected.length > 0) {
    const problems = rejected.map((r) => `reading ${r.index}: ${r.error}`);
    return `has ${problems.length} invalid reading${problems.length === 1 ? '' : 's'} of ${checked.items.length}:\n  ${problems.join('\n  ')}`;
  }
  return checked.valid.map((v) => v.reading);
}

/** The original entry's readings, as far as they decode and are readings at all. */
function originalReadings(letter: DeadLetterRecord): Reading[] {
  if (letter.original === null || letter.original === undefined) return [];
  try {
    return decodeEntry(letter.entry, letter.original).readings.filter(
      (r): r is Reading => typeof r === 'object' && r !== null && typeof r.node_id === 'string',
    );
  } catch {
    return [];
  }
}

function refusalMessage(error: RedriveRefusedError, letter: DeadLetterRecord, problem?: string): string {
  if (error.reason === 'content' && problem !== undefined) {
    return `dead letter ${letter.handle}: nothing was redriven: ${problem}; give repaired readings with --file FILE (a reading, an array of readings, or {"readings": [...]})`;
  }
  return error.message;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new CommandError(EXIT.usage, `cannot read ${file}: ${(error as Error).message}`);
  }
}

interface Summary {
  readonly id: string;
  readonly stream: string;
  readonly entry: string;
  readonly group: string;
  readonly deliveries: number;
  readonly error: string;
  readonly deadLetteredAt: string;
  /** Whether the original entry is still in the stream. */
  readonly original: boolean;
  /** How many readings it holds; null when it is gone or does not decode. */
  readonly readings: number | null;
}

function summaryOf(letter: DeadLetterRecord): Summary {
  let readings: number | null = null;
  if (letter.original) {
    try {
      readings = decodeEntry(letter.entry, letter.original).readings.length;
    } catch {
      // Does not decode: shown as such.
    }
  }
  return {
    id: letter.handle,
    stream: letter.stream,
    entry: letter.entry,
    group: letter.group,
    deliveries: letter.deliveries,
    error: letter.error,
    deadLetteredAt: timeOf(letter.deadId),
    original: letter.original !== null && letter.original !== undefined,
    readings,
  };
}

function printList(
  views: readonly Summary[],
  info: { more: boolean; total: number; limit: number; filtered: boolean },
): void {
  if (views.length === 0) {
    console.log(info.filtered && info.total > 0 ? 'no dead letters of that group' : 'no dead letters');
    return;
  }
  const rows = [
    ['ID', 'STREAM', 'ENTRY', 'GROUP', 'DELIVERIES', 'ORIGINAL', 'READINGS', 'ERROR'],
    ...views.map((v) => [
      v.id,
      v.stream,
      v.entry,
      v.group,
      String(v.deliveries),
      v.original ? 'present' : 'gone',
      v.readings === null ? (v.original ? 'bad' : '-') : String(v.readings),
      truncate(v.error.replace(/\s+/g, ' '), ERROR_WIDTH),
    ]),
  ];
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  for (const row of rows) {
    console.log(
      row
        .map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
        .join('  ')
        .trimEnd(),
    );
  }
  const shown = `${views.length} shown of ${info.total} dead letter${info.total === 1 ? '' : 's'}`;
  console.log(
    info.more ? `${shown}; more match: raise --limit (${info.limit}) or filter with --shard/--group` : shown,
  );
}

type Plan = { outcome: RedriveOutcome } | { refused: string };

function printShow(
  letter: DeadLetterRecord,
  detail: Summary,
  content: Content,
  siblings: readonly DeadLetterRecord[],
  plan: Plan,
): void {
  const line = (label: string, value: string) => console.log(`  ${`${label}:`.padEnd(15)}${value}`);
  console.log(`dead letter ${letter.handle}`);
  line('stream', letter.stream);
  line('entry', `${letter.entry} (appended ${timeOf(letter.entry)})`);
  line('group', letter.group);
  line('deliveries', String(letter.deliveries));
  line('dead-lettered', detail.deadLetteredAt);
  line('error', letter.error);
  line(
    'other groups',
    siblings.length === 0
      ? 'no other group gave up on this entry'
      : siblings.map((s) => `${s.group} gave up on it too (${s.handle}: ${s.error})`).join('; '),
  );
  if (!letter.original) {
    line('original', `no longer in ${letter.stream} (trimmed)`);
  } else {
    line('original', `in ${letter.stream}`);
    for (let i = 0; i + 1 < letter.original.length; i += 2) {
      const name = letter.original[i] as string;
      const value = letter.original[i + 1] as string;
      if (name !== ENTRY_FIELDS.readings) {
        console.log(`    ${name}: ${value}`);
        continue;
      }
      if (content.decoded === undefined) {
        console.log(`    ${name} (raw; it does not decode):`);
        console.log(indent(value, 6));
      } else {
        console.log(`    ${name} (${content.decoded.readings.length}):`);
        console.log(indent(JSON.stringify(content.decoded.readings, null, 2), 6));
      }
    }
  }
  if (content.problem !== undefined) line('problem', content.problem.replace(/\n/g, '\n                 '));
  if ('refused' in plan) line('redrive', `not as it is: ${plan.refused}`);
  else line('redrive', `would ${describePlan(plan.outcome)}`);
}

function describePlan(o: RedriveOutcome): string {
  const resolves = `resolving ${o.deadLetters.join(', ')}`;
  if (o.mode === 'append') {
    const to = o.groups.length > 0 ? o.groups.join(', ') : 'the stream';
    return `replace entry ${o.entry} of ${o.stream} by a new entry, delivered to every group (gave up on it: ${to}), ${resolves}`;
  }
  return `re-deliver the original ${o.entry} to group ${o.groups.join(', ')} only (${o.applied.join(', ')} applied it already), ${resolves}`;
}

function describeRedrive(o: RedriveOutcome, from: 'original' | 'file', readings: number): string {
  if (o.dryRun) return `would ${describePlan(o)}`;
  const what = `${readings} reading${readings === 1 ? '' : 's'} from ${from === 'file' ? 'the file' : 'the original'}`;
  if (o.mode === 'append') {
    return `redrove ${o.handle}: entry ${o.entry} of ${o.stream} replaced by new entry ${o.newEntry} (${what}), delivered to every group; resolved ${o.deadLetters.join(', ')}`;
  }
  return `redrove ${o.handle}: entry ${o.entry} of ${o.stream} re-delivered to group ${o.groups.join(', ')} only (${o.applied.join(', ')} applied it already); resolved ${o.deadLetters.join(', ')}`;
}

function fieldsOf(flat: readonly string[] | null | undefined): Record<string, string> | null {
  return flat ? fieldRecord(flat) : null;
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

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

/** A stream id's time (its milliseconds part). */
function timeOf(id: string): string {
  return new Date(Number(id.slice(0, id.indexOf('-')))).toISOString();
}
