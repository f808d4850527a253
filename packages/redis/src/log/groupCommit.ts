import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../connection.ts';
import { LeaseLostError } from '../errors/LeaseLostError.ts';
import { runScript, ScriptRefusal, scriptSource } from '../scripts.ts';
import type { PackedHashWrites } from './packedHashWrites.ts';
import type { CommitConnection, WatchedCommit } from './watchedCommit.ts';

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
 * call, or, with a `connection` and state to write, as one transaction
 * (CommitConnection); it may be run again after a failure. The script records the
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
  options: {
    readonly token: string;
    readonly ttlSeconds: number;
    readonly onCommitted?: () => void;
    /** Where a commit with state goes as a transaction (standalone Redis); without it, a script call. */
    readonly connection?: CommitConnection;
  },
): () => Promise<string | undefined> {
  const baseKeys = [
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
  const head: (string | number)[] = [
    options.token,
    commitId,
    options.ttlSeconds,
    commit.group,
    DEAD_LETTERS_KEPT,
    keys.applied === undefined ? '0' : '1',
  ];
  // After the state's writes: the same whether they are packed in or sent as commands.
  const tailKeys: string[] = [];
  const tail: (string | number)[] = [];
  pushList(tail, commit.added ?? []);
  const removed = commit.removed ?? [];
  pushList(
    tail,
    removed.map((r) => r.id),
  );
  for (const { key } of removed) tailKeys.push(key);
  const counters = Object.entries(commit.counters).filter(([, by]) => by !== 0);
  tail.push(counters.length);
  for (const [name, by] of counters) tail.push(name, by);
  tail.push(commit.deadLetters.length);
  for (const dead of commit.deadLetters) tail.push(dead.id, dead.error, dead.deliveries);
  tail.push(commit.failures.length);
  for (const failure of commit.failures) tail.push(failure.id, failure.error);
  pushList(tail, commit.ackIds);
  const events = commit.events ?? [];
  pushList(tail, events);
  if (events.length > 0) {
    if (keys.outbox === undefined) throw new Error('a commit with anomaly events needs an outbox key');
    tailKeys.push(keys.outbox);
  }

  const writes = commit.writes;
  const { connection } = options;
  const watched: WatchedCommit | undefined =
    connection !== undefined && writes !== undefined && options.token !== '' && keys.applied !== undefined
      ? {
          lease: keys.lease,
          commit: keys.commit,
          applied: keys.applied,
          stream: keys.stream,
          token: options.token,
          commitId,
          ttlSeconds: options.ttlSeconds,
          writes,
          script: {
            source: scriptSource('commitShard'),
            keys: [...baseKeys, ...tailKeys],
            args: [...head, 0, 0, ...tail],
          },
        }
      : undefined;
  const asScript = () => {
    const scriptKeys = [...baseKeys];
    const args: (string | number | Buffer)[] = [...head];
    if (writes === undefined) args.push(0, 0);
    else {
      const chunks = writes.chunks();
      for (const key of writes.keys) scriptKeys.push(key);
      args.push(writes.keys.length, chunks.length);
      for (const chunk of chunks) args.push(chunk);
    }
    for (const key of tailKeys) scriptKeys.push(key);
    for (const arg of tail) args.push(arg);
    return { scriptKeys, args };
  };

  let committed: { readonly mark: string | undefined } | undefined;
  return async () => {
    if (committed !== undefined) return committed.mark;
    let done = watched === undefined ? undefined : await connection?.commit(watched);
    if (done === undefined) {
      const { scriptKeys, args } = asScript();
      try {
        const [, mark] = (await runScript(redis, 'commitShard', scriptKeys, args as (string | number)[])) as [
          number,
          string | null,
        ];
        done = { mark: mark ?? undefined };
      } catch (error) {
        if (error instanceof ScriptRefusal && error.code === 'LEASE_LOST')
          throw new LeaseLostError(keys.stream);
        throw error;
      }
    }
    if (committed === undefined) {
      committed = done;
      options.onCommitted?.();
    }
    return committed.mark;
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
