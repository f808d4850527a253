import { useRedis } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { scriptNamesBySha } from '../src/index.ts';
import { runScript, SCRIPT_NAMES } from '../src/scripts.ts';

const db = useRedis({ flushEach: true });

describe('scriptNamesBySha', () => {
  it('names every script by the SHA1 its calls go by, as Redis knows it once called', async () => {
    const redis = db.client;
    // A call loads the script on the server (EVALSHA, then EVAL on NOSCRIPT).
    await runScript(redis, 'addNodes', ['{n}:list', '{n}:members'], [60, 'N1']);
    const names = scriptNamesBySha();
    expect([...names.values()].sort()).toEqual([...SCRIPT_NAMES].sort());
    const addNodes = [...names].find(([, name]) => name === 'addNodes')?.[0] as string;
    expect(addNodes).toMatch(/^[0-9a-f]{40}$/);
    const [exists, unknown] = (await redis.script('EXISTS', addNodes, '0'.repeat(40))) as number[];
    expect(exists).toBe(1);
    expect(unknown).toBe(0);
  });
});
