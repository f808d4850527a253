import { shardKeys } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { StreamConsumer } from '../src/index.ts';

const db = useRedis({ flushEach: true });
const shard = shardKeys(0, 1);

async function addEntry(n: number): Promise<string> {
  const readings = JSON.stringify([{ node_id: `N${n}`, timestamp: 1.7e12 + n, flow_rate: n }]);
  return (await db.client.xadd(shard.stream, '*', 'n', '1', 'src', 't', 'readings', readings)) as string;
}

/** A consumer of group `g`, its blocking reads on their own connection; closed after `use`. */
async function withConsumer(name: string, use: (consumer: StreamConsumer) => Promise<void>): Promise<void> {
  const consumer = new StreamConsumer(db.client, () => new Redis(db.url), {
    group: 'g',
    consumer: name,
    count: 10,
    blockMs: 50,
  });
  try {
    await consumer.ensureGroup(shard);
    await use(consumer);
  } finally {
    consumer.close();
  }
}

const ids = (entries: readonly { id: string }[]) => entries.map((e) => e.id);

describe('StreamConsumer', () => {
  it('reads new entries of a shard, once each, delivered once', async () => {
    await withConsumer('c1', async (consumer) => {
      const first = await addEntry(1);
      const batch = await consumer.read(shard);
      expect(batch.entries).toEqual([
        { id: first, deliveries: 1, source: 't', readings: [expect.objectContaining({ node_id: 'N1' })] },
      ]);
      expect((await consumer.read(shard)).entries).toEqual([]);
    });
  });

  it("claims a dead consumer's entries once they are idle long enough, with their delivery counts", async () => {
    const lost = await addEntry(2);
    await withConsumer('dead', async (consumer) => {
      expect(ids((await consumer.read(shard)).entries)).toEqual([lost]);
    });
    await withConsumer('live', async (consumer) => {
      // Not idle long enough yet.
      expect((await consumer.claim(shard, 60_000)).batch.entries).toEqual([]);
      await new Promise((r) => setTimeout(r, 60));
      const { batch, next } = await consumer.claim(shard, 50);
      expect(next).toBe('0-0');
      expect(batch.entries).toEqual([
        { id: lost, deliveries: 2, source: 't', readings: [expect.objectContaining({ node_id: 'N2' })] },
      ]);
      const pending = (await db.client.xpending(shard.stream, 'g', '-', '+', 10)) as [string, string][];
      expect(pending.map(([id, owner]) => [id, owner])).toEqual([[lost, 'live']]);
    });
  });

  it('pages through a long pending list with a cursor', async () => {
    await db.client.xgroup('CREATE', shard.stream, 'g', '0', 'MKSTREAM');
    const added: string[] = [];
    for (let i = 0; i < 25; i++) added.push(await addEntry(i));
    await db.client.xreadgroup('GROUP', 'g', 'dead', 'COUNT', 100, 'STREAMS', shard.stream, '>');
    await withConsumer('live', async (consumer) => {
      const claimed: string[] = [];
      let cursor = '0-0';
      do {
        const page = await consumer.claim(shard, 0, cursor);
        expect(page.batch.entries.length).toBeLessThanOrEqual(10);
        claimed.push(...ids(page.batch.entries));
        cursor = page.next;
      } while (cursor !== '0-0');
      expect(claimed).toEqual(added);
    });
  });

  it('returns an entry it cannot decode as an error entry instead of failing the read', async () => {
    await withConsumer('c1', async (consumer) => {
      const bad = (await db.client.xadd(shard.stream, '*', 'readings', '[{')) as string;
      const batch = await consumer.read(shard);
      expect(batch.entries).toEqual([{ id: bad, deliveries: 1, error: expect.stringMatching(/JSON/) }]);
    });
  });

  it('reports a pending entry trimmed from the stream as one that can never be processed', async () => {
    await withConsumer('dead', async (consumer) => {
      await addEntry(3);
      await consumer.read(shard);
    });
    await db.client.xtrim(shard.stream, 'MAXLEN', 0);
    await withConsumer('live', async (consumer) => {
      const { batch } = await consumer.claim(shard, 0);
      expect(batch.entries).toEqual([
        {
          id: expect.any(String),
          deliveries: Number.POSITIVE_INFINITY,
          error: expect.stringMatching(/trimmed/),
        },
      ]);
    });
  });
});
