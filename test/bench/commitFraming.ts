/**
 * What ioredis spends framing a state commit's arguments, the aggregator's
 * side of a commit of N nodes (a 530-byte head and a 200-byte recent pane
 * each): two arguments a field, as commits were sent before, against the
 * fields packed in one argument (PackedHashWrites' layout). Only the
 * framing (Command.toWritable, as a pipeline sends it), no Redis.
 *
 *   node test/bench/commitFraming.ts [nodes=10000] [rounds=20]
 */
import { Command } from 'ioredis';

const nodes = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 20);
const keys = Array.from({ length: nodes }, (_, i) => `{readings}:agg:node:N${i}`);
const head = Buffer.alloc(530, 7);
const recent = Buffer.alloc(200, 3);
const fixed = ['token', 'commit-id', 86_400, 'aggregator', 100_000, '1'];

function perArgument(): (string | number | Buffer)[] {
  const args: (string | number | Buffer)[] = ['sha', 8 + nodes, ...Array(8).fill('key'), ...keys, ...fixed];
  args.push(nodes);
  for (let i = 0; i < nodes; i++) args.push(2, 'h', head, 't0', recent);
  return args;
}

function packed(): (string | number | Buffer)[] {
  const args: (string | number | Buffer)[] = ['sha', 8 + nodes, ...Array(8).fill('key'), ...keys, ...fixed];
  const buffer = Buffer.allocUnsafe(nodes * (4 + 2 + 1 + 4 + head.length + 2 + 2 + 4 + recent.length));
  let at = 0;
  for (let i = 0; i < nodes; i++) {
    at = buffer.writeUInt32LE(2, at);
    at = buffer.writeUInt16LE(1, at);
    at += buffer.write('h', at, 'latin1');
    at = buffer.writeUInt32LE(head.length, at);
    at += head.copy(buffer, at);
    at = buffer.writeUInt16LE(2, at);
    at += buffer.write('t0', at, 'latin1');
    at = buffer.writeUInt32LE(recent.length, at);
    at += recent.copy(buffer, at);
  }
  args.push(nodes, buffer.subarray(0, at));
  return args;
}

for (const [name, make] of [
  ['per argument', perArgument],
  ['packed', packed],
  ['per argument', perArgument],
  ['packed', packed],
] as const) {
  const started = performance.now();
  let bytes = 0;
  for (let k = 0; k < rounds; k++) {
    const written = new Command('evalsha', make()).toWritable(undefined as never) as Buffer;
    // A pipeline concatenates what its commands wrote.
    bytes += Buffer.concat([written]).length;
  }
  const ms = (performance.now() - started) / rounds;
  console.log(
    `${name}: ${ms.toFixed(1)} ms a commit of ${nodes} nodes, ${((ms * 1000) / nodes).toFixed(2)} µs a node (${(bytes / rounds / 2 ** 20).toFixed(1)} MiB)`,
  );
}
