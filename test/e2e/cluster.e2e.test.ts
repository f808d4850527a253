import { startAggregator } from '@streamgauge/aggregator';
import { allShardKeys, fieldRecord, horizonStart, loadConfig, readModelKeys } from '@streamgauge/core';
import { startIngest } from '@streamgauge/ingest';
import { GatewayRegistry, ReadModelReader } from '@streamgauge/redis';
import {
  checkReadModel,
  generateDataset,
  RedisCluster,
  redisServerOnPath,
  waitForAggregator,
} from '@streamgauge/testkit';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postReadings } from '../support/postReadings.ts';

/** A gateway loading 30 days at once: not held to the default rates. */
const BULK_LOAD = { readingsPerSecond: 0, requestsPerSecond: 0 };

let cluster: RedisCluster;
let client: Cluster;

beforeAll(async () => {
  cluster = await RedisCluster.start({ masters: 3 });
  client = new Cluster(cluster.nodes);
}, 60_000);
afterAll(async () => {
  client?.disconnect();
  await cluster?.dispose();
});

describe.runIf(redisServerOnPath())('the pipeline on a 3-master Redis Cluster', () => {
  it('ends with every key equal to the independent computation, with no CROSSSLOT anywhere', async () => {
    const now = Date.now();
    const data = generateDataset({ nodes: 30, days: 30, intervalMs: 30 * 60_000, now, seed: 3 });
    const config = loadConfig({
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
      STREAM_SHARDS: '4',
      INGEST_HOST: '127.0.0.1',
      INGEST_PORT: '0',
      AGGREGATOR_BLOCK_MS: '200',
    });
    // Errors are logged, not thrown, in places (a retried write): a CROSSSLOT must not hide there.
    const logged: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => logged.push(line) });
    const aggregator = await startAggregator(config, logger);
    const ingest = await startIngest(config, logger);
    try {
      const { token } = await new GatewayRegistry(client, { now: () => Date.now() }).add(
        'cluster',
        {
          kind: 'district',
          district: 'SELARGIUS',
        },
        BULK_LOAD,
      );
      // A 503 stored nothing and is resent, as a gateway does: once, under the
      // whole suite's load, a request's node claims on the new cluster
      // outlasted its Redis budget (2026-12-06).
      const { accepted } = await postReadings(ingest.url, data.sent, {
        batch: 500,
        token,
        resendUnavailable: true,
      });
      expect(accepted).toBe(data.unique.length);

      await waitForAggregator(client, 4, 120_000);
      const problems = await checkReadModel(client, data.unique, {
        ttlSeconds: config.cacheTtlSeconds,
        horizonStart: horizonStart(now),
      });
      expect(problems.slice(0, 20)).toEqual([]);
      // The shards really are spread over the masters.
      const slots = await Promise.all(
        allShardKeys(4).map(async (s) => client.call('CLUSTER', 'KEYSLOT', s.stream) as Promise<number>),
      );
      const owners = new Set(slots.map((slot) => Math.floor(slot / Math.ceil(16384 / 3))));
      expect(owners.size).toBeGreaterThan(1);
      expect(logged.filter((line) => /CROSSSLOT|MOVED|ASK/.test(line))).toEqual([]);

      // The dashboard's bulk reads, whose keys span masters, read what each key holds.
      const nodes = [...new Set(data.unique.map((r) => r.node_id))].slice(0, 10);
      const reads = nodes.flatMap((id) => [
        { key: readModelKeys.nodeLatest(id), what: 'hash' as const },
        { key: readModelKeys.nodeMetrics(id, '24h'), what: 'hash' as const },
      ]);
      const replies = await new ReadModelReader(client).read(reads);
      const direct = await Promise.all(reads.map((r) => client.hgetall(r.key)));
      expect(replies.map((flat) => fieldRecord(flat as string[]))).toEqual(direct);
    } finally {
      await ingest.close();
      await aggregator.stop();
    }
  }, 180_000);
});
