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

/** A consumer `c1` of group `g` on its own blocking connection; closed after `use`. */
async function withConsumer(
  use: (consumer: StreamConsumer, blocking: Redis) => Promise<void>,
): Promise<void> {
  const blocking = new Redis(db.url);
  const consumer = new StreamConsumer(blocking, {
    shards: [shard],
    group: 'g',
    consumer: 'c1',
    count: 10,
    blockMs: 50,
  });
  try {
    await consumer.ensureGroups();
    await use(consumer, blocking);
  } finally {
    blocking.disconnect();
  }
}

describe('StreamConsumer', () => {
  it('reads its pending entries first, and again after a reconnection', async () => {
    await withConsumer(async (consumer, blocking) => {
      const first = await addEntry(1);
      expect((await consumer.read())[0]?.entries.map((e) => e.id)).toEqual([first]);
      await db.client.xack(shard.stream, 'g', first);

      // A read whose reply was lost: Redis delivered the entry to c1, c1 never saw it.
      const lost = await addEntry(2);
      await db.client.xreadgroup('GROUP', 'g', 'c1', 'COUNT', 10, 'STREAMS', shard.stream, '>');
      expect(await consumer.read()).toEqual([]); // new entries only: the lost one is not among them

      // After the connection comes back, the pending entry is read first.
      const ready = new Promise((resolve) => blocking.once('ready', resolve));
      blocking.disconnect(true);
      await ready;
      const again = await consumer.read();
      expect(again[0]?.entries.map((e) => e.id)).toEqual([lost]);
      expect(again[0]?.entries[0]).toMatchObject({ readings: [{ node_id: 'N2' }] });
    });
  });

  it('returns an entry it cannot decode as an error entry instead of failing the read', async () => {
    await withConsumer(async (consumer) => {
      const bad = (await db.client.xadd(shard.stream, '*', 'readings', '[{')) as string;
      const [batch] = await consumer.read();
      expect(batch?.entries).toEqual([{ id: bad, error: expect.stringMatching(/JSON/) }]);
    });
  });
});
