import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type RunningAggregator, startAggregator } from '@streamgauge/aggregator';
import { startArchiver } from '@streamgauge/archiver';
import { allShardKeys, type Config, GROUPS, horizonStart, opsKeys, type Reading } from '@streamgauge/core';
import { startIngest } from '@streamgauge/ingest';
import { checkReadModel, generateDataset, waitForAggregator, waitForDrain } from '@streamgauge/testkit';
import { DuckdbWarehouse, duckdbPath } from '@streamgauge/warehouse';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { postReadings } from '../support/postReadings.ts';
import { testSystem } from '../support/system.ts';

const MAIN = fileURLToPath(new URL('../../services/cli/src/main.ts', import.meta.url));
const exec = promisify(execFile);
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });
const SHARDS = 2;
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
});

function system() {
  // Replayed entries are claimed at the group's next scan of pending entries.
  const env = { STREAM_SHARDS: String(SHARDS), AGGREGATOR_CLAIM_IDLE_MS: '500' };
  return testSystem('ops', env, (step) => cleanup.push(step));
}

async function streamgauge(env: Record<string, string>, args: string[]) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [MAIN, ...args], {
      env: { ...process.env, ...env, LOG_LEVEL: 'warn' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Every key derived from the stream by the aggregator: the read model, system sums, and (with state) its persisted state. */
async function wipeDerived(redis: Redis, withState: boolean): Promise<number> {
  const patterns = ['node:*', 'system:*', 'nodes:all', '{nodes:all}:*', '{system}:*', '{system:*'];
  if (withState) patterns.push('agg:*');
  let deleted = 0;
  for (const match of patterns) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  }
  return deleted;
}

/** The read model against the independent computation, given the aggregator a moment to write what is owed. */
async function expectReadModel(redis: Redis, config: Config, readings: readonly Reading[], now: number) {
  const deadline = Date.now() + 20_000;
  let problems: string[] = [];
  do {
    problems = await checkReadModel(redis, readings, {
      ttlSeconds: config.cacheTtlSeconds,
      horizonStart: horizonStart(now),
    });
    if (problems.length === 0) return;
    await new Promise((r) => setTimeout(r, 250));
  } while (Date.now() < deadline);
  expect(problems.slice(0, 20)).toEqual([]);
}

async function entriesIn(redis: Redis): Promise<number> {
  let total = 0;
  for (const shard of allShardKeys(SHARDS)) total += await redis.xlen(shard.stream);
  return total;
}

async function counter(redis: Redis, name: string): Promise<number> {
  let total = 0;
  for (const shard of allShardKeys(SHARDS))
    total += Number((await redis.hget(shard.aggregateStats, name)) ?? 0);
  return total;
}

const streams = allShardKeys(SHARDS).map((s) => s.stream);

describe('replay and rebuild', () => {
  it('replays an applied range without counting it twice, and restores wiped keys (read model alone, then with the state)', async () => {
    const { redis, config, env } = await system();
    const now = Date.now();
    const data = generateDataset({ nodes: 6, days: 3, intervalMs: 15 * 60_000, now, seed: 71 });
    const ingest = await startIngest(config, logger);
    cleanup.push(() => ingest.close());
    const warehouse = await DuckdbWarehouse.open(duckdbPath(config));
    cleanup.push(() => warehouse.close());
    const archiver = await startArchiver(config, logger, { warehouse });
    cleanup.push(() => archiver.stop());
    let aggregator: RunningAggregator = await startAggregator(config, logger);
    cleanup.push(() => aggregator.stop());

    const sentFrom = new Date(Date.now() - 1_000).toISOString();
    await postReadings(ingest.url, data.sent, { batch: 200 });
    await waitForAggregator(redis, SHARDS);
    await waitForDrain(redis, streams, GROUPS.archiver);
    await expectReadModel(redis, config, data.unique, now);
    const entries = await entriesIn(redis);
    expect(entries).toBeGreaterThan(10);

    // A dry run says what would go back, and changes nothing.
    const dry = await streamgauge(env, [
      'replay',
      '--group',
      'aggregator',
      '--from',
      sentFrom,
      '--dry-run',
      '--json',
    ]);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.dryRun).toBe(true);
    expect(plan.totals).toMatchObject({
      entries,
      replayed: entries,
      pending: 0,
      undelivered: 0,
      deadLettered: 0,
    });
    expect(plan.totals.readings).toBe(data.unique.length);
    for (const shard of allShardKeys(SHARDS)) {
      expect((await redis.xpending(shard.stream, GROUPS.aggregator))[0]).toBe(0);
    }

    // The whole range again: acknowledged, not applied twice.
    const replayed = await streamgauge(env, ['replay', '--group', 'aggregator', '--from', '-', '--json']);
    expect(replayed.stderr).not.toMatch(/error/i);
    expect(replayed.code).toBe(0);
    expect(JSON.parse(replayed.stdout)).toMatchObject({ remaining: 0, totals: { replayed: entries } });
    expect(await counter(redis, 'replayed')).toBe(entries);
    await expectReadModel(redis, config, data.unique, now);
    const consumers = (await redis.xinfo(
      'CONSUMERS',
      streams[0] as string,
      GROUPS.aggregator,
    )) as unknown[][];
    expect(consumers.map((c) => c[1])).not.toContain('replay');

    // To the archiver: the warehouse keeps one row per reading.
    const archived = await streamgauge(env, ['replay', '--group', 'archiver', '--from', '-', '--to', '+']);
    expect(archived.code).toBe(0);
    expect(archived.stdout).toContain(`replayed ${entries} entries`);
    const [row] = await warehouse.select({ sql: 'SELECT count(*)::DOUBLE AS n FROM readings', params: {} });
    expect(Number(row?.n)).toBe(data.unique.length);

    // The read model wiped under a running aggregator: a replay writes it again.
    expect(await wipeDerived(redis, false)).toBeGreaterThan(6 * 8);
    expect(await redis.exists('nodes:all')).toBe(0);
    expect((await streamgauge(env, ['replay', '--group', 'aggregator', '--from', sentFrom])).code).toBe(0);
    await expectReadModel(redis, config, data.unique, now);

    // Everything derived, the aggregator's state too, while it is stopped:
    // the replay hands the stream back first, and the restart finds no
    // state and no mark, and applies it afresh before anything newer.
    await aggregator.stop();
    await wipeDerived(redis, true);
    const handedBack = await streamgauge(env, [
      'replay',
      '--group',
      'aggregator',
      '--from',
      '-',
      '--no-wait',
      '--json',
    ]);
    expect(handedBack.code).toBe(0);
    expect(JSON.parse(handedBack.stdout).totals).toMatchObject({ replayed: entries, unsettled: 0 });
    expect(await redis.exists('nodes:all')).toBe(0);
    aggregator = await startAggregator(config, logger);
    await waitForAggregator(redis, SHARDS);
    expect(await counter(redis, 'replayed')).toBe(0);
    expect(await counter(redis, 'applied')).toBe(data.unique.length - data.tooLate);
    await expectReadModel(redis, config, data.unique, now);

    // State persisted before the applied mark existed: the restart marks
    // what the group's position says the state holds, and a replay skips it.
    await aggregator.stop();
    for (const shard of allShardKeys(SHARDS)) await redis.del(shard.aggregateApplied);
    const appliedBefore = await counter(redis, 'applied');
    aggregator = await startAggregator(config, logger);
    for (const shard of allShardKeys(SHARDS)) {
      expect(await redis.get(shard.aggregateApplied)).toBe(
        (await redis.xrevrange(shard.stream, '+', '-', 'COUNT', 1))[0]?.[0],
      );
    }
    expect((await streamgauge(env, ['replay', '--group', 'aggregator', '--from', '-'])).code).toBe(0);
    expect(await counter(redis, 'replayed')).toBe(entries);
    expect(await counter(redis, 'applied')).toBe(appliedBefore);
    await expectReadModel(redis, config, data.unique, now);

    const log = await redis.xrange(opsKeys.log, '-', '+');
    expect(log.filter(([, f]) => f[1] === 'replay')).toHaveLength(5);

    // Usage errors name the problem.
    const noGroup = await streamgauge(env, ['replay', '--group', 'nosuch', '--from', '-']);
    expect(noGroup.code).toBe(2);
    expect(noGroup.stderr).toContain('has no consumer group "nosuch"');
    const badTime = await streamgauge(env, ['replay', '--group', 'aggregator', '--from', 'yesterday-ish']);
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain('--from "yesterday-ish" is not a time');
  }, 180_000);

  it('rebuilds the state from the warehouse after the stream was trimmed and the derived keys wiped', async () => {
    const { redis, config, env } = await system();
    const now = Date.now();
    const data = generateDataset({ nodes: 6, days: 3, intervalMs: 15 * 60_000, now, seed: 72 });
    const ingest = await startIngest(config, logger);
    cleanup.push(() => ingest.close());
    const warehouse = await DuckdbWarehouse.open(duckdbPath(config));
    const archiver = await startArchiver(config, logger, { warehouse });
    let aggregator: RunningAggregator = await startAggregator(config, logger);
    cleanup.push(() => aggregator.stop());
    await postReadings(ingest.url, data.sent, { batch: 200 });
    await waitForAggregator(redis, SHARDS);
    await waitForDrain(redis, streams, GROUPS.archiver);
    await expectReadModel(redis, config, data.unique, now);
    // The CLI opens the DuckDB file itself: the archiver lets go of it.
    await archiver.stop();
    await warehouse.close();

    await aggregator.stop();
    await wipeDerived(redis, true);
    for (const stream of streams) await redis.xtrim(stream, 'MAXLEN', 0);
    aggregator = await startAggregator(config, logger);
    expect(await redis.exists('nodes:all')).toBe(0);

    // One node first, recent panes only: the others stay absent.
    const one = await streamgauge(env, ['rebuild', '--nodes', 'NODE002', '--since', '6h', '--json']);
    expect(one.code).toBe(0);
    const partial = JSON.parse(one.stdout);
    expect(partial).toMatchObject({
      status: 'complete',
      nodes: 1,
      nodesCreated: 1,
      scope: { nodes: ['NODE002'] },
    });
    expect(partial.scope.since % 3_600_000).toBe(0);
    expect(await redis.lrange('nodes:all', 0, -1)).toEqual(['NODE002']);
    expect(await redis.exists('node:NODE001:latest')).toBe(0);

    const full = await streamgauge(env, ['rebuild']);
    expect(full.code).toBe(0);
    expect(full.stdout).toMatch(/^rebuild \S+: complete/);
    expect(full.stdout).toMatch(/nodes created 5/);
    await expectReadModel(redis, config, data.unique, now);
    const log = await redis.xrange(opsKeys.log, '-', '+');
    expect(log.filter(([, f]) => f[1] === 'rebuild')).toHaveLength(2);
  }, 180_000);
});
