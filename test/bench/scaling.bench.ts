import { startAggregator } from '@streamgauge/aggregator';
import { allShardKeys, loadConfig, type Reading, readModelKeys, systemClock } from '@streamgauge/core';
import { ReadingLog } from '@streamgauge/redis';
import { waitForAggregator } from '@streamgauge/testkit';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { ServiceProcess } from '../support/serviceProcess.ts';
import { CpuMeter, type CpuTarget } from './lib/cpu.ts';
import { fillLog } from './lib/streams.ts';
import { BenchFailure, type SuiteContext } from './lib/types.ts';

export const SUITE = 'scaling';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/**
 * Scale-out and memory: the aggregator with 1, 2 and 4 stream shards, one
 * replica (process) per shard, draining the same readings; and the Redis
 * bytes one node costs with 30 days of one reading per minute.
 */
export async function scalingBench(context: SuiteContext): Promise<void> {
  for (const shards of [1, 2, 4]) await scaleOut(context, shards);
  await bytesPerNode(context, 10);
}

/**
 * R replicas over R shards: the replicas start on empty streams and settle
 * on one shard each, and are frozen (SIGSTOP; their leases outlast it); 200k
 * readings of 1000 nodes are appended; then the clock runs from their thaw
 * until every replica has written every key for them. Work piled up first,
 * as after an outage: the rate is what a replica can do, not what arrives.
 */
async function scaleOut(context: SuiteContext, shards: number): Promise<void> {
  await context.redis.flush();
  const total = 200_000;
  const nodes = 1_000;
  context.log(`scale-out: ${shards} shard(s), ${shards} replica(s), ${total} readings, ${nodes} nodes`);
  const replicas: ServiceProcess[] = [];
  try {
    for (let r = 0; r < shards; r++) {
      replicas.push(
        await ServiceProcess.start({
          env: {
            REDIS_URL: context.redis.url,
            STREAM_SHARDS: String(shards),
            AGGREGATOR_CONSUMER: `bench-${r}`,
            AGGREGATOR_LEASE_MS: '6000',
          },
          onOutput: (line) => context.log(`[aggregator ${r}] ${line}`),
        }),
      );
    }
    await settled(context, shards);
    const log = new ReadingLog(context.redis.client, {
      shards,
      retentionMs: 48 * 3_600_000,
      dedupeHorizonMs: 48 * 3_600_000,
      clock: systemClock,
    });
    for (const replica of replicas) replica.pause();
    await fillLog(log, { total, nodes, now: Date.now() });
    const targets: CpuTarget[] = replicas.map((p, r) => ({ name: `aggregator ${r}`, pid: p.pid }));
    if (context.redis.pid !== undefined) targets.push({ name: 'redis', pid: context.redis.pid });
    const cpu = new CpuMeter(targets);
    cpu.start();
    const started = performance.now();
    for (const replica of replicas) replica.resume();
    await waitForAggregator(context.redis.client, shards, 600_000);
    const seconds = (performance.now() - started) / 1000;
    const usage = cpu.stop();
    const perReplica = replicas.map((_, r) => usage[`aggregator ${r}`] ?? 0);
    context.record({
      suite: SUITE,
      case: `${shards} shard(s), ${shards} replica(s), 1000 nodes`,
      batch: 1000,
      seconds,
      readings: total,
      requests: total / 1000,
      readingsPerSec: Math.round(total / seconds),
      requestsPerSec: total / 1000 / seconds,
      cpu: usage,
      notes: [
        `per replica ${Math.round(total / seconds / shards)} readings/s at ${(
          perReplica.reduce((a, b) => a + b, 0) / shards
        ).toFixed(0)}% of a core each`,
      ],
    });
  } finally {
    for (const replica of replicas) replica.resume();
    await Promise.all(replicas.map((p) => p.stop()));
  }
}

