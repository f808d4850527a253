import { decodeEntry, ENTRY_FIELDS, fieldRecord, identityLabel } from '@streamgauge/core';
import type {
  DeadLetterHandleError,
  DeadLetterRecord,
  RedriveOutcome,
  RedriveRefusal,
  RedriveRefusedError,
} from '@streamgauge/redis';
import type { Inspection, Listing } from './inspect.ts';
import type { NotRedriven, Redriven } from './redrive.ts';

/** How much of an error a `dlq list` line shows. */
const ERROR_WIDTH = 60;

export interface Summary {
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

export function summaryOf(letter: DeadLetterRecord): Summary {
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

export function listJson(listing: Listing): string {
  const views = listing.letters.map(summaryOf);
  return JSON.stringify({
    deadLetters: views,
    shown: views.length,
    more: listing.more,
    total: listing.total,
  });
}

export function listText(
  listing: Listing,
  shown: { readonly limit: number; readonly filtered: boolean },
): string {
  const views = listing.letters.map(summaryOf);
  if (views.length === 0) {
    return shown.filtered && listing.total > 0 ? 'no dead letters of that group' : 'no dead letters';
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
  const lines = rows.map((row) =>
    row
      .map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
  const count = `${views.length} shown of ${listing.total} dead letter${listing.total === 1 ? '' : 's'}`;
  lines.push(
    listing.more
      ? `${count}; more match: raise --limit (${shown.limit}) or filter with --shard/--group`
      : count,
  );
  return lines.join('\n');
}

type Plan = { readonly outcome: RedriveOutcome } | { readonly refused: string };

/** `dlq show --json`; its text form is worded from it. */
export function showDetail({ letter, siblings, content, plan }: Inspection) {
  const redrive: Plan =
    'outcome' in plan
      ? plan
      : {
          refused:
            plan.refusal.reason === 'content'
              ? `it needs repaired readings: streamgauge dlq redrive ${letter.handle} --file FILE`
              : refusalText(plan.refusal),
        };
  return {
    ...summaryOf(letter),
    fields: letter.original ? fieldRecord(letter.original) : null,
    ...(content.decoded !== undefined && { decoded: content.decoded }),
    ...(content.problem !== undefined && { problem: content.problem }),
    otherGroups: siblings.map((s) => ({ handle: s.handle, group: s.group, error: s.error })),
    redrive,
  };
}

export function showText(
  { letter, siblings, content }: Inspection,
  detail: ReturnType<typeof showDetail>,
): string {
  const lines: string[] = [`dead letter ${letter.handle}`];
  const line = (label: string, value: string) => lines.push(`  ${`${label}:`.padEnd(15)}${value}`);
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
        lines.push(`    ${name}: ${value}`);
        continue;
      }
      if (content.decoded === undefined) {
        lines.push(`    ${name} (raw; it does not decode):`, indent(value, 6));
      } else {
        lines.push(
          `    ${name} (${content.decoded.readings.length}):`,
          indent(JSON.stringify(content.decoded.readings, null, 2), 6),
        );
      }
    }
  }
  if (content.problem !== undefined) line('problem', content.problem.replace(/\n/g, '\n                 '));
  const plan = detail.redrive;
  if ('refused' in plan) line('redrive', `not as it is: ${plan.refused}`);
  else line('redrive', `would ${describePlan(plan.outcome)}`);
  return lines.join('\n');
}

export function describePlan(o: RedriveOutcome): string {
  const resolves = `resolving ${o.deadLetters.join(', ')}`;
  if (o.mode === 'append') {
    const to = o.groups.length > 0 ? o.groups.join(', ') : 'the stream';
    return `replace entry ${o.entry} of ${o.stream} by a new entry, delivered to every group (gave up on it: ${to}), ${resolves}`;
  }
  return `re-deliver the original ${o.entry} to group ${o.groups.join(', ')} only (${o.applied.join(', ')} applied it already), ${resolves}`;
}

export function redriveJson({ outcome, from, readings }: Redriven): string {
  return JSON.stringify({ ...outcome, from, readings });
}

export function redriveText({ outcome: o, from, readings }: Redriven): string {
  if (o.dryRun) return `would ${describePlan(o)}`;
  const what = `${readings} reading${readings === 1 ? '' : 's'} from ${from === 'file' ? 'the file' : 'the original'}`;
  if (o.mode === 'append') {
    return `redrove ${o.handle}: entry ${o.entry} of ${o.stream} replaced by new entry ${o.newEntry} (${what}), delivered to every group; resolved ${o.deadLetters.join(', ')}`;
  }
  return `redrove ${o.handle}: entry ${o.entry} of ${o.stream} re-delivered to group ${o.groups.join(', ')} only (${o.applied.join(', ')} applied it already); resolved ${o.deadLetters.join(', ')}`;
}

/** A warning for stderr: the original went back as it is, with what made the group give up on it. */
export function redriveNote({ outcome, problem }: Redriven): string | undefined {
  if (outcome.mode !== 'redeliver' || problem === undefined) return undefined;
  return `note: group ${outcome.groups.join(', ')} may give up on it again, unless it was fixed to accept it: ${problem}`;
}

/** Why nothing was redriven; `file` names the repaired readings, when they were given. */
export function notRedrivenText(reason: NotRedriven, file?: string): string {
  switch (reason.kind) {
    case 'gone':
      return `${reason.error.message}; nothing was redriven`;
    case 'invalid':
      return `nothing was redriven: ${file} ${reason.problem}`;
    case 'accepted': {
      const shown = reason.readings.slice(0, 5).map(identityLabel).join(', ');
      return `nothing was redriven: ${file} holds readings ingest accepted already through other entries (they would count twice): ${shown}${reason.readings.length > 5 ? ', …' : ''}`;
    }
    case 'refused':
      if (reason.error.reason === 'content' && reason.problem !== undefined) {
        return `dead letter ${reason.error.handle}: nothing was redriven: ${reason.problem}; give repaired readings with --file FILE (a reading, an array of readings, or {"readings": [...]})`;
      }
      return refusalText(reason.error);
  }
}

/**
 * The refusal, and what to do instead. The adapter says only what stands in
 * the way: the way around it is a command or a flag, which only the CLI knows.
 */
export function refusalText(error: RedriveRefusedError): string {
  const advice: Record<RedriveRefusal, string> = {
    pending:
      "; wait until it is done with it, then redrive: one redrive resolves every group's dead letter of an entry",
    unread: '; wait until it has (see streamgauge status)',
    content: '; give repaired readings with --file',
    partial: `; redrive without --file to re-deliver the original to group ${error.group} only, or load the repaired readings into the warehouse with streamgauge import and drop the dead letter`,
    trimmed: '. Drop the dead letter (load its readings with streamgauge import if the warehouse needs them)',
    nogroup: '; drop it',
    stream: '',
  };
  return error.message + (advice[error.reason] ?? '');
}

export function badHandleText(error: DeadLetterHandleError): string {
  return `${JSON.stringify(error.handle)} is not a dead letter: expected ${error.expected} as dlq list shows it (e.g. ${error.example})`;
}

export function dropJson(dropped: readonly DeadLetterRecord[], missing: readonly string[]): string {
  return JSON.stringify({ dropped: dropped.map(summaryOf), missing });
}

export function droppedText(dropped: readonly DeadLetterRecord[]): string {
  return dropped
    .map((l) => `dropped ${l.handle} (entry ${l.entry} of ${l.stream}, group ${l.group})`)
    .join('\n');
}

export function droppedCount(count: number): string {
  return `dropped ${count} dead letter${count === 1 ? '' : 's'}`;
}

export function missingText(handle: string): string {
  return `streamgauge: dead letter ${handle}: not found (already redriven or dropped)`;
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
