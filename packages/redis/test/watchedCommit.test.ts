import { shardKeys } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { aggregateCommitKeys } from '../src/aggregate/aggregateStore.ts';
import {
  CommitConnection,
  LeaseLostError,
  PackedHashWrites,
  prepareCommit,
  ShardLeases,
} from '../src/index.ts';
import { scriptSource } from '../src/scripts.ts';

const db = useRedis({ flushEach: true });
const shard = shardKeys(0, 1);
const keys = aggregateCommitKeys(shard);

let connection: CommitConnection | undefined;
afterEach(async () => {
  await connection?.close();
  connection = undefined;
});

/** A connection beside the test's client, once it is ready. */
async function commitConnection(client: Redis = db.client): Promise<CommitConnection> {
  connection = CommitConnection.beside(client, 'test-commits') as CommitConnection;
  for (let i = 0; i < 100 && !connection.ready; i++) await new Promise((r) => setTimeout(r, 10));
  return connection;
}

async function holdLease(client: Redis = db.client): Promise<string> {
  const token = await new ShardLeases(client, { token: 'replica-a', leaseMs: 60_000 }).acquire(shard);
  if (token === undefined) throw new Error('the lease is taken');
  return token;
}

/** Values of every byte and of several sizes. */
const value = (n: number, field: number) =>
  Uint8Array.from({ length: 1 + ((n * 37 + field * 101) % 5000) }, (_, i) => (i * 7 + n + field) % 256);

/** Writes to `nodes` hashes: two fields set, one deleted, every fifth hash with no fields. */
function writesTo(nodes: number, round = 0): PackedHashWrites {
  const writes = new PackedHashWrites(64);
  for (let n = 0; n < nodes; n++) {
    writes.hash(shard.aggregateNode(`N${n}`));
    if (n % 5 === 4) continue;
    writes.set('h', value(n + round, 0));
    writes.set(`t${n % 4}`, value(n + round, 1));
    writes.delete('gone');
  }
  return writes;
}

async function expectWritten(redis: Redis, nodes: number, round = 0): Promise<void> {
  for (let n = 0; n < nodes; n++) {
    const key = shard.aggregateNode(`N${n}`);
    const expected: Record<string, Buffer> = {};
    if (n % 5 !== 4) {
      expected.h = Buffer.from(value(n + round, 0));
      expected[`t${n % 4}`] = Buffer.from(value(n + round, 1));
    }
    expect(await redis.hgetallBuffer(key), key).toEqual(expected);
    if (n % 5 !== 4) expect(await redis.ttl(key), key).toBeGreaterThan(3500);
  }
}

const commitOf = (writes: PackedHashWrites, ackIds: string[] = []) => ({
  group: 'aggregator',
  writes,
  added: ['N0'],
  ackIds,
  deadLetters: [{ id: '1-0', error: 'bad entry ✗', deliveries: 3 }],
  failures: [{ id: '2-0', error: 'failed once' }],
  counters: { applied: 7 },
  events: ['{"node_id":"N0","état":"opened"}'],
});

/** Calls of a command since the last RESETSTAT (INFO commandstats). */
async function commandCalls(redis: Redis): Promise<(name: string) => number> {
  const stats = await redis.info('commandstats');
  return (name) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
}

/** Commits round `round` of the writes to `nodes` hashes, counting 1 applied. */
const commitRound = (client: Redis, nodes: number, round: number, token: string, through: CommitConnection) =>
  prepareCommit(
    client,
    keys,
    { ...commitOf(writesTo(nodes, round)), counters: { applied: 1 } },
    {
      token,
      ttlSeconds: 3600,
      connection: through,
    },
  )();

