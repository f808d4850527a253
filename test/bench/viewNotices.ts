/**
 * What a change notice costs the dashboard's view (ReadModelView) and Redis
 * per node it names, for each kind of notice the aggregator sends after a
 * batch: `latest` (the view reads the node's metadata and latest) and
 * `latest-only` (latest alone). A read model of `nodes` nodes on a
 * throw-away server, the view loaded, then notices of 1,000 nodes every
 * 50 ms for 8 s a round, the two kinds alternated. The process' CPU
 * includes publishing the notices (the same for both).
 * Run: node test/bench/viewNotices.ts [nodes=10000] [rounds=3]
 */
import { CHANGES_CHANNEL, RANGES, readModelKeys } from '@streamgauge/core';
import { RedisServer } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import pino from 'pino';
import { ReadModelView } from '../../services/dashboard/src/view.ts';

const nodes = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 3);
const server = await RedisServer.start();
const redis = new Redis(server.url);
const ids = Array.from({ length: nodes }, (_, i) => `N${i}`);
const seed = redis.pipeline();
for (const id of ids) {
  seed.rpush(readModelKeys.nodesAll, id);
  seed.hset(readModelKeys.nodeMetadata(id), {
    node_id: id,
    node_name: `Node ${id}`,
    node_type: 'flow',
    district_id: 'D1',
  });
  seed.hset(readModelKeys.nodeLatest(id), {
    timestamp: new Date().toISOString(),
    flow_rate: '1.5',
    pressure: '3',
    temperature: '0',
    volume: '0',
  });
  for (const r of RANGES) seed.hset(readModelKeys.nodeMetrics(id, r), { avg_flow_rate: '1' });
}
await seed.exec();
const viewRedis = new Redis(server.url);
const viewSubscriber = new Redis(server.url);
const view = new ReadModelView(viewRedis, viewSubscriber, {
  shards: 1,
  logger: pino({ level: 'silent' }),
  refreshMs: 200,
});
await view.start();
while (!view.loaded) await new Promise((r) => setTimeout(r, 100));
const redisCpu = async () => {
  const info = await redis.info('cpu');
  return Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]);
};
for (let round = 1; round <= rounds; round++) {
  for (const keys of ['latest', 'latest-only']) {
    let offset = 0;
    let named = 0;
    const cpu = process.cpuUsage();
    const redisBefore = await redisCpu();
    const started = Date.now();
    while (Date.now() - started < 8_000) {
      const batch = Array.from({ length: 1000 }, () => ids[offset++ % ids.length] as string);
      const at = new Date().toISOString();
      await redis.publish(CHANGES_CHANNEL, JSON.stringify({ cause: 'readings', keys, at, nodes: batch }));
      named += batch.length;
      await new Promise((r) => setTimeout(r, 50));
    }
    // The last refresh.
    await new Promise((r) => setTimeout(r, 500));
    const used = process.cpuUsage(cpu);
    const redisUsed = (await redisCpu()) - redisBefore;
    console.log(
      `round ${round}, ${keys}: ${named} nodes named; the view ${((used.user + used.system) / named).toFixed(2)} µs a node, Redis ${((redisUsed * 1e6) / named).toFixed(2)} µs`,
    );
  }
}
await view.stop();
for (const client of [redis, viewRedis, viewSubscriber]) client.disconnect();
await server.dispose();
