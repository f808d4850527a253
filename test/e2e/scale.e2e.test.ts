import { startAggregator } from '@streamgauge/aggregator';
import { RANGES, type Reading, readModelKeys } from '@streamgauge/core';
import { startIngest } from '@streamgauge/ingest';
import {
  compareFields,
  inWindow,
  oracleLatest,
  oracleMetrics,
  oracleWindow,
  waitForAggregator,
} from '@streamgauge/testkit';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { postReadings } from '../support/postReadings.ts';
import { testSystem } from '../support/system.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const NODES = 100_000;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Three readings per node: minutes, hours and days old, so every range holds a different set. */
function readingsOf(n: number, now: number): Reading[] {
  const id = `S${String(n).padStart(6, '0')}`;
  const ages = [(n % 50) * 1000 + MINUTE, 2 * HOUR + (n % 7) * MINUTE, 50 * HOUR + (n % 13) * HOUR];
  return ages.map((age, i) => ({
    node_id: id,
    timestamp: now - age,
    flow_rate: ((n * 7 + i * 13) % 100) / 4,
    pressure: 2 + ((n + i) % 30) / 10,
  }));
}

describe('the engine at scale', () => {
  it('takes 100,000 nodes through ingest and the aggregator with default settings, every node right', async () => {
    const { redis, config } = await testSystem('scale', {}, (step) => cleanup.push(step));
    const silent = pino({ level: 'silent' });
    const now = Date.now();
    const ingest = await startIngest(config, silent);
    cleanup.push(() => ingest.close());
    const aggregator = await startAggregator(config, silent);
    cleanup.push(() => aggregator.stop());

    // Gateways report node after node: a batch holds 1000 different nodes.
    const readings: Reading[] = [];
    for (let i = 0; i < 3; i++) {
      for (let n = 0; n < NODES; n++) readings.push(readingsOf(n, now)[i] as Reading);
    }
    const sent = await postReadings(ingest.url, readings, { batch: 1000 });
    expect(sent).toEqual({ accepted: readings.length, duplicates: 0 });
    await waitForAggregator(redis, 1, 600_000);

    const listed = await redis.lrange(readModelKeys.nodesAll, 0, -1);
    expect(listed.length).toBe(NODES);
    expect(new Set(listed).size).toBe(NODES);
    expect(await redis.hget(readModelKeys.systemMetrics('30d'), 'total_nodes')).toBe(String(NODES));

    // Every node's latest values and every range's metrics against the oracle, pipelined.
    const problems: string[] = [];
    for (let from = 0; from < NODES; from += 2000) {
      const ids = Array.from({ length: Math.min(2000, NODES - from) }, (_, k) => from + k);
      const pipeline = redis.pipeline();
      for (const n of ids) {
        const id = `S${String(n).padStart(6, '0')}`;
        pipeline.hgetall(readModelKeys.nodeLatest(id));
        for (const range of RANGES) pipeline.hgetall(readModelKeys.nodeMetrics(id, range));
      }
      const replies = ((await pipeline.exec()) ?? []).map(([, hash]) => hash as Record<string, string>);
      ids.forEach((n, k) => {
        const own = readingsOf(n, now);
        const id = own[0]?.node_id as string;
        const at = k * (1 + RANGES.length);
        problems.push(...compareFields(`${id}:latest`, replies[at] ?? {}, oracleLatest(own) ?? {}));
        RANGES.forEach((range, r) => {
          const hash = replies[at + 1 + r] ?? {};
          const end = Date.parse(hash.window_end ?? '');
          const start = oracleWindow(range, end).start;
          if (Date.parse(hash.window_start ?? '') !== start) problems.push(`${id}:metrics:${range} window`);
          problems.push(
            ...compareFields(`${id}:metrics:${range}`, hash, { ...oracleMetrics(inWindow(own, start, end)) }),
          );
        });
      });
      if (problems.length > 30) break;
    }
    expect(problems.slice(0, 30), `${problems.length} differences`).toEqual([]);
  }, 900_000);
});
