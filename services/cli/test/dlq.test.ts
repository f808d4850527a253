import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type RunningAggregator, startAggregator } from '@streamgauge/aggregator';
import { type RunningArchiver, startArchiver } from '@streamgauge/archiver';
import {
  allShardKeys,
  GROUPS,
  loadConfig,
  opsKeys,
  type ShardKeys,
  shardKeys,
  shardOf,
  systemClock,
} from '@streamgauge/core';
import { DedupeSets, ReadingLog } from '@streamgauge/redis';
import { type TestRedis, testRedis, waitForAggregator, waitForDrain } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** What ingest records of the readings it accepts (the dedupe horizon's identities). */
const ingestDedupe = (client: Redis, shard: ShardKeys) =>
  new DedupeSets(client, shard, { horizonMs: 48 * 3_600_000, clock: systemClock });

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const exec = promisify(execFile);
const SHARDS = 2;
const dir = mkdtempSync(join(tmpdir(), 'streamgauge-dlq-'));
// Failed entries are claimed again after 200 ms and dead-lettered at their second failure.
const settings = {
  STREAM_SHARDS: String(SHARDS),
  AGGREGATOR_BLOCK_MS: '100',
  AGGREGATOR_CLAIM_IDLE_MS: '200',
  AGGREGATOR_MAX_DELIVERIES: '2',
  AGGREGATOR_METRICS_INTERVAL_MS: '100',
};
let redis: TestRedis;

beforeAll(async () => {
  redis = await testRedis();
  await redis.flush();
});
afterAll(async () => {
  await redis.close();
  rmSync(dir, { recursive: true, force: true });
});

async function streamgauge(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string | undefined> = { ...process.env, REDIS_URL: redis.url, ...settings };
  delete env.LOG_LEVEL;
  try {
    const { stdout, stderr } = await exec(process.execPath, [MAIN, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

type Flat = [string, string[]][];
const record = (flat: string[]) =>
  Object.fromEntries(flat.flatMap((v, i) => (i % 2 ? [] : [[v, flat[i + 1]]])));

describe('streamgauge dlq', () => {
  it('lists and shows dead letters; a repaired poison entry is redriven and applied exactly once; drop removes one', async () => {
    const config = loadConfig({ REDIS_URL: redis.url, DATA_DIR: dir, ...settings });
    const logger = pino({ level: 'silent' });
    const client = new Redis(redis.url);
    const streams = allShardKeys(SHARDS).map((s) => s.stream);
    let aggregator: RunningAggregator | undefined;
    let archiver: RunningArchiver | undefined;
    try {
      aggregator = await startAggregator(config, logger);
      archiver = await startArchiver(config, logger);
      const now = Date.now();
      // P1 is in shard 0, Q1 in shard 1. P1's entry does not decode: both groups give up on it.
      const p = shardKeys(shardOf('P1', SHARDS), SHARDS);
      const broken = '[{"node_id":"P1","timestamp":';
      const poison = (await client.xadd(
        p.stream,
        '*',
        'n',
        '1',
        'src',
        'gw-north',
        'readings',
        broken,
      )) as string;
      // Q1's decodes, but its quality score is out of range: the aggregator applies it, the archiver gives up.
      const q = shardKeys(shardOf('Q1', SHARDS), SHARDS);
      const invalid = JSON.stringify([
        { node_id: 'Q1', timestamp: now - 120_000, flow_rate: 7, data_quality_score: 7 },
      ]);
      const half = (await client.xadd(
        q.stream,
        '*',
        'n',
        '1',
        'src',
        'gw-south',
        'readings',
        invalid,
      )) as string;
      const deadCount = async () =>
        (await Promise.all(allShardKeys(SHARDS).map((s) => client.xlen(s.deadLetters)))).reduce(
          (a, b) => a + b,
          0,
        );
      await waitFor(async () => (await deadCount()) === 3, 'three dead letters');
      await waitForAggregator(client, SHARDS);
      await waitForDrain(client, streams, GROUPS.archiver);

      const listed = await streamgauge(['dlq', 'list', '--json']);
      expect(listed.code).toBe(0);
      const { deadLetters, shown, more, total } = JSON.parse(listed.stdout);
      expect({ shown, more, total }).toEqual({ shown: 3, more: false, total: 3 });
      const byEntry = (entry: string, group: string) =>
        deadLetters.find((d: { entry: string; group: string }) => d.entry === entry && d.group === group);
      const decodeError = (() => {
        try {
          JSON.parse(broken);
        } catch (error) {
          return (error as Error).message;
        }
      })();
      const forAggregator = byEntry(poison, GROUPS.aggregator);
      const forArchiver = byEntry(poison, GROUPS.archiver);
      const forQ = byEntry(half, GROUPS.archiver);
      expect(forAggregator).toEqual({
        id: expect.stringMatching(new RegExp(`^${p.shard}:\\d+-\\d+$`)),
        stream: p.stream,
        entry: poison,
        group: GROUPS.aggregator,
        deliveries: 2,
        error: decodeError,
        deadLetteredAt: expect.any(String),
        original: true,
        readings: null,
      });
      expect(forArchiver).toMatchObject({ entry: poison, deliveries: 2, error: decodeError, readings: null });
      expect(forQ).toMatchObject({
        stream: q.stream,
        deliveries: 2,
        error: 'reading 0: data_quality_score: expected a number from 0 to 1, got 7',
        original: true,
        readings: 1,
      });
      const human = await streamgauge(['dlq', 'list', '--shard', String(p.shard)]);
      expect(human.stdout).toMatch(
        new RegExp(
          `^${forAggregator.id}\\s+${p.stream.replace(/[{}]/g, '\\$&')}\\s+${poison}\\s+aggregator\\s+2\\s+present\\s+bad\\s+`,
          'm',
        ),
      );

      const shown1 = await streamgauge(['dlq', 'show', forAggregator.id]);
      expect(shown1.code).toBe(0);
      expect(shown1.stdout).toContain(`    readings (raw; it does not decode):\n      ${broken}\n`);
      expect(shown1.stdout).toContain(`archiver gave up on it too (${forArchiver.id}: ${decodeError})`);
      expect(shown1.stdout).toContain(`streamgauge dlq redrive ${forAggregator.id} --file FILE`);

      // As it is, it cannot go back: it does not decode.
      const asIs = await streamgauge(['dlq', 'redrive', forAggregator.id]);
      expect(asIs.code).toBe(1);
      expect(asIs.stderr).toContain(`the original entry ${poison} does not decode`);
      expect(asIs.stderr).toContain('give repaired readings with --file');

      // Repaired: one invalid reading, and nothing is redriven.
      const at = now - 60_000;
      const bad = join(dir, 'bad.json');
      writeFileSync(
        bad,
        JSON.stringify({
          readings: [
            { node_id: 'P1', timestamp: at, flow_rate: 4.25 },
            { node_id: 'P1', timestamp: at + 1000, flow_rate: 'x' },
          ],
        }),
      );
      const refused = await streamgauge(['dlq', 'redrive', forAggregator.id, '--file', bad]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        `nothing was redriven: ${bad} has 1 invalid reading of 2:\n  reading 1: flow_rate: expected a finite number (L/s), got string "x"`,
      );
      const lengthBefore = await client.xlen(p.stream);
      expect(lengthBefore).toBe(1);

      // The same reading twice: ingest would drop the repeat, a redrive refuses it.
      const repeated = join(dir, 'repeated.json');
      const reading = { node_id: 'P1', timestamp: at, flow_rate: 4.25 };
      writeFileSync(repeated, JSON.stringify([reading, reading]));
      const doubled = await streamgauge(['dlq', 'redrive', forAggregator.id, '--file', repeated]);
      expect(doubled.code).toBe(1);
      expect(doubled.stderr).toContain(
        `nothing was redriven: ${repeated} has 1 invalid reading of 2:\n  reading 1: the same reading (node_id and timestamp) as reading 0`,
      );
      // A reading ingest accepted already through another entry would count twice.
      const known = { node_id: 'P1', timestamp: at + 5000, flow_rate: 1 };
      await ingestDedupe(client, p).mark([known]);
      const seenFile = join(dir, 'seen.json');
      writeFileSync(seenFile, JSON.stringify([known]));
      const seenRefused = await streamgauge(['dlq', 'redrive', forAggregator.id, '--file', seenFile]);
      expect(seenRefused.code).toBe(1);
      expect(seenRefused.stderr).toContain(`ingest accepted already through other entries`);
      expect(await client.xlen(p.stream)).toBe(1);

      const good = join(dir, 'repaired.json');
      writeFileSync(
        good,
        JSON.stringify({
          node_id: 'P1',
          timestamp: new Date(at).toISOString(),
          flow_rate: 4.25,
          pressure: 3.5,
        }),
      );
      const redriven = await streamgauge(['dlq', 'redrive', forAggregator.id, '--file', good]);
      expect(redriven.stderr).not.toContain('streamgauge:');
      expect(redriven.code).toBe(0);
      const newEntry = /replaced by new entry (\d+-\d+)/.exec(redriven.stdout)?.[1] as string;
      expect(redriven.stdout).toBe(
        `redrove ${forAggregator.id}: entry ${poison} of ${p.stream} replaced by new entry ${newEntry} (1 reading from the file), delivered to every group; resolved ${forAggregator.id}, ${forArchiver.id}\n`,
      );
      // Its identity is now known to ingest: a gateway resending it gets a duplicate.
      expect(
        await new ReadingLog(client, {
          shards: SHARDS,
          retentionMs: 48 * 3_600_000,
          dedupeHorizonMs: 48 * 3_600_000,
          clock: systemClock,
        }).append([{ node_id: 'P1', timestamp: at, flow_rate: 4.25 }], 'gateway'),
      ).toEqual({ accepted: 0, duplicates: 1 });
      expect(JSON.parse(redriven.stderr)).toMatchObject({
        service: 'dlq',
        msg: 'dead letter redriven',
        newEntry,
      });
      expect(await client.xrange(p.stream, newEntry, newEntry)).toEqual([
        [
          newEntry,
          [
            'n',
            '1',
            'src',
            'dlq-redrive',
            'readings',
            JSON.stringify([{ node_id: 'P1', timestamp: at, flow_rate: 4.25, pressure: 3.5 }]),
          ],
        ],
      ]);
      await waitForAggregator(client, SHARDS);
      await waitForDrain(client, streams, GROUPS.archiver);
      const applied = async () => ({
        latest: await client.hgetall('node:P1:latest'),
        count: await client.hget('node:P1:metrics:1h', 'reading_count'),
        archived: await client.hget(p.archive.stats, 'inserted'),
      });
      const once = await applied();
      expect(once.latest).toMatchObject({ flow_rate: '4.25', pressure: '3.5' });
      expect(once.count).toBe('1');
      expect(once.archived).toBe('1');

      // Again, by either handle: refused, and nothing changes.
      for (const id of [forAggregator.id, forArchiver.id]) {
        const again = await streamgauge(['dlq', 'redrive', id, '--file', good]);
        expect(again.code).toBe(1);
        expect(again.stderr).toContain(`dead letter ${id}: already redriven or dropped (redriven `);
        expect(again.stderr).toContain(`new entry ${newEntry}); nothing was redriven`);
      }
      expect((await client.xrange(p.stream, '-', '+')).map(([id]) => id)).toEqual([newEntry]);
      await new Promise((r) => setTimeout(r, 500));
      await waitForAggregator(client, SHARDS);
      expect(await applied()).toEqual(once);

      const [logged] = (await client.xrevrange(opsKeys.log, '+', '-', 'COUNT', 1)) as Flat;
      expect(record(logged?.[1] ?? [])).toMatchObject({
        action: 'dlq.redrive',
        stream: p.stream,
        entry: poison,
        deadLetter: forAggregator.id,
        group: 'aggregator,archiver',
        mode: 'append',
        newEntry,
        from: 'file',
        readings: '1',
      });

      // Q1's: the aggregator applied it, so no new entry; the original goes back to the archiver only.
      const elsewhere = await streamgauge(['dlq', 'redrive', forQ.id, '--file', good]);
      expect(elsewhere.code).toBe(1);
      expect(elsewhere.stderr).toContain(
        `reading 0: node_id "P1" belongs to shard ${p.shard}, not to this dead letter's shard ${q.shard} (${q.stream})`,
      );
      const qFile = join(dir, 'q.json');
      writeFileSync(qFile, JSON.stringify([{ node_id: 'Q1', timestamp: now - 120_000, flow_rate: 7 }]));
      const partial = await streamgauge(['dlq', 'redrive', forQ.id, '--file', qFile]);
      expect(partial.code).toBe(1);
      expect(partial.stderr).toContain(`group aggregator applied entry ${half} already`);
      const show = await streamgauge(['dlq', 'show', forQ.id]);
      expect(show.stdout).toContain(
        `would re-deliver the original ${half} to group archiver only (aggregator applied it already)`,
      );
      const qCount = await client.hget('node:Q1:metrics:1h', 'reading_count');
      expect(qCount).toBe('1');
      const redelivered = await streamgauge(['dlq', 'redrive', forQ.id]);
      expect(redelivered.code).toBe(0);
      expect(redelivered.stdout).toContain(
        `re-delivered to group archiver only (aggregator applied it already); resolved ${forQ.id}`,
      );
      expect(redelivered.stderr).toContain('note: group archiver may give up on it again');
      // The archiver took it again, failed twice, and gave up again; the aggregator never saw it.
      let again: { id: string; group: string; deliveries: number } | undefined;
      await waitFor(async () => {
        const page = JSON.parse((await streamgauge(['dlq', 'list', '--json'])).stdout);
        again = page.deadLetters.find((d: { entry: string }) => d.entry === half);
        return again !== undefined;
      }, 'the archiver to dead-letter the re-delivered entry');
      expect(again).toMatchObject({ group: GROUPS.archiver, deliveries: 2 });
      expect(again?.id).not.toBe(forQ.id);
      expect(await client.xlen(q.stream)).toBe(1);
      await waitForAggregator(client, SHARDS);
      expect(await client.hget('node:Q1:metrics:1h', 'reading_count')).toBe('1');

      const dropped = await streamgauge(['dlq', 'drop', again?.id as string]);
      expect(dropped.code).toBe(0);
      expect(dropped.stdout).toBe(`dropped ${again?.id} (entry ${half} of ${q.stream}, group archiver)\n`);
      expect((await streamgauge(['dlq', 'list'])).stdout).toBe('no dead letters\n');
      const [last] = (await client.xrevrange(opsKeys.log, '+', '-', 'COUNT', 1)) as Flat;
      expect(record(last?.[1] ?? [])).toMatchObject({
        action: 'dlq.drop',
        stream: q.stream,
        entry: half,
        deadLetter: again?.id,
        group: 'archiver',
        deliveries: '2',
      });
      const twice = await streamgauge(['dlq', 'drop', again?.id as string]);
      expect(twice.code).toBe(1);
      expect(twice.stderr).toContain(`dead letter ${again?.id}: not found (already redriven or dropped)`);
      expect((await streamgauge(['dlq', 'drop', '--all'])).code).toBe(2);
    } finally {
      await aggregator?.stop();
      await archiver?.stop();
      client.disconnect();
    }
  }, 120_000);
});
