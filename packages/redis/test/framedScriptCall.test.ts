import { createHash, randomBytes } from 'node:crypto';
import { RedisCluster, redisServerOnPath, useRedis } from '@streamgauge/testkit';
import { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { FRAMED_BYTES, runFramed } from '../src/framedScriptCall.ts';

const db = useRedis({ flushEach: true });

/** Stores ARGV[2] (bytes) at KEYS[1] and replies with ARGV[1] and the length stored. */
const lua = `redis.call('SET', KEYS[1], ARGV[2]); return {ARGV[1], string.len(ARGV[2])}`;
const store = { lua, sha: createHash('sha1').update(lua).digest('hex') };

describe('a script call framed around its Buffers', () => {
  it('delivers every byte, among commands pipelined before and after it in the same tick', async () => {
    const client = db.client;
    await client.script('LOAD', lua);
    // Bytes that look like the protocol's framing inside the value.
    const value = Buffer.concat([Buffer.from('\r\n$3\r\nfoo\r\n*1\r\n'), randomBytes(3 * FRAMED_BYTES)]);
    const before = client.set('before', 'één'); // auto-pipelined, multibyte
    const framed = runFramed(client, store, ['blob'], ['naïve ✓', value]);
    const after = client.get('before');
    const echo = client.echo('after');
    expect(await before).toBe('OK');
    expect(await framed).toEqual(['naïve ✓', value.length]);
    expect(await after).toBe('één');
    expect(await echo).toBe('after');
    expect((await client.getBuffer('blob'))?.equals(value)).toBe(true);
  });

  it('runs a script the server does not know (after SCRIPT FLUSH: a restarted Redis)', async () => {
    const client = db.client;
    await client.script('LOAD', lua);
    await client.script('FLUSH');
    const value = randomBytes(FRAMED_BYTES);
    expect(await runFramed(client, store, ['blob'], ['again', value])).toEqual(['again', value.length]);
    expect((await client.getBuffer('blob'))?.equals(value)).toBe(true);
  });

  it.skipIf(!redisServerOnPath())("goes to the master of its keys' slot on a cluster", async () => {
    const cluster = await RedisCluster.start({ masters: 3 });
    const client = new Cluster(cluster.nodes);
    try {
      const value = randomBytes(FRAMED_BYTES);
      const keys = ['{a}:blob', '{b}:blob', '{c}:blob'];
      const replies = await Promise.all(keys.map((key) => runFramed(client, store, [key], [key, value])));
      expect(replies).toEqual(keys.map((key) => [key, value.length]));
      for (const key of keys) expect((await client.getBuffer(key))?.equals(value)).toBe(true);
    } finally {
      client.disconnect();
      await cluster.dispose();
    }
  });

  it("rejects with the script's own error", async () => {
    const failing = { lua: `return redis.error_reply('REFUSED ' .. ARGV[1])`, sha: '' };
    failing.sha = (await db.client.script('LOAD', failing.lua)) as string;
    await expect(runFramed(db.client, failing, [], ['because', randomBytes(16)])).rejects.toThrow(
      'REFUSED because',
    );
  });
});