describe('a commit sent as a transaction', () => {
  it('writes every field byte for byte, deletes, renews the TTL and does all the script does', async () => {
    const redis = db.client;
    const token = await holdLease();
    for (let n = 0; n < 300; n += 15) await redis.hset(shard.aggregateNode(`N${n}`), { gone: 'x' });
    await redis.xgroup('CREATE', shard.stream, 'aggregator', '0', 'MKSTREAM');
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await redis.xadd(shard.stream, '*', 'n', '1')) as string);
    await redis.xreadgroup('GROUP', 'aggregator', 'c', 'STREAMS', shard.stream, '>');
    const run = prepareCommit(redis, keys, commitOf(writesTo(300), ids), {
      token,
      ttlSeconds: 3600,
      connection: await commitConnection(),
    });
    const mark = await run();

    await expectWritten(redis, 300);
    expect(mark).toBe(ids[2]);
    expect(await redis.get(shard.aggregateApplied)).toBe(ids[2]);
    expect(await redis.xpending(shard.stream, 'aggregator')).toEqual([0, null, null, null]);
    expect(await redis.hget(shard.aggregateStats, 'applied')).toBe('7');
    expect(await redis.smembers(shard.aggregateNodes)).toEqual(['N0']);
    const [dead] = (await redis.xrange(shard.deadLetters, '-', '+')) as [string, string[]][];
    expect(dead?.[1]).toEqual(expect.arrayContaining(['error', 'bad entry ✗']));
    expect(await redis.hget(shard.errors, '2-0')).toBe('failed once');
    const [event] = (await redis.xrange(shard.anomalies.outbox, '-', '+')) as [string, string[]][];
    expect(event?.[1]).toEqual(['event', '{"node_id":"N0","état":"opened"}']);
  });

  it('is applied once when run again after it took (a lost reply)', async () => {
    const redis = db.client;
    const token = await holdLease();
    const commits = await commitConnection();
    const writes = writesTo(10);
    const watched = {
      lease: keys.lease,
      commit: keys.commit,
      applied: shard.aggregateApplied,
      stream: keys.stream,
      token,
      commitId: 'commit-1',
      ttlSeconds: 3600,
      writes,
      script: {
        keys: [keys.lease, keys.commit, keys.stream, keys.nodes, keys.stats, keys.deadLetters, keys.errors],
        args: [token, 'commit-1', 3600, 'aggregator', 100, '0', 0, 0, 0, 0, 1, 'applied', 5, 0, 0, 0, 0],
      },
    };
    const commit = { ...watched, script: { ...watched.script, source: scriptSource('commitShard') } };
    expect(await commits.commit(commit)).toEqual({ mark: undefined });
    expect(await commits.commit(commit)).toEqual({ mark: undefined });
    expect(await redis.hget(shard.aggregateStats, 'applied')).toBe('5');
    await expectWritten(redis, 10);
  });

  it('refuses a replica whose lease another holds, writing nothing', async () => {
    const redis = db.client;
    await redis.set(shard.lease, 'replica-b/other', 'PX', 60_000);
    const run = prepareCommit(redis, keys, commitOf(writesTo(20)), {
      token: 'replica-a/gone',
      ttlSeconds: 3600,
      connection: await commitConnection(),
    });
    await expect(run()).rejects.toBeInstanceOf(LeaseLostError);
    expect(await redis.exists(shard.aggregateNode('N0'), shard.aggregateStats, shard.aggregateCommit)).toBe(
      0,
    );
  });

  it('writes nothing when another replica takes the lease while the transaction is on its way', async () => {
    const redis = db.client;
    const token = await holdLease();
    const commits = await commitConnection();
    // The moment the commit has checked the lease, another replica takes
    // it: the transaction (~15 MB) is still being sent.
    const monitor = await redis.monitor();
    const taker = new Redis(db.url);
    let taken: Promise<unknown> | undefined;
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (taken === undefined && args[0]?.toLowerCase() === 'mget')
        taken = taker.set(shard.lease, 'replica-b/other', 'PX', 60_000);
    });
    try {
      const run = prepareCommit(redis, keys, commitOf(writesTo(3000)), {
        token,
        ttlSeconds: 3600,
        connection: commits,
      });
      await expect(run()).rejects.toBeInstanceOf(LeaseLostError);
    } finally {
      await monitor.disconnect();
      await taken;
      taker.disconnect();
    }
    expect(await redis.get(shard.lease)).toBe('replica-b/other');
    expect(await redis.exists(shard.aggregateNode('N0'), shard.aggregateStats, shard.aggregateCommit)).toBe(
      0,
    );
  });

  it('applies every commit once while the lease is renewed all the time (WATCH fires, the commit is tried again)', async () => {
    const redis = db.client;
    const token = await holdLease();
    const commits = await commitConnection();
    const renewer = new Redis(db.url);
    let renewing = true;
    let renewals = 0;
    const renew = (async () => {
      while (renewing) {
        await renewer.set(shard.lease, token, 'PX', 60_000);
        renewals++;
      }
    })();
    await redis.config('RESETSTAT');
    try {
      for (let round = 0; round < 20; round++) {
        await commitRound(redis, 200, round, token, commits);
      }
    } finally {
      renewing = false;
      await renew;
      renewer.disconnect();
    }
    // Some transactions did not take and were sent again (or the commit went as the script).
    const calls = await commandCalls(redis);
    expect(calls('exec') + calls('evalsha') + calls('eval')).toBeGreaterThan(20);
    expect(renewals).toBeGreaterThan(100);
    await expectWritten(redis, 200, 19);
    expect(await redis.hget(shard.aggregateStats, 'applied')).toBe('20');
    expect(await redis.xlen(shard.anomalies.outbox)).toBe(20);
  });

  it('sends every transaction once when the renewals go between them on its connection, and renews all the while', async () => {
    const redis = db.client;
    const token = await holdLease();
    const commits = await commitConnection();
    const leases = new ShardLeases(commits.client, { token: 'replica-a', leaseMs: 60_000 });
    let renewing = true;
    let renewals = 0;
    const renew = (async () => {
      while (renewing) {
        expect(await commits.between(() => leases.renew(shard, token), 10_000)).toBe(true);
        renewals++;
      }
    })();
    await redis.config('RESETSTAT');
    try {
      for (let round = 0; round < 20; round++) await commitRound(redis, 300, round, token, commits);
    } finally {
      renewing = false;
      await renew;
    }
    // One transaction a commit: none aborted, so none sent again (nor, after three, as the script).
    expect((await commandCalls(redis))('exec')).toBe(20);
    expect(renewals).toBeGreaterThanOrEqual(20);
    await expectWritten(redis, 300, 19);
    expect(await redis.hget(shard.aggregateStats, 'applied')).toBe('20');
  });

  it('leaves to the caller what cannot run between transactions in time, and never runs it late', async () => {
    const redis = db.client;
    const token = await holdLease();
    const commits = await commitConnection();
    // Redis takes no write for 400 ms: the transaction sent now waits that long.
    const admin = new Redis(db.url);
    await admin.client('PAUSE', 400, 'WRITE');
    admin.disconnect();
    const committed = commitRound(redis, 50, 0, token, commits);
    await new Promise((r) => setTimeout(r, 20));
    let ran = false;
    const work = async () => {
      ran = true;
      return 'done';
    };
    expect(await commits.between(work, 50)).toBeUndefined();
    await committed;
    await commitRound(redis, 50, 1, token, commits);
    expect(ran).toBe(false);
    await expectWritten(redis, 50, 1);
    // Once nothing is ahead, it runs.
    expect(await commits.between(work, 50)).toBe('done');
  });

  it('works after Redis forgot its scripts (a restart), and says why when Redis refuses it', async () => {
    const redis = db.client;
    const token = await holdLease();
    const commits = await commitConnection();
    await redis.script('FLUSH');
    await prepareCommit(redis, keys, commitOf(writesTo(20)), {
      token,
      ttlSeconds: 3600,
      connection: commits,
    })();
    await expectWritten(redis, 20);

    // Writes refused (out of memory): the transaction does not take, the
    // script then says why, and nothing of the commit is applied.
    await redis.config('SET', 'maxmemory', '1');
    try {
      await expect(commitRound(redis, 20, 1, token, commits)).rejects.toThrow(/OOM/);
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
    await expectWritten(redis, 20);
    expect(await redis.hget(shard.aggregateStats, 'applied')).toBe('7');
  });

  it('gives way to the script when Redis will not turn replies off (an ACL without CLIENT), and commits stay exact', async () => {
    const redis = db.client;
    await redis.acl('SETUSER', 'noclient', 'on', '>secret', '~*', '&*', '+@all', '-client');
    const limited = new Redis(db.url, { username: 'noclient', password: 'secret' });
    try {
      const token = await holdLease(limited);
      const warnings: string[] = [];
      connection = CommitConnection.beside(limited, 'test-commits', {
        warn: (_fields, message) => warnings.push(message),
      }) as CommitConnection;
      for (let i = 0; i < 100 && !connection.ready; i++) await new Promise((r) => setTimeout(r, 10));
      for (let round = 0; round < 3; round++) {
        await commitRound(limited, 50, round, token, connection);
        await expectWritten(redis, 50, round);
      }
      expect(await redis.hget(shard.aggregateStats, 'applied')).toBe('3');
      expect(await redis.xlen(shard.anomalies.outbox)).toBe(3);
      expect(connection.ready).toBe(false);
      expect(warnings).toEqual([expect.stringMatching(/commits go as scripts/)]);
    } finally {
      limited.disconnect();
      await redis.acl('DELUSER', 'noclient');
    }
  });

  it('is not offered for a Cluster (its commits stay scripts)', () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    expect(CommitConnection.beside(cluster, 'test')).toBeUndefined();
    cluster.disconnect();
  });
});
