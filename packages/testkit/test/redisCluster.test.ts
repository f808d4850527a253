import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCluster, redisServerOnPath } from '../src/index.ts';

describe.skipIf(!redisServerOnPath())('RedisCluster', () => {
  let cluster: RedisCluster;
  let client: Cluster;

  beforeAll(async () => {
    cluster = await RedisCluster.start({ masters: 3 });
    client = new Cluster(cluster.nodes);
  });

  afterAll(async () => {
    client?.disconnect();
    await cluster?.dispose();
  });

  /** Keys per master, asked of each master itself (DBSIZE is per node). */
  async function keysPerMaster(): Promise<number[]> {
    return Promise.all(
      cluster.nodes.map(async ({ host, port }) => {
        const node = new Redis(port, host);
        try {
          return await node.dbsize();
        } finally {
          node.disconnect();
        }
      }),
    );
  }

  it('names its nodes in the REDIS_CLUSTER_NODES format', () => {
    expect(cluster.nodesEnv).toBe(cluster.servers.map((server) => `127.0.0.1:${server.port}`).join(','));
    expect(cluster.nodesEnv.split(',')).toHaveLength(3);
  });

  it('spreads keys over the three masters, and flush() empties them all', async () => {
    await Promise.all(Array.from({ length: 100 }, (_, i) => client.set(`reading:${i}`, String(i))));
    const sizes = await keysPerMaster();
    expect(sizes).toHaveLength(3);
    for (const size of sizes) expect(size).toBeGreaterThan(0);
    expect(sizes.reduce((a, b) => a + b)).toBe(100);

    await cluster.flush();
    expect(await keysPerMaster()).toEqual([0, 0, 0]);
  });

  it('refuses a multi-key command across slots, and allows it within a hash tag', async () => {
    expect(await client.cluster('KEYSLOT', 'a')).not.toBe(await client.cluster('KEYSLOT', 'b'));
    await expect(client.mset('a', '1', 'b', '2')).rejects.toThrow(/CROSSSLOT/);
    await client.mset('{node:1}:a', '1', '{node:1}:b', '2');
    expect(await client.mget('{node:1}:a', '{node:1}:b')).toEqual(['1', '2']);
  });
});
