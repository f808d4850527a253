/**
 * Redis's side of the aggregator's state commit: commits of N nodes as the
 * fresh case writes them (each a head of 545 bytes; a third of them also
 * a detector checkpoint: its state, 2.3 KB, and two scores of 4.2 KB;
 * random bytes), sent three ways, alternated:
 *
 * - `script, one argument`: commitShard.lua with the fields packed in one
 *   argument (how commits went until the sixteenth session);
 * - `script`: the same in arguments of 64 KB (PackedHashWrites' default);
 * - `transaction`: the fields as commands, the script for the rest
 *   (CommitConnection, the aggregator's way on a standalone Redis).
 *
 * Per commit, Redis' CPU (INFO cpu: parsing the commit included) and the
 * round trip as the aggregator sees it, medians.
 *
 *   node test/bench/commitWays.ts [nodes=10000] [commits=6] [redis-url]
 */
import { randomBytes } from 'node:crypto';
import { type RedisConfig, shardKeys } from '@streamgauge/core';
import {
  aggregateCommitKeys,
  CommitConnection,
  connectRedis,
  PackedHashWrites,
  prepareCommit,
} from '@streamgauge/redis';
import { RedisServer } from '@streamgauge/testkit';

const nodes = Number(process.argv[2] ?? 10_000);
const commits = Number(process.argv[3] ?? 6);
const server = process.argv[4] === undefined ? await RedisServer.start() : undefined;
const url = process.argv[4] ?? (server as RedisServer).url;
const redis = connectRedis({ url } as RedisConfig, { name: 'bench' });
const connection = CommitConnection.beside(redis, 'bench-commits') as CommitConnection;
while (!connection.ready) await new Promise((r) => setTimeout(r, 10));
const shard = shardKeys(0, 1);
const keys = aggregateCommitKeys(shard);
const token = 'bench-token';
await redis.set(shard.lease, token);

const redisCpuMs = async () => {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
};

const ways = {
  'script, one argument': { chunkBytes: 1024 * 1024 * 1024, connection: undefined },
  script: { chunkBytes: undefined, connection: undefined },
  transaction: { chunkBytes: undefined, connection },
} as const;
const figures = new Map<string, { cpu: number[]; trip: number[]; bytes: number }>();
for (let c = 0; c < commits; c++) {
  for (const [way, { chunkBytes, connection: through }] of Object.entries(ways)) {
    const writes = new PackedHashWrites(nodes * 6000, chunkBytes === undefined ? {} : { chunkBytes });
    for (let n = 0; n < nodes; n++) {
      writes.hash(shard.aggregateNode(`N${n}`));
      writes.set('h', randomBytes(545));
      if (n % 3 !== c % 3) continue;
      writes.set('anom', randomBytes(2300));
      writes.set('score:flow_rate', randomBytes(4200));
      writes.set('score:pressure', randomBytes(4200));
    }
    const run = prepareCommit(
      redis,
      keys,
      {
        group: 'aggregator',
        writes,
        ackIds: [],
        deadLetters: [],
        failures: [],
        counters: { applied: nodes },
      },
      { token, ttlSeconds: 86_400, ...(through && { connection: through }) },
    );
    const cpu = await redisCpuMs();
    const started = performance.now();
    await run();
    const trip = performance.now() - started;
    const figure = figures.get(way) ?? { cpu: [], trip: [], bytes: 0 };
    figure.cpu.push((await redisCpuMs()) - cpu);
    figure.trip.push(trip);
    figure.bytes = writes.arena.used;
    figures.set(way, figure);
  }
}
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
console.log(`${commits} commits each way of ${nodes} nodes (a third with a checkpoint):`);
for (const [way, { cpu, trip, bytes }] of figures)
  console.log(
    `  ${way.padEnd(22)} ${(bytes / 1e6).toFixed(1)} MB: Redis CPU ${median(cpu).toFixed(0)} ms (${cpu.map((x) => x.toFixed(0)).join(', ')}), round trip ${median(trip).toFixed(0)} ms`,
  );
await connection.close();
redis.disconnect();
await server?.stop();
