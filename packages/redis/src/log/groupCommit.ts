import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../connection.ts';
import { LeaseLostError } from '../errors/LeaseLostError.ts';
import { runScript, ScriptRefusal } from '../scripts.ts';
import type { PackedHashWrites } from './packedHashWrites.ts';

/** Dead letters kept per shard (approximately): the stream must not grow without bound. */
const DEAD_LETTERS_KEPT = 100_000;

export interface DeadLetter {
  readonly id: string;
  readonly error: string;
  readonly deliveries: number;
}

/** The keys one group's commit on one shard touches: all in the shard's slot. */
export interface GroupCommitKeys {
  /** The shard's lease (only checked when the commit carries a lease token). */
  readonly lease: string;
  readonly commit: string;
  readonly stream: string;
  readonly nodes: string;
  readonly stats: string;
  readonly deadLetters: string;
  readonly errors: string;
  /**
   * The highest entry id acknowledged with state (a caller with state only):
   * an entry at or below it that comes again is already applied.
   */
  readonly applied?: string;
  /** Where the commit's anomaly events go (needed only when it has some). */
  readonly outbox?: string;
}

/** What one batch changes, acknowledges and counts (commitShard.lua). */
export interface GroupCommit {
  readonly group: string;
  /** State hashes to update, their fields packed. */
  readonly writes?: PackedHashWrites;
  readonly added?: readonly string[];
  /** State hashes to delete, with the ids to drop from the node set. */
  readonly removed?: readonly { readonly id: string; readonly key: string }[];
  readonly ackIds: readonly string[];
  /** Entries given up on: moved to the dead-letter stream as they are acknowledged. */
  readonly deadLetters: readonly DeadLetter[];
  /** Entries that failed and stay pending (to be delivered again): their last error. */
  readonly failures: readonly { readonly id: string; readonly error: string }[];
  readonly counters: Readonly<Record<string, number>>;
  /** Anomaly events (JSON), appended to the outbox with the state that produced them. */
  readonly events?: readonly string[];
}

/**
 * Encodes a commit once and returns a function that runs it as one script
 * call; it may be run again after a failure. The script records the
 * commit's id: if an attempt was applied but its reply lost, the next
 * attempt does nothing, so counters and dead letters are never applied
 * twice. With a lease `token`, throws LeaseLostError when the lease is held
 * under another; with an empty one there is no lease to check. Once an
 * attempt succeeds, `onCommitted` is called (the writes' memory may then be
 * used again) and later calls resolve as it did, sending nothing.
 */
export function prepareCommit(
  redis: RedisClient,
  keys: GroupCommitKeys,
  commit: GroupCommit,
  options: { readonly token: string; readonly ttlSeconds: number; readonly onCommitted?: () => void },
): () => Promise<string | undefined> {
  const scriptKeys = [
    keys.lease,
    keys.commit,
    keys.stream,
    keys.nodes,
    keys.stats,
    keys.deadLetters,
    keys.errors,
    // A key of the same slot either way (the script ignores it without a mark).
    keys.applied ?? keys.commit,
  ];
  // One id per prepared commit, the same across its retries: an entry id
  // would not do, since a replayed entry is committed a second time.
  const commitId = randomUUID();
  const args: (string | number | Buffer)[] = [
    options.token,
    commitId,
    options.ttlSeconds,
    commit.group,
    DEAD_LETTERS_KEPT,
    keys.applied === undefined ? '0' : '1',
  ];
  const writes = commit.writes;
  if (writes === undefined) args.push(0, 0);
  else {
    const chunks = writes.chunks();
    for (const key of writes.keys) scriptKeys.push(key);
    args.push(writes.keys.length, chunks.length);
    for (const chunk of chunks) args.push(chunk);
  }
  pushList(args, commit.added ?? []);
  const removed = commit.removed ?? [];
  pushList(
    args,
    removed.map((r) => r.id),
  );
  for (const { key } of removed) scriptKeys.push(key);
  const counters = Object.entries(commit.counters).filter(([, by]) => by !== 0);
  args.push(counters.length);
  for (const [name, by] of counters) args.push(name, by);
  args.push(commit.deadLetters.length);
  for (const dead of commit.deadLetters) args.push(dead.id, dead.error, dead.deliveries);
  args.push(commit.failures.length);
  for (const failure of commit.failures) args.push(failure.id, failure.error);
  pushList(args, commit.ackIds);
  const events = commit.events ?? [];
  pushList(args, events);
  if (events.length > 0) {
    if (keys.outbox === undefined) throw new Error('a commit with anomaly events needs an outbox key');
    scriptKeys.push(keys.outbox);
  }
  let committed: { readonly mark: string | undefined } | undefined;
  return async () => {
    if (committed !== undefined) return committed.mark;
    try {
      const [, mark] = (await runScript(redis, 'commitShard', scriptKeys, args as (string | number)[])) as [
        number,
        string | null,
      ];
      if (committed === undefined) {
        committed = { mark: mark ?? undefined };
        options.onCommitted?.();
      }
      return committed.mark;
    } catch (error) {
      if (error instanceof ScriptRefusal && error.code === 'LEASE_LOST')
        throw new LeaseLostError(keys.stream);
      throw error;
    }
  };
}

/** The last error of each given entry that failed before (entries that never failed are absent). */
export async function lastErrors(
  redis: RedisClient,
  errorsKey: string,
  ids: readonly string[],
): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const values = await redis.hmget(errorsKey, ...ids);
  const errors = new Map<string, string>();
  ids.forEach((id, i) => {
    const value = values[i];
    if (typeof value === 'string') errors.set(id, value);
  });
  return errors;
}

function pushList(args: (string | number | Buffer)[], items: readonly string[]): void {
  args.push(items.length);
  for (const item of items) args.push(item);
}
