/**
 * Redis's side of the dashboard key writes (writeNodeKeys.lua): N nodes'
 * `latest` and `metadata` hashes through ReadModelWriter, the script's time
 * per key (INFO commandstats), against the Redis at <url>; and this
 * process's CPU per key (the writer's encoding and sending, the hashes'
 * formatting included).
 *
 *   node test/bench/nodeKeysScript.ts <redis-url> [nodes=10000] [rounds=10]
 */
import { latestHash, metadataHash, type RedisConfig } from '@streamgauge/core';
import { connectRedis, ReadModelWriter } from '@streamgauge/redis';

const url = process.argv[2];
if (url === undefined) throw new Error('usage: nodeKeysScript.ts <redis-url> [nodes] [rounds]');
const nodes = Number(process.argv[3] ?? 10_000);
const rounds = Number(process.argv[4] ?? 10);
const redis = connectRedis({ url } as RedisConfig, { name: 'bench' });
const writer = new ReadModelWriter(redis, 86_400);
const evalsha = async () => {
  const stats = (await redis.info('commandstats')).match(/cmdstat_evalsha:calls=(\d+),usec=(\d+)/);
  return stats ? Number(stats[2]) : 0;
};
const perKey: number[] = [];
const clientPerKey: number[] = [];
for (let r = 0; r < rounds; r++) {
  const cpu = process.cpuUsage();
  const at = Date.UTC(2026, 11, 5) + r * 10_000;
  for (let n = 0; n < nodes; n++) {
    writer.writeNode({
      nodeId: `N${n}`,
      latest: latestHash({
        timestamp: at,
        flow_rate: 12.345 + n / 7,
        pressure: 3.21 + r / 3,
        temperature: 14.5,
        volume: 1234.5 + r,
      }),
      metadata: metadataHash(`N${n}`, {
        node_name: { value: `Node ${n}` },
        node_type: { value: 'flow' },
        district_id: { value: 'D1' },
      } as never),
      metrics: new Map(),
    });
  }
  const before = await evalsha();
  await writer.flush();
  perKey.push(((await evalsha()) - before) / (2 * nodes));
  const used = process.cpuUsage(cpu);
  clientPerKey.push((used.user + used.system) / (2 * nodes));
}
const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]?.toFixed(2);
console.log(
  `${rounds} rounds of ${nodes} nodes' latest + metadata: writeNodeKeys.lua ${median(perKey)} µs a key, this process ${median(clientPerKey)} µs a key (medians)`,
);
redis.disconnect();
