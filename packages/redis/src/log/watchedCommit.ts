import type { Socket } from 'node:net';
import { GrowingArena } from '@streamgauge/core';
import { Command, type Redis } from 'ioredis';
import type { ConnectionLogger, RedisClient } from '../connection.ts';
import { LeaseLostError } from '../errors/LeaseLostError.ts';
import type { ScriptSource } from '../framedScriptCall.ts';
import { RespWriter } from '../respWriter.ts';
import type { PackedHashWrites } from './packedHashWrites.ts';
import { SpareArenas } from './spareArenas.ts';

/** Transactions tried before the caller is told to run the commit as a script. */
const ATTEMPTS = 3;

/** A commit as the transaction takes it (see CommitConnection.commit). */
export interface WatchedCommit {
  readonly lease: string;
  /** The key holding the id of the last commit applied. */
  readonly commit: string;
  /** The applied mark's key (what the commit's script moves). */
  readonly applied: string;
  readonly stream: string;
  readonly token: string;
  readonly commitId: string;
  readonly ttlSeconds: number;
  readonly writes: PackedHashWrites;
  /** commitShard, with none of the writes (they go as commands). */
  readonly script: {
    readonly source: ScriptSource;
    readonly keys: readonly string[];
    readonly args: readonly (string | number)[];
  };
}

/**
 * A connection of its own for the aggregator's commits, each sent as one
 * transaction: the state's hashes written with HSET, HDEL and EXPIRE, and
 * commitShard (acknowledgements, counters, dead letters, the applied mark)
 * with none of them, between MULTI and EXEC.
 *
 * Why: as one script, Redis copied every value it wrote four times (into
 * the script's arguments, out of the packed bytes, into the command, into
 * the hash), with Lua's allocator and collector in between: a commit of
 * 10,000 nodes (41 MB) took 448 ms of Redis' CPU that way against 196 ms
 * as commands (test/bench/commitWays.ts), and Redis does nothing else
 * while a script runs (docs/benchmarks.md, "A commit as commands").
 *
 * What the script checked first, the transaction checks by WATCH: the
 * lease and the last commit id are read after WATCH, and EXEC does nothing
 * if either changed since (a renewal, a new holder, an expiry). So only the
 * lease holder writes, and a commit whose reply was lost is not applied
 * twice. Replies are off for the transaction (CLIENT REPLY OFF … ON): a
 * commit is tens of thousands of commands, and a reply each was as many
 * commands for the client to track. Whether it took is read after it (the
 * commit id is there or not); one that did not take (the lease renewed
 * meanwhile, or a command refused) is tried again, and after ATTEMPTS the
 * caller runs the commit as the script, whose error then says why. A
 * reply where none was due (replies refused by an ACL) ends the
 * connection's use: from then on commits go as scripts.
 *
 * Standalone Redis only (a Cluster's commits stay scripts). Its commands
 * are never queued while it is down nor sent again after a reconnect: the
 * WATCH would not hold on the new connection. Commits on it go one at a time.
 */
export class CommitConnection {
  readonly #redis: Redis;
  #turn: Promise<unknown> = Promise.resolve();
  readonly #spares = new SpareArenas(1);
  readonly #logger: ConnectionLogger | undefined;
  /** Set once a transaction's reply was not the one due: commits then go as scripts. */
  #unusable = false;

  private constructor(redis: Redis, logger: ConnectionLogger | undefined) {
    this.#redis = redis;
    this.#logger = logger;
    // The shared connection reports the same outages; a commit tried while
    // this one is down goes as a script on the shared one.
    redis.on('error', () => {});
  }

  /** A connection beside `client` (undefined for a Cluster); `logger` hears when it stops being used. */
  static beside(client: RedisClient, name: string, logger?: ConnectionLogger): CommitConnection | undefined {
    if (client.isCluster) return undefined;
    return new CommitConnection(
      (client as Redis).duplicate({
        connectionName: name,
        enableAutoPipelining: false,
        enableOfflineQueue: false,
        autoResendUnfulfilledCommands: false,
        maxRetriesPerRequest: 0,
      }),
      logger,
    );
  }

  /**
   * Runs the commit: resolves to the applied mark after it when it was
   * applied (now, or by an earlier attempt whose reply was lost), or to
   * undefined when it did not take (the caller runs it as a script). Throws
   * LeaseLostError when another acquisition holds the lease.
   */
  commit(commit: WatchedCommit): Promise<{ readonly mark: string | undefined } | undefined> {
    const run = this.#turn.then(() => this.#commit(commit));
    this.#turn = run.catch(() => {});
    return run;
  }

