import { shardKeys } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ShardReader, StreamConsumer } from '../src/index.ts';

const db = useRedis({ flushEach: true });
const shard = shardKeys(0, 1);

async function addEntry(n: number): Promise<string> {
  const readings = JSON.stringify([{ node_id: `N${n}`, timestamp: 1.7e12 + n, flow_rate: n }]);
  return (await db.client.xadd(shard.stream, '*', 'n', '1', 'src', 't', 'readings', readings)) as string;
}

const consumers: StreamConsumer[] = [];
afterEach(() => {
  for (const consumer of consumers.splice(0)) consumer.close();
});

/** Consumer `c` of group `g`. */
function newConsumer(): StreamConsumer {
  const consumer = new StreamConsumer(db.client, () => new Redis(db.url), {
    group: 'g',
    consumer: 'c',
    count: 10,
    blockMs: 50,
  });
  consumers.push(consumer);
  return consumer;
}

/** A reader of group `g` that records each failure it retries. */
function newReader(): { reader: ShardReader; failures: { error: unknown; attempt: number }[] } {
  const consumer = newConsumer();
  const failures: { error: unknown; attempt: number }[] = [];
  const reader = new ShardReader(consumer, shard, {
    claimIdleMs: 60_000,
    onRetry: (error, attempt) => failures.push({ error, attempt }),
  });
  return { reader, failures };
}

const groups = async () =>
  ((await db.client.xinfo('GROUPS', shard.stream)) as unknown[][]).map((fields) => fields[1]);

describe('ShardReader.retry', () => {
  it('creates the group on its first pull, and again when Redis lost it, and goes on delivering', async () => {
    const { reader, failures } = newReader();
    const stop = new AbortController();
    const delivered: string[] = [];
    const pulling = (async () => {
      while (!stop.signal.aborted) {
        const { batch } = await reader.retry(() => reader.next(), stop.signal);
        delivered.push(...batch.entries.map((e) => e.id));
      }
    })().catch(() => {});
    try {
      const first = await addEntry(1);
      await vi.waitFor(() => expect(delivered).toContain(first), { timeout: 5_000 });
      expect(await groups()).toEqual(['g']);

      await db.client.xgroup('DESTROY', shard.stream, 'g');
      const second = await addEntry(2);
      await vi.waitFor(() => expect(delivered).toContain(second), { timeout: 5_000 });
      expect(await groups()).toEqual(['g']);
      expect(failures.map(({ error }) => (error as Error).message)).toContainEqual(
        expect.stringMatching(/^NOGROUP/),
      );
    } finally {
      stop.abort();
      await pulling;
    }
  });

  it('backs off 100 ms, then doubling, between attempts, and from 100 ms again after a success', async () => {
    const { reader, failures } = newReader();
    const failing = (times: number) => {
      let calls = 0;
      return async () => {
        if (calls++ < times) throw new Error(`failure ${calls}`);
        return calls;
      };
    };
    const signal = new AbortController().signal;
    const started = performance.now();
    expect(await reader.retry(failing(2), signal)).toBe(3);
    // Timers may fire a millisecond early.
    expect(performance.now() - started).toBeGreaterThanOrEqual(100 + 200 - 5);
    expect(await reader.retry(failing(1), signal)).toBe(2);
    expect(failures.map(({ error, attempt }) => [(error as Error).message, attempt])).toEqual([
      ['failure 1', 0],
      ['failure 2', 1],
      ['failure 1', 0],
    ]);
  });

  it('stops retrying once told to stop, even while it waits', async () => {
    const { reader, failures } = newReader();
    const stop = new AbortController();
    let calls = 0;
    const started = performance.now();
    const retried = reader.retry(async () => {
      calls++;
      if (calls === 3) setTimeout(() => stop.abort(), 50);
      throw new Error('Redis is down');
    }, stop.signal);
    await expect(retried).rejects.toMatchObject({ name: 'AbortError' });
    // Aborted 50 ms into the third wait: long before it would have ended.
    expect(performance.now() - started).toBeLessThan(100 + 200 + 400);
    expect(calls).toBe(3);
    expect(failures.map((f) => f.attempt)).toEqual([0, 1, 2]);
  });
});