/** Waits until every shard's lease is held and no replica holds more than its share. */
async function settled(context: SuiteContext, shards: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const holders = await Promise.all(allShardKeys(shards).map((s) => context.redis.client.get(s.lease)));
    const counts = new Map<string, number>();
    for (const h of holders) if (h) counts.set(h, (counts.get(h) ?? 0) + 1);
    if (holders.every((h) => h !== null) && counts.size === shards) return;
    if (Date.now() > deadline)
      throw new BenchFailure(`replicas did not settle on the shards: ${holders.join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Redis bytes per node after 30 days of one reading per minute: the
 * aggregator's state hash and the dashboard keys of the node (MEMORY USAGE,
 * every element sampled), averaged over `nodes` nodes. The stream and the
 * ingest dedupe sets are left out: both are bounded by time, not by nodes
 * (docs/benchmarks.md has the dedupe figure).
 */
async function bytesPerNode(context: SuiteContext, nodes: number): Promise<void> {
  await context.redis.flush();
  const redis = context.redis.client;
  context.log(`bytes per node: ${nodes} nodes × 30 days, one reading per minute`);
  const perNode = await appendThirtyDays(redis, nodes);
  const started = performance.now();
  const aggregator = await startAggregator(
    loadConfig({ REDIS_URL: context.redis.url }),
    pino({ level: 'silent' }),
  );
  try {
    await waitForAggregator(redis, 1, 600_000);
  } finally {
    await aggregator.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const shard = allShardKeys(1)[0];
  if (shard === undefined) throw new BenchFailure('no shard');
  let state = 0;
  let readModel = 0;
  const usage = async (key: string) =>
    Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
  for (let n = 0; n < nodes; n++) {
    const id = `M${n}`;
    state += await usage(shard.aggregateNode(id));
    const keys = [
      readModelKeys.nodeLatest(id),
      readModelKeys.nodeMetadata(id),
      readModelKeys.nodeTimeseries7d(id),
      ...(['1h', '6h', '24h', '3d', '7d', '30d'] as const).map((r) => readModelKeys.nodeMetrics(id, r)),
    ];
    for (const key of keys) readModel += await usage(key);
  }
  const fields = Number(await redis.hlen(shard.aggregateNode('M0')));
  context.record({
    suite: SUITE,
    case: 'Redis bytes per node, 30 days × 1 reading/min',
    seconds,
    readings: perNode * nodes,
    requests: 0,
    readingsPerSec: Math.round((perNode * nodes) / seconds),
    requestsPerSec: 0,
    notes: [
      `${Math.round((state + readModel) / nodes)} bytes per node: state ${Math.round(state / nodes)} (${fields} hash fields), dashboard keys ${Math.round(readModel / nodes)}`,
    ],
  });
}

/**
 * Appends 30 days of one reading per minute (all four measurements) for
 * `nodes` nodes `M0`…, through the readings log (dedupe included), in entries
 * of about 1000 readings (a few minutes of every node). Returns the readings
 * per node. Shared by this suite and the scale suite.
 */
export async function appendThirtyDays(redis: Redis, nodes: number): Promise<number> {
  const now = Date.now();
  const start = now - 30 * DAY + 2 * 3_600_000;
  const perNode = Math.floor((now - MINUTE - start) / MINUTE);
  const log = new ReadingLog(redis, {
    shards: 1,
    retentionMs: 48 * 3_600_000,
    dedupeHorizonMs: 48 * 3_600_000,
    clock: systemClock,
  });
  const minutesPerEntry = Math.max(1, Math.floor(1000 / nodes));
  for (let m = 0; m < perNode; m += minutesPerEntry) {
    const batch: Reading[] = [];
    for (let k = m; k < Math.min(m + minutesPerEntry, perNode); k++) {
      for (let n = 0; n < nodes; n++) {
        batch.push({
          node_id: `M${n}`,
          timestamp: start + k * MINUTE,
          flow_rate: 10 + Math.sin(k / 60) * 5 + n,
          pressure: 3 + Math.cos(k / 90),
          temperature: 14 + (k % 7) / 10,
          volume: 1000 + k * 0.5,
        });
      }
    }
    await log.append(batch, 'bench');
  }
  return perNode;
}
