import { GROUPS, type Reading, shardKeys } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { DeadLetterGoneError, DeadLetters, lostSince, markCut, RedriveRefusedError } from '../src/index.ts';
// The script itself, as no caller outside the package can reach it.
import { runScript } from '../src/scripts.ts';

const db = useRedis({ flushEach: true });
const shard = shardKeys(0, 1);
const { aggregator, archiver } = GROUPS;
const consumers = { [aggregator]: 'aggregator-1', [archiver]: 'archiver-1' };
const repaired: Reading[] = [{ node_id: 'N1', timestamp: 1_700_000_000_000, flow_rate: 2.5 }];

/** A stream entry, and both groups created before it. */
async function arrange(fields: string[] = ['n', '1', 'src', 'gw', 'readings', '{broken']): Promise<string> {
  for (const group of [aggregator, archiver]) {
    await db.client.xgroup('CREATE', shard.stream, group, '0', 'MKSTREAM');
  }
  return (await db.client.xadd(shard.stream, '*', ...fields)) as string;
}

/** The group reads the entry; `outcome` says whether it acknowledged it, dead-lettered it, or left it pending. */
async function deliver(group: string, entry: string, outcome: 'ack' | 'dead' | 'pending'): Promise<string> {
  await db.client.xreadgroup('GROUP', group, `${group}-1`, 'STREAMS', shard.stream, '>');
  if (outcome === 'pending') return '';
  await db.client.xack(shard.stream, group, entry);
  if (outcome === 'ack') return '';
  const id = (await db.client.xadd(
    shard.deadLetters,
    '*',
    'stream',
    shard.stream,
    'id',
    entry,
    'group',
    group,
    'error',
    'Unexpected token b in JSON',
    'deliveries',
    '3',
  )) as string;
  return `0:${id}`;
}

