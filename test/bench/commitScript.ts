/**
 * Redis's side of the aggregator's state commit (commitShard.lua): commits
 * of N nodes, each a head (545 bytes) and a detector (845 bytes; `head`: the
 * head alone, the usual commit, the detector's state going every 64
 * readings), as the e2e case writes them, against the Redis at <url>; the
 * script's time per call (INFO commandstats) and per node.
 *
 *   node test/bench/commitScript.ts <redis-url> [nodes=10000] [commits=20] [head]
 */
import { randomBytes } from 'node:crypto';
import { type RedisConfig, shardKeys } from '@streamgauge/core';
import { aggregateCommitKeys, connectRedis, PackedHashWrites, prepareCommit } from '@streamgauge/redis';

const url = process.argv[2];
if (url === undefined) throw new Error('usage: commitScript.ts <redis-url> [nodes] [commits]');
const nodes = Number(process.argv[3] ?? 10_000);
const commits = Number(process.argv[4] ?? 20);
const headOnly = process.argv[5] === 'head';
const redis = connectRedis({ url } as RedisConfig, { name: 'bench' });
const shard = shardKeys(0, 1);
const keys = aggregateCommitKeys(shard);
const token = 'bench-token';
await redis.set(shard.lease, token);
const head = randomBytes(545);
const anom = randomBytes(845);
const evalshaUsec = async () => {
  const stats = (await redis.info('commandstats')).match(/cmdstat_evalsha:calls=(\d+),usec=(\d+)/);
  return stats ? Number(stats[2]) : 0;
};
const perNode: number[] = [];
for (let c = 0; c < commits; c++) {
  const writes = new PackedHashWrites(nodes * 1500);
  for (let n = 0; n < nodes; n++) {
    writes.hash(shard.aggregateNode(`N${n}`));
    writes.set('h', head);
    if (!headOnly) writes.set('anom', anom);
  }
  const run = prepareCommit(
    redis,
    keys,
    { group: 'aggregator', writes, ackIds: [], deadLetters: [], failures: [], counters: { applied: nodes } },
    { token, ttlSeconds: 86_400 },
  );
  const before = await evalshaUsec();
  await run();
  perNode.push(((await evalshaUsec()) - before) / nodes);
}
perNode.sort((a, b) => a - b);
console.log(
  `${commits} commits of ${nodes} nodes: commitShard.lua ${perNode[Math.floor(commits / 2)]?.toFixed(2)} µs a node (median)`,
);
redis.disconnect();