  /**
   * Runs `work` between two transactions on this connection (`work` sends
   * its commands on `client`): after the transactions queued before it,
   * and the next one after it. For a lease's renewal: it changes the key
   * every transaction WATCHes, so one landing while a transaction is on its
   * way aborts it, and the commit goes again in full. In a catch-up
   * (commits of 30–50 MB, 0.2–2.7 s an attempt while the appends keep
   * Redis busy) that was 6 attempts in 350, each adding up to 1.8 s to its
   * commit and to the freshness of the live readings behind it
   * (docs/benchmarks.md, "The catch-up's live tail"). One connection orders
   * the two without waiting for a reply. Undefined when it could not run
   * here within `maxWaitMs` (the connection down or not used, or the
   * transactions ahead outlast the wait): the caller runs it elsewhere.
   */
  async between<T>(work: () => Promise<T>, maxWaitMs: number): Promise<T | undefined> {
    if (!this.ready) return undefined;
    let late = false;
    const run = this.#turn.then(() => (late || !this.ready ? undefined : work()));
    this.#turn = run.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        late = true;
        resolve(undefined);
      }, maxWaitMs);
    });
    try {
      return await Promise.race([run, waited]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The connection's client, for what `between` runs on it. */
  get client(): Redis {
    return this.#redis;
  }

  /** Whether the connection is up and used (a commit tried while it is not goes as a script). */
  get ready(): boolean {
    return this.#redis.status === 'ready' && !this.#unusable;
  }

  async close(): Promise<void> {
    await this.#turn;
    this.#redis.disconnect();
  }

  async #commit(commit: WatchedCommit): Promise<{ readonly mark: string | undefined } | undefined> {
    const redis = this.#redis;
    if (redis.status !== 'ready' || this.#unusable) return undefined;
    // The framing only: values of VIEW_BYTES and more are sent from the writes' own memory.
    const arena = this.#spares.take() ?? new GrowingArena(256 * 1024);
    arena.reset(256 * 1024);
    const out = new RespWriter(arena);
    encodeTransaction(commit, out);
    const parts = out.parts();
    try {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const [, seen] = await Promise.all([
          redis.watch(commit.lease, commit.commit),
          redis.mget(commit.lease, commit.commit, commit.applied),
        ]);
        const [owner, last, mark] = seen;
        if (owner !== commit.token) {
          await redis.unwatch().catch(() => {});
          throw new LeaseLostError(commit.stream);
        }
        if (last === commit.commitId) {
          await redis.unwatch();
          return { mark: mark ?? undefined };
        }
        const reply = await (redis as unknown as { sendCommand(command: Command): Promise<unknown> })
          .sendCommand(new TransactionCommand(parts))
          .catch((error: unknown) => {
            if (error instanceof Error && error.name === 'ReplyError') return error;
            throw error;
          });
        if (reply !== 'OK') {
          // A reply where none was due (CLIENT REPLY refused, by an ACL say):
          // later commands would take the transaction's replies for their
          // own, a lease read among them. The connection is closed, with what
          // is still on its way, and commits go as scripts from here on.
          this.#unusable = true;
          redis.disconnect();
          this.#logger?.warn(
            { err: reply },
            'commits go as scripts: the commit connection could not send a transaction with its replies off',
          );
          return undefined;
        }
        const [after, markAfter] = await redis.mget(commit.commit, commit.applied);
        if (after === commit.commitId) return { mark: markAfter ?? undefined };
      }
      return undefined;
    } finally {
      // The bytes are sent: the reply after them came.
      this.#spares.give(arena);
    }
  }
}

/**
 * The transaction's bytes, with its replies off: per hash, HSET of the
 * fields set, HDEL of those deleted and EXPIRE (the TTL renewed whenever
 * the hash is written), then the script, then EXEC.
 */
function encodeTransaction(commit: WatchedCommit, out: RespWriter): void {
  out.array(3);
  out.ascii('CLIENT');
  out.ascii('REPLY');
  out.ascii('OFF');
  out.array(1);
  out.ascii('MULTI');
  const ttl = String(commit.ttlSeconds);
  commit.writes.forEachHash((key, fields, bytes) => {
    if (fields.length === 0) return;
    // Per field: name start and end, value start and end.
    let sets = 0;
    for (let f = 0; f < fields.length; f += 4)
      if ((fields[f + 3] as number) > (fields[f + 2] as number)) sets++;
    const deletes = fields.length / 4 - sets;
    if (sets > 0) {
      out.array(2 + 2 * sets);
      out.ascii('HSET');
      out.text(key);
      for (let f = 0; f < fields.length; f += 4) {
        const start = fields[f + 2] as number;
        const end = fields[f + 3] as number;
        if (end === start) continue;
        out.bytes(bytes, fields[f] as number, fields[f + 1] as number);
        out.bytes(bytes, start, end);
      }
    }
    if (deletes > 0) {
      out.array(2 + deletes);
      out.ascii('HDEL');
      out.text(key);
      for (let f = 0; f < fields.length; f += 4)
        if (fields[f + 3] === fields[f + 2]) out.bytes(bytes, fields[f] as number, fields[f + 1] as number);
    }
    out.array(3);
    out.ascii('EXPIRE');
    out.text(key);
    out.ascii(ttl);
  });
  const { source, keys, args } = commit.script;
  // EVAL, not EVALSHA: a script Redis does not know (a restart emptied its
  // cache) would fail inside EXEC after the writes had run.
  out.array(3 + keys.length + args.length);
  out.ascii('EVAL');
  out.text(source.lua);
  out.ascii(String(keys.length));
  for (const key of keys) out.text(key);
  for (const arg of args) out.text(String(arg));
  out.array(1);
  out.ascii('EXEC');
}

/** The transaction's bytes, written as they are, then CLIENT REPLY ON: its one reply. */
class TransactionCommand extends Command {
  readonly #parts: readonly Uint8Array[];

  constructor(parts: readonly Uint8Array[]) {
    super('client', ['reply', 'on'], { replyEncoding: 'utf8' });
    this.#parts = parts;
  }

  override toWritable(socket: Socket): string {
    socket.cork();
    for (const part of this.#parts) socket.write(part);
    // The caller writes what is returned, still corked: one writev for all.
    process.nextTick(() => socket.uncork());
    return '*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$2\r\nON\r\n';
  }
}