describe('DeadLetters', () => {
  it('replaces the original without the backfill taking its deletion for trimming; real trimming still counts', async () => {
    const dead = new DeadLetters(db.client, { shards: 1 });
    const before = (await db.client.xadd(shard.stream, '*', 'n', '0')) as string;
    const entry = await arrange();
    const handle = await deliver(aggregator, entry, 'dead');
    await deliver(archiver, entry, 'dead');
    const mark = await markCut(db.client, shard, before);
    expect(mark).toMatchObject({ after: 1, removed: 0 });
    await dead.redrive(handle, { from: 'file', readings: repaired, consumers, claimIdleMs: 1000 });
    expect(await db.client.xrange(shard.stream, entry, entry)).toEqual([]);
    expect(await lostSince(db.client, shard, mark)).toBe(false);
    await db.client.xtrim(shard.stream, 'MAXLEN', 0);
    expect(await lostSince(db.client, shard, mark)).toBe(true);
  });

  it('redrives an entry both groups gave up on as one new entry, exactly once, resolving both dead letters', async () => {
    const dead = new DeadLetters(db.client, { shards: 1 });
    const entry = await arrange();
    const first = await deliver(aggregator, entry, 'dead');
    const second = await deliver(archiver, entry, 'dead');

    const plan = await dead.redrive(first, {
      from: 'file',
      readings: repaired,
      consumers,
      claimIdleMs: 1000,
      dryRun: true,
    });
    expect(plan).toMatchObject({ mode: 'append', groups: [aggregator, archiver], applied: [], dryRun: true });
    expect(plan.newEntry).toBeUndefined();
    expect(await db.client.xlen(shard.deadLetters)).toBe(2);

    const done = await dead.redrive(first, {
      from: 'file',
      readings: repaired,
      consumers,
      claimIdleMs: 1000,
      now: Date.UTC(2026, 0, 2),
    });
    expect(done).toMatchObject({
      mode: 'append',
      handle: first,
      stream: 'readings',
      entry,
      groups: [aggregator, archiver],
      applied: [],
      deadLetters: [first, second],
    });
    const rows = await db.client.xrange(shard.stream, '-', '+');
    // The new entry replaces the original (kept in the link).
    expect(rows).toEqual([
      [done.newEntry, ['n', '1', 'src', 'dlq-redrive', 'readings', JSON.stringify(repaired)]],
    ]);
    expect(await db.client.xlen(shard.deadLetters)).toBe(0);
    const link = JSON.parse((await db.client.hget(shard.deadLettersRedriven, second.slice(2))) as string);
    expect(link).toEqual({
      at: '2026-01-02T00:00:00.000Z',
      mode: 'append',
      entry,
      newEntry: done.newEntry,
      groups: 'aggregator,archiver',
      from: 'file',
      original: { n: '1', src: 'gw', readings: '{broken' },
    });

    // Again (a retry after a lost reply, or a second operator), by either handle: nothing changes.
    for (const handle of [first, second]) {
      const again = dead.redrive(handle, { from: 'file', readings: repaired, consumers, claimIdleMs: 1000 });
      await expect(again).rejects.toThrow(DeadLetterGoneError);
      await expect(again).rejects.toThrow(
        `dead letter ${handle}: already redriven or dropped (redriven 2026-01-02T00:00:00.000Z: new entry ${done.newEntry})`,
      );
    }
    expect(await db.client.xrange(shard.stream, '-', '+')).toEqual(rows);
  });

  it('appends once when two redrives of the same dead letter race', async () => {
    const dead = new DeadLetters(db.client, { shards: 1 });
    const entry = await arrange();
    const handle = await deliver(aggregator, entry, 'dead');
    await deliver(archiver, entry, 'ack');
    const options = { from: 'file' as const, readings: repaired, consumers, claimIdleMs: 1000 };
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => dead.redrive(handle, options)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes.filter((o) => o.status === 'rejected')) {
      expect((o as PromiseRejectedResult).reason).toBeInstanceOf(DeadLetterGoneError);
    }
    expect(await db.client.xlen(shard.stream)).toBe(1);
  });

  it('finds the entry’s other dead letters itself when they were written after the caller searched', async () => {
    const entry = await arrange();
    const first = await deliver(aggregator, entry, 'dead');
    const second = await deliver(archiver, entry, 'dead');
    // As DeadLetters sends it, but with no other dead letters found and nothing searched.
    const reply = await runScript(
      db.client,
      'redriveDeadLetter',
      [shard.deadLetters, shard.stream, shard.deadLettersRedriven, shard.streamRemoved],
      // id, run, searched up to, now, idle, from, readings, n, src; none found; idempotent groups; consumers
      [first.slice(2), 'run', '0-0', 'now', 1000, 'file', '[]', 0, 'dlq-redrive', 0, 1, archiver, 0],
    );
    expect(reply).toEqual([
      'append',
      expect.stringMatching(/^\d+-\d+$/),
      'aggregator,archiver',
      '',
      first.slice(2),
      second.slice(2),
    ]);
    expect(await db.client.xlen(shard.deadLetters)).toBe(0);
  });

  it('re-delivers the original to the archiver only when the aggregator applied it', async () => {
    const dead = new DeadLetters(db.client, { shards: 1 });
    const entry = await arrange([
      'n',
      '1',
      'src',
      'gw',
      'readings',
      '[{"node_id":"N1","timestamp":1,"flow_rate":"x"}]',
    ]);
    await deliver(aggregator, entry, 'ack');
    const handle = await deliver(archiver, entry, 'dead');

    const fromFile = dead.redrive(handle, { from: 'file', readings: repaired, consumers, claimIdleMs: 5000 });
    await expect(fromFile).rejects.toThrow(RedriveRefusedError);
    await expect(fromFile).rejects.toThrow(
      `dead letter ${handle}: group aggregator applied entry ${entry} already and counts every reading it is given, so repaired readings cannot go back as a new entry`,
    );
    expect(await db.client.xlen(shard.deadLetters)).toBe(1);

    const done = await dead.redrive(handle, { from: 'original', consumers, claimIdleMs: 5000 });
    expect(done).toMatchObject({
      mode: 'redeliver',
      groups: [archiver],
      applied: [aggregator],
      deadLetters: [handle],
    });
    expect(done.newEntry).toBeUndefined();
    expect(await db.client.xlen(shard.stream)).toBe(1);
    expect(await db.client.xlen(shard.deadLetters)).toBe(0);
    const pending = (await db.client.xpending(shard.stream, archiver, '-', '+', 10)) as [
      string,
      string,
      number,
      number,
    ][];
    expect(pending).toHaveLength(1);
    const [id, owner, idle, deliveries] = pending[0] as [string, string, number, number];
    expect([id, owner, deliveries]).toEqual([entry, 'archiver-1', 0]);
    expect(idle).toBeGreaterThanOrEqual(5000);
    expect(await db.client.xpending(shard.stream, aggregator, '-', '+', 10)).toEqual([]);

    await expect(dead.redrive(handle, { from: 'original', consumers, claimIdleMs: 5000 })).rejects.toThrow(
      /already redriven or dropped \(redriven \S+: entry \d+-\d+ re-delivered to archiver\)/,
    );
    expect((await db.client.xpending(shard.stream, archiver, '-', '+', 10)) as unknown[]).toHaveLength(1);
  });

  it('refuses while a group is not done with the entry, without content, and when the original is gone', async () => {
    const dead = new DeadLetters(db.client, { shards: 1 });
    const options = { from: 'original' as const, consumers, claimIdleMs: 1000 };
    const refused = async (handle: string, reason: string, message: RegExp, more = {}) => {
      const error = await dead.redrive(handle, { ...options, ...more }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedriveRefusedError);
      expect(error).toMatchObject({ reason, message: expect.stringMatching(message) });
    };

    let entry = await arrange();
    let handle = await deliver(aggregator, entry, 'dead');
    await deliver(archiver, entry, 'pending');
    await refused(handle, 'pending', /still pending in group archiver/);
    await db.client.flushdb();

    entry = await arrange();
    handle = await deliver(aggregator, entry, 'dead');
    await refused(handle, 'unread', /group archiver has not read entry/);
    await db.client.flushdb();

    entry = await arrange();
    handle = await deliver(aggregator, entry, 'dead');
    await deliver(archiver, entry, 'dead');
    await refused(handle, 'content', /a new entry is needed, and there are no valid readings/);
    await db.client.flushdb();

    entry = await arrange();
    await deliver(aggregator, entry, 'ack');
    handle = await deliver(archiver, entry, 'dead');
    await db.client.xdel(shard.stream, entry);
    await refused(handle, 'trimmed', /no longer in readings \(trimmed\)/);
    expect(await db.client.xlen(shard.deadLetters)).toBe(1);
  });

  it('lists page by page and by group, shows the original while it exists, and drops', async () => {
    const dead = new DeadLetters(db.client, { shards: 1 });
    const handles: string[] = [];
    const entries: string[] = [];
    for (let i = 0; i < 5; i++) {
      const entry =
        i === 0
          ? await arrange()
          : ((await db.client.xadd(shard.stream, '*', 'readings', `x${i}`)) as string);
      entries.push(entry);
      handles.push(await deliver(i % 2 === 0 ? aggregator : archiver, entry, 'dead'));
    }
    await db.client.xdel(shard.stream, entries[4] as string);

    const first = await dead.list(0, { limit: 2 });
    expect(first.letters.map((l) => l.handle)).toEqual(handles.slice(0, 2));
    expect(first.next).toBe(handles[1]?.slice(2));
    expect(first.letters[0]).toEqual({
      handle: handles[0],
      shard: 0,
      deadId: handles[0]?.slice(2),
      stream: 'readings',
      entry: entries[0],
      group: aggregator,
      error: 'Unexpected token b in JSON',
      deliveries: 3,
      original: ['n', '1', 'src', 'gw', 'readings', '{broken'],
    });
    const rest = await dead.list(0, { limit: 10, after: first.next as string });
    expect(rest.letters.map((l) => l.handle)).toEqual(handles.slice(2));
    expect(rest.next).toBeUndefined();
    expect(rest.letters[2]?.original).toBeNull();
    expect((await dead.list(0, { group: archiver })).letters.map((l) => l.handle)).toEqual([
      handles[1],
      handles[3],
    ]);
    expect(await dead.count(0)).toBe(5);

    expect((await dead.get(handles[2]?.slice(2) as string))?.entry).toBe(entries[2]);
    expect(await dead.get('0:1-1')).toBeUndefined();
    await expect(dead.get('nope')).rejects.toThrow(/not a dead letter: expected <shard>:<id>/);
    await expect(dead.get('3:1-1')).rejects.toThrow(RangeError);

    const dropped = await dead.drop([handles[0] as string, '0:1-1']);
    expect(dropped.dropped.map((l) => l.handle)).toEqual([handles[0]]);
    expect(dropped.missing).toEqual(['0:1-1']);
    expect((await dead.dropAll(0, { group: aggregator })).map((l) => l.handle)).toEqual([
      handles[2],
      handles[4],
    ]);
    expect((await dead.list(0)).letters.map((l) => l.handle)).toEqual([handles[1], handles[3]]);
    await expect(
      dead.redrive(handles[0] as string, { from: 'original', consumers, claimIdleMs: 1 }),
    ).rejects.toThrow(`dead letter ${handles[0]}: already redriven or dropped`);
  });

  it('names dead letters by shard; a bare id found in two shards is ambiguous', async () => {
    const dead = new DeadLetters(db.client, { shards: 2 });
    const fields = ['stream', 'x', 'id', '1-1', 'group', aggregator, 'error', 'e', 'deliveries', '1'];
    for (const s of [0, 1]) await db.client.xadd(shardKeys(s, 2).deadLetters, '5-0', ...fields);
    await expect(dead.get('5-0')).rejects.toThrow(
      'dead letter id 5-0 exists in shards 0, 1: name it as <shard>:5-0',
    );
    expect((await dead.get('1:5-0'))?.handle).toBe('1:5-0');
  });
});
