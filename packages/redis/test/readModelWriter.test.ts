import { LATEST_FIELDS, PackedHash, readModelKeys } from '@streamgauge/core';
import { RedisServer, useRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ReadModelWriter } from '../src/index.ts';

const db = useRedis({ flushEach: true });

describe('ReadModelWriter', () => {
  it("writes a node's keys with their TTL, and repairs keys an older writer left with another type", async () => {
    const redis = db.client;
    // The old system's mistakes: a hash key held as a string and as a list.
    await redis.set(readModelKeys.nodeLatest('A'), 'stale');
    await redis.rpush(readModelKeys.nodeMetrics('A', '1h'), 'x', 'y');
    await redis.hset(readModelKeys.nodeMetrics('B', '1h'), { old_field: '1' });
    const writer = new ReadModelWriter(redis, 3600);
    writer.writeNode({
      nodeId: 'A',
      latest: { timestamp: '2026-12-03T08:00:00.000Z', flow_rate: '1.5' },
      metrics: new Map([['1h', { reading_count: '2', avg_flow: '1.25' }]]),
      timeseries: '{"timestamps":[],"flow_rates":[],"pressures":[]}',
    });
    writer.writeNode({ nodeId: 'B', metrics: new Map([['1h', { reading_count: '1' }]]) });
    await writer.flush();

    expect(await redis.hgetall(readModelKeys.nodeLatest('A'))).toEqual({
      timestamp: '2026-12-03T08:00:00.000Z',
      flow_rate: '1.5',
    });
    expect(await redis.hgetall(readModelKeys.nodeMetrics('A', '1h'))).toEqual({
      reading_count: '2',
      avg_flow: '1.25',
    });
    expect(await redis.get(readModelKeys.nodeTimeseries7d('A'))).toContain('timestamps');
    // A hash is written field by field: fields it does not name are kept.
    expect(await redis.hgetall(readModelKeys.nodeMetrics('B', '1h'))).toEqual({
      old_field: '1',
      reading_count: '1',
    });
    for (const key of [
      readModelKeys.nodeLatest('A'),
      readModelKeys.nodeMetrics('A', '1h'),
      readModelKeys.nodeTimeseries7d('A'),
      readModelKeys.nodeMetrics('B', '1h'),
    ]) {
      const ttl = await redis.ttl(key);
      expect(ttl, key).toBeGreaterThan(3500);
    }
    expect(await redis.lrange(readModelKeys.nodesAll, 0, -1)).toEqual([]);
  });

  it('writes every hash exactly, whatever its values hold and however many field lists a call has', async () => {
    const redis = db.client;
    const writer = new ReadModelWriter(redis, 3600);
    const expected = new Map<string, Record<string, string> | string>();
    const metadata = (id: string, name: string) => ({ node_id: id, node_name: name, district_id: 'D1' });
    // Free text in metadata: the unit separator the script cuts values at,
    // commas, line feeds, JSON's specials, empty values, non-ASCII.
    const names = ['plain', 'a\x1fb', '\x1f', 'x,y\nz', '"{}[]\\', '', 'Zürich 💧', 'end\x1f'];
    for (const [n, name] of names.entries()) {
      const id = `N${n}`;
      const latest = { timestamp: `2026-12-05T00:00:0${n}.000Z`, flow_rate: `${n}.5` };
      writer.writeNode({ nodeId: id, latest, metadata: metadata(id, name), metrics: new Map() });
      expected.set(readModelKeys.nodeLatest(id), latest);
      expected.set(readModelKeys.nodeMetadata(id), metadata(id, name));
    }
    // More distinct field lists than one call can name (126), strings between them.
    for (let n = 0; n < 300; n++) {
      const id = `M${n}`;
      const hash = { [`field_${n}`]: String(n), shared: `v${n}` };
      const series = n % 50 === 0 ? `{"n":${n}}` : undefined;
      writer.writeNode({
        nodeId: id,
        metrics: new Map([['1h', hash]]),
        ...(series !== undefined && { timeseries: series }),
      });
      expected.set(readModelKeys.nodeMetrics(id, '1h'), hash);
      if (series !== undefined) expected.set(readModelKeys.nodeTimeseries7d(id), series);
      // Packed hashes between them: their lists shared with the records' by
      // content, and sent as JSON like a record once a call has no list left.
      if (n % 7 === 0) {
        const values = [`2026-12-05T00:00:00.${String(n).padStart(3, '0')}Z`, `${n}.25`, '0', '-1e-7', '12'];
        writer.writeNode({
          nodeId: `P${n}`,
          latest: new PackedHash(LATEST_FIELDS, values),
          metrics: new Map(),
        });
        expected.set(
          readModelKeys.nodeLatest(`P${n}`),
          Object.fromEntries(LATEST_FIELDS.map((field, i) => [field, values[i] as string])),
        );
        const own = [`packed_${n}`, 'shared'];
        writer.writeNode({
          nodeId: `P${n}`,
          metrics: new Map([['24h', new PackedHash(own, [`${n}`, `p${n}`])]]),
        });
        expected.set(readModelKeys.nodeMetrics(`P${n}`, '24h'), { [`packed_${n}`]: `${n}`, shared: `p${n}` });
      }
    }
    // Hashes without fields write nothing, and fail nothing else in the call.
    writer.writeNode({
      nodeId: 'E0',
      latest: {},
      metadata: new PackedHash([], []),
      metrics: new Map([['1h', {}]]),
    });
    // A packed latest and a record latest with the same fields, in one call.
    writer.writeNode({
      nodeId: 'N0',
      latest: new PackedHash(LATEST_FIELDS, ['t', '1', '2', '3', '4']),
      metrics: new Map(),
    });
    const record = { timestamp: 'u', flow_rate: '5', pressure: '6', temperature: '7', volume: '8' };
    writer.writeNode({ nodeId: 'N1', latest: record, metrics: new Map() });
    expected.set(readModelKeys.nodeLatest('N0'), {
      timestamp: 't',
      flow_rate: '1',
      pressure: '2',
      temperature: '3',
      volume: '4',
    });
    expected.set(readModelKeys.nodeLatest('N1'), record);
    await writer.flush();

    for (const key of [
      readModelKeys.nodeLatest('E0'),
      readModelKeys.nodeMetadata('E0'),
      readModelKeys.nodeMetrics('E0', '1h'),
    ]) {
      expect(await redis.exists(key), key).toBe(0);
    }
    for (const [key, value] of expected) {
      if (typeof value === 'string') expect(await redis.get(key), key).toBe(value);
      else expect(await redis.hgetall(key), key).toEqual(value);
      expect(await redis.ttl(key), key).toBeGreaterThan(3500);
    }
  });

  it('writes again once the server forgot its scripts (a restart, SCRIPT FLUSH)', async () => {
    const redis = db.client;
    const writer = new ReadModelWriter(redis, 3600);
    const latest = (n: number) =>
      new PackedHash(LATEST_FIELDS, [`2026-12-07T00:00:0${n}.000Z`, `${n}`, '0', '0', '0']);
    writer.writeNode({ nodeId: 'A', latest: latest(1), metrics: new Map() });
    await writer.flush();
    await redis.script('FLUSH');
    // Its calls go by sha on this connection now: refused, they go again whole.
    writer.writeNode({ nodeId: 'A', latest: latest(2), metrics: new Map() });
    writer.writeNode({ nodeId: 'B', latest: latest(3), metrics: new Map() });
    await writer.flush();
    expect(await redis.hget(readModelKeys.nodeLatest('A'), 'flow_rate')).toBe('2');
    expect(await redis.hget(readModelKeys.nodeLatest('B'), 'timestamp')).toBe('2026-12-07T00:00:03.000Z');
  });

  it('keeps what a failed flush held, byte for byte, while later writes are queued, and writes it once Redis is back', async () => {
    const server = await RedisServer.start();
    const redis = new Redis(server.url, { enableOfflineQueue: false, retryStrategy: () => 50 });
    const until = async (done: () => boolean) => {
      while (!done()) await new Promise((resolve) => setTimeout(resolve, 10));
    };
    try {
      await until(() => redis.status === 'ready');
      const writer = new ReadModelWriter(redis, 3600);
      const latest = (id: string, n: number) =>
        new PackedHash(LATEST_FIELDS, [
          `2026-12-07T00:00:00.${String(n).padStart(3, '0')}Z`,
          `${n}.5`,
          id,
          '0',
          '0',
        ]);
      for (let n = 0; n < 600; n++)
        writer.writeNode({ nodeId: `A${n}`, latest: latest('a', n), metrics: new Map() });
      await writer.flush();
      await server.kill();
      await until(() => redis.status !== 'ready');
      // The failed flush's calls (encoded in the memory of the one before,
      // done with) are put back; the next ones are encoded meanwhile, and
      // must not take that memory.
      for (let n = 0; n < 600; n++)
        writer.writeNode({ nodeId: `B${n}`, latest: latest('b', n), metrics: new Map() });
      await expect(writer.flush()).rejects.toThrow();
      for (let n = 0; n < 600; n++)
        writer.writeNode({ nodeId: `C${n}`, latest: latest('c', n), metrics: new Map() });
      await server.start();
      await until(() => redis.status === 'ready');
      await writer.flush();
      for (const id of ['b', 'c']) {
        for (let n = 0; n < 600; n++) {
          const values = await redis.hgetall(readModelKeys.nodeLatest(`${id.toUpperCase()}${n}`));
          expect(values).toEqual(
            Object.fromEntries(LATEST_FIELDS.map((f, i) => [f, latest(id, n).values[i]])),
          );
        }
      }
    } finally {
      redis.disconnect();
      await server.dispose();
    }
  });
});
