import { shardKeys } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { aggregateCommitKeys } from '../src/aggregate/aggregateStore.ts';
import { prepareCommit } from '../src/index.ts';
import { PackedHashWrites } from '../src/log/packedHashWrites.ts';

const db = useRedis({ flushEach: true });

const shard = shardKeys(0, 1);

describe('a commit of packed hash writes', () => {
  it.each([
    ['one argument', 64 * 1024 * 1024],
    ['arguments of ~5 KB', 5_000],
    ['the default arguments', undefined],
  ])(
    'sets and deletes every field of every hash, binary values byte for byte, each hash written with the TTL (%s)',
    async (_, chunkBytes) => {
      const redis = db.client;
      const nodes = 300;
      // Values of every byte and of several sizes, past the writer's first buffer many times over.
      const value = (n: number, field: number) =>
        Uint8Array.from({ length: 1 + ((n * 37 + field * 101) % 3000) }, (_, i) => (i * 7 + n + field) % 256);
      for (let n = 0; n < nodes; n += 3)
        await redis.hset(shard.aggregateNode(`N${n}`), { gone: 'x', kept: 'y' });

      const writes = new PackedHashWrites(64, { chunkBytes });
      for (let n = 0; n < nodes; n++) {
        writes.hash(shard.aggregateNode(`N${n}`));
        if (n % 5 === 4) continue; // a hash with no fields: left as it is
        writes.set('h', value(n, 0));
        writes.set(`t${n % 4}`, value(n, 1));
        writes.delete('gone');
        writes.set('r0', new Uint8Array(0)); // an empty value deletes, too
      }
      await prepareCommit(
        redis,
        aggregateCommitKeys(shard),
        {
          group: 'g',
          writes,
          ackIds: [],
          deadLetters: [],
          failures: [],
          // Read after the packed arguments: the script took every one of them.
          counters: { applied: 7 },
        },
        { token: '', ttlSeconds: 3600 },
      )();
      if (chunkBytes === 64 * 1024 * 1024) expect(writes.chunks()).toHaveLength(1);
      else expect(writes.chunks().length).toBeGreaterThan(chunkBytes === undefined ? 10 : 100);
      expect(await redis.hget(shard.aggregateStats, 'applied')).toBe('7');

      for (let n = 0; n < nodes; n++) {
        const key = shard.aggregateNode(`N${n}`);
        const hash = await redis.hgetallBuffer(key);
        const expected: Record<string, Buffer> = {};
        if (n % 3 === 0) expected.kept = Buffer.from('y');
        if (n % 3 === 0 && n % 5 === 4) expected.gone = Buffer.from('x');
        if (n % 5 !== 4) {
          expected.h = Buffer.from(value(n, 0));
          expected[`t${n % 4}`] = Buffer.from(value(n, 1));
        }
        expect(hash, key).toEqual(expected);
        const ttl = await redis.ttl(key);
        if (n % 5 !== 4) expect(ttl, key).toBeGreaterThan(3500);
        else expect(ttl, key).toBe(n % 3 === 0 ? -1 : -2);
      }
    },
  );

  it("renews a hash's TTL when it gains or loses a field, not when its fields are only rewritten", async () => {
    const redis = db.client;
    const key = (name: string) => shard.aggregateNode(name);
    const commit = async (write: (writes: PackedHashWrites) => void) => {
      const writes = new PackedHashWrites();
      write(writes);
      const run = prepareCommit(
        redis,
        aggregateCommitKeys(shard),
        { group: 'g', writes, ackIds: [], deadLetters: [], failures: [], counters: {} },
        { token: '', ttlSeconds: 3600 },
      );
      await run();
    };
    const bytes = (n: number) => new Uint8Array([n]);
    await commit((w) => {
      for (const name of ['same', 'gains', 'loses']) {
        w.hash(key(name));
        w.set('h', bytes(1));
        w.set('t0', bytes(1));
      }
    });
    for (const name of ['same', 'gains', 'loses']) {
      expect(await redis.ttl(key(name)), name).toBeGreaterThan(3500);
      await redis.expire(key(name), 100);
    }
    await commit((w) => {
      w.hash(key('same'));
      w.set('h', bytes(2));
      w.set('t0', bytes(2));
      w.hash(key('gains'));
      w.set('h', bytes(2));
      w.set('t1', bytes(2));
      w.hash(key('loses'));
      w.set('h', bytes(2));
      w.delete('t0');
    });
    expect(await redis.hgetallBuffer(key('same'))).toEqual({ h: Buffer.from([2]), t0: Buffer.from([2]) });
    expect(await redis.ttl(key('same'))).toBeLessThanOrEqual(100);
    expect(await redis.ttl(key('gains'))).toBeGreaterThan(3500);
    expect(await redis.ttl(key('loses'))).toBeGreaterThan(3500);
    expect(await redis.hgetallBuffer(key('loses'))).toEqual({ h: Buffer.from([2]) });
  });

  it('refuses a field before any hash', () => {
    expect(() => new PackedHashWrites().set('h', new Uint8Array(1))).toThrow(/before any hash/);
  });
});