describe('ShardReader: consumers long gone', () => {
  it('are removed after a scan of what is pending, unless they hold entries; the reader itself stays', async () => {
    await db.client.xgroup('CREATE', shard.stream, 'g', '0', 'MKSTREAM');
    // A replaced pod that had finished its work, and one whose entry is still pending.
    await addEntry(1);
    await db.client.xreadgroup('GROUP', 'g', 'gone', 'COUNT', 1, 'STREAMS', shard.stream, '>');
    await db.client.xack(
      shard.stream,
      'g',
      (await db.client.xrange(shard.stream, '-', '+'))[0]?.[0] as string,
    );
    const held = await addEntry(2);
    await db.client.xreadgroup('GROUP', 'g', 'holder', 'COUNT', 1, 'STREAMS', shard.stream, '>');
    await new Promise((resolve) => setTimeout(resolve, 100));

    const consumer = newConsumer();
    // Nothing is claimed until it has been idle a minute, so `holder` keeps its entry.
    expect((await consumer.claim(shard, 60_000)).batch.entries).toEqual([]);
    expect(await consumer.forgetIdle(shard, 50)).toEqual(['gone']);
    const names = async () =>
      ((await db.client.xinfo('CONSUMERS', shard.stream, 'g')) as unknown[][]).map((c) => c[1]).sort();
    expect(await names()).toEqual(['holder']);

    // The reader's first scan claims everything pending, then forgets the empty-handed.
    const forgotten: string[] = [];
    const reader = new ShardReader(consumer, shard, {
      claimIdleMs: 60_000,
      forgetIdleMs: 50,
      onRetry: () => {},
      onForgotten: (gone) => forgotten.push(...gone),
    });
    const pull = await reader.next();
    expect(pull.batch.entries.map((e) => e.id)).toEqual([held]);
    expect(forgotten).toEqual(['holder']);
    expect(await names()).toEqual(['c']);
    // Its entry was claimed, not dropped: it is pending on the reader until acknowledged.
    const pending = (await db.client.xpending(shard.stream, 'g')) as [
      number,
      string,
      string,
      [string, string][],
    ];
    expect(pending[0]).toBe(1);
    expect(pending[3]).toEqual([['c', '1']]);
  });
});

describe('ShardReader.next', () => {
  it('calls a read that found nothing quiet, and an empty page of a scan of pending entries not', async () => {
    const { reader } = newReader();
    // The scan of pending entries that follows the start: nothing pending, under whatever load.
    const scan = await reader.next();
    expect(scan.batch.entries).toEqual([]);
    expect(scan).toMatchObject({ settled: true, quiet: false });
    // A read that waited and found nothing new: the stream is quiet.
    const read = await reader.next();
    expect(read.batch.entries).toEqual([]);
    expect(read.quiet).toBe(true);
    // After a reconnection the scan comes first again, and is not quiet either.
    reader.reconnected();
    expect(await reader.next()).toMatchObject({ quiet: false });
    await addEntry(1);
    const next = await reader.next();
    expect(next.batch.entries).toHaveLength(1);
    expect(next.quiet).toBe(false);
  });

  it('leaves out of a scan the entries the caller holds (read, not yet acknowledged), and only those', async () => {
    const { reader } = newReader();
    await reader.next(); // the scan that follows the start
    const held = await addEntry(1);
    const lost = await addEntry(2);
    expect((await reader.next()).batch.entries.map((e) => e.id)).toEqual([held, lost]);
    // The next pull scans everything pending (minimum idle 0): the entry the
    // caller still holds is left to it, the other (its reply lost, say) comes again.
    reader.reconnected();
    const scan = await reader.next({ holding: new Set([held]) });
    expect(scan.scanned).toBe(true);
    expect(scan.batch.entries.map((e) => [e.id, e.deliveries])).toEqual([[lost, 2]]);
    // Once acknowledged by the caller, it is no longer pending: the next scan finds nothing.
    await db.client.xack(shard.stream, 'g', held, lost);
    reader.reconnected();
    expect((await reader.next()).batch.entries).toEqual([]);
  });
});
