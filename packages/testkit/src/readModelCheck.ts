import { RANGES, type Range, type Reading, readModelKeys } from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';
import {
  compareFields,
  inWindow,
  oracleLatest,
  oracleMetadata,
  oracleMetrics,
  oracleSeries,
  oracleSystem,
  oracleWindow,
} from './oracle.ts';

export interface ReadModelCheckOptions {
  /** Every key must carry a TTL of at most this, and more than 0. */
  readonly ttlSeconds: number;
  /** Readings whose event time was before the horizon when sent: not part of the live read model. */
  readonly horizonStart: number;
}

const MINUTE = 60_000;
/** How long after a minute boundary the aggregator may still be sliding its windows. */
const SLIDE_MS = 5_000;

/**
 * Compares every key of the read model (DATA_MODEL.md) with the oracle:
 * each node's latest, metadata, metrics for every range over the hash's own
 * [window_start, window_end], the 7-day series, system metrics and
 * `nodes:all`. Returns the differences; empty means equal.
 *
 * The aggregator slides every window at minute boundaries. A check that
 * reads some keys before a slide and others after it compares two
 * evaluations (a node's metrics from one minute, the system metrics, summed
 * over every node, from the next); such a check is run again.
 */
export async function checkReadModel(
  redis: Redis | Cluster,
  readings: readonly Reading[],
  options: ReadModelCheckOptions,
): Promise<string[]> {
  for (let attempt = 0; ; attempt++) {
    const started = Date.now();
    const problems = await checkOnce(redis, readings, options);
    const straddled = Math.floor((started - SLIDE_MS) / MINUTE) !== Math.floor(Date.now() / MINUTE);
    if (problems.length === 0 || !straddled || attempt >= 2) return problems;
    await new Promise((r) => setTimeout(r, SLIDE_MS));
  }
}

async function checkOnce(
  redis: Redis | Cluster,
  readings: readonly Reading[],
  options: ReadModelCheckOptions,
): Promise<string[]> {
  const problems: string[] = [];
  const live = readings.filter((r) => r.timestamp >= options.horizonStart);
  const byNode = new Map<string, Reading[]>();
  for (const r of live) byNode.set(r.node_id, [...(byNode.get(r.node_id) ?? []), r]);
  const nodes = [...byNode.keys()].sort();

  const listed = await redis.lrange(readModelKeys.nodesAll, 0, -1);
  if (listed.length !== new Set(listed).size) problems.push('nodes:all lists a node more than once');
  if ([...listed].sort().join(',') !== nodes.join(',')) {
    problems.push(`nodes:all is [${[...listed].sort().join(',')}], expected [${nodes.join(',')}]`);
  }

  const windows = new Map<Range, Reading[][]>(RANGES.map((r) => [r, []]));
  for (const node of nodes) {
    const own = byNode.get(node) ?? [];
    const latest = await redis.hgetall(readModelKeys.nodeLatest(node));
    problems.push(...compareFields(`${node}:latest`, latest, oracleLatest(own) ?? {}));
    const metadata = await redis.hgetall(readModelKeys.nodeMetadata(node));
    problems.push(...compareFields(`${node}:metadata`, metadata, oracleMetadata(node, own)));

    for (const range of RANGES) {
      const hash = await redis.hgetall(readModelKeys.nodeMetrics(node, range));
      if (hash.window_start === undefined || hash.window_end === undefined) {
        problems.push(`${node}:metrics:${range} is missing`);
        continue;
      }
      const start = Date.parse(hash.window_start);
      const end = Date.parse(hash.window_end);
      if (oracleWindow(range, end).start !== start) {
        problems.push(
          `${node}:metrics:${range} window_start ${hash.window_start} does not match window_end ${hash.window_end}`,
        );
      }
      const inside = inWindow(own, start, end);
      windows.get(range)?.push(inside);
      problems.push(...compareFields(`${node}:metrics:${range}`, hash, { ...oracleMetrics(inside) }));
      if (range === '7d') {
        const stored = JSON.parse((await redis.get(readModelKeys.nodeTimeseries7d(node))) ?? 'null') as {
          timestamps: string[];
          flow_rates: number[];
          pressures: number[];
        } | null;
        const expected = oracleSeries(own, start, end);
        if (stored === null) {
          problems.push(`${node}:timeseries:7d is missing`);
        } else {
          if (stored.timestamps.join() !== expected.timestamps.join()) {
            problems.push(
              `${node}:timeseries:7d timestamps differ (${stored.timestamps.length} vs ${expected.timestamps.length})`,
            );
          }
          const stringed = (xs: number[]) => Object.fromEntries(xs.map((v, i) => [String(i), String(v)]));
          const numbered = (xs: number[]) => Object.fromEntries(xs.map((v, i) => [String(i), v]));
          problems.push(
            ...compareFields(
              `${node}:timeseries:7d.flow_rates`,
              stringed(stored.flow_rates),
              numbered(expected.flow_rates),
            ),
            ...compareFields(
              `${node}:timeseries:7d.pressures`,
              stringed(stored.pressures),
              numbered(expected.pressures),
            ),
          );
        }
      }
    }
  }

  for (const range of RANGES) {
    const hash = await redis.hgetall(readModelKeys.systemMetrics(range));
    problems.push(
      ...compareFields(`system:metrics:${range}`, hash, { ...oracleSystem(windows.get(range) ?? []) }),
    );
  }

  const keys = [
    readModelKeys.nodesAll,
    ...RANGES.map((r) => readModelKeys.systemMetrics(r)),
    ...nodes.flatMap((n) => [
      readModelKeys.nodeLatest(n),
      readModelKeys.nodeMetadata(n),
      readModelKeys.nodeTimeseries7d(n),
      ...RANGES.map((r) => readModelKeys.nodeMetrics(n, r)),
    ]),
  ];
  for (const key of keys) {
    const ttl = await redis.ttl(key);
    if (ttl <= 0 || ttl > options.ttlSeconds)
      problems.push(`${key}: TTL ${ttl}, expected 1..${options.ttlSeconds}`);
  }
  return problems;
}
