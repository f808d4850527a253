/**
 * Where a running Redis spends its command time, by command and by script
 * (EVALSHA named after its script): SLOWLOG with a threshold of 0 for a few
 * seconds, then the previous settings back. INFO commandstats lumps every
 * script under `evalsha`; this says which. Commands a script runs are
 * listed apart (their time is in the script's). The log's own cost and a
 * busy machine inflate what it shows (the times are wall time): compare
 * shares, not absolute figures. It empties the slow log: not for a server
 * whose log someone reads.
 *
 *   node test/bench/redisScriptTime.ts <redis-url> [seconds=4]
 *
 * Against a bench case's throw-away server: its port is in `ss -ltnp`.
 */
import { scriptNamesBySha } from '@streamgauge/redis';
import { Redis } from 'ioredis';

const url = process.argv[2];
if (url === undefined) throw new Error('usage: redisScriptTime.ts <redis-url> [seconds]');
const seconds = Number(process.argv[3] ?? 4);
const names = scriptNamesBySha();
const redis = new Redis(url);
const setting = async (name: string) => ((await redis.config('GET', name)) as string[])[1] as string;
const threshold = await setting('slowlog-log-slower-than');
const length = await setting('slowlog-max-len');
try {
  await redis.config('SET', 'slowlog-max-len', '2000000');
  await redis.slowlog('RESET');
  await redis.config('SET', 'slowlog-log-slower-than', '0');
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  await redis.config('SET', 'slowlog-log-slower-than', threshold);
  const elapsed = (performance.now() - started) / 1000;
  const entries = (await redis.slowlog('GET', 2_000_000)) as [number, number, number, string[], string][];
  const by = new Map<string, { calls: number; usec: number; inner: boolean }>();
  for (const [, , usec, args, client] of entries) {
    const command = String(args[0]).toLowerCase();
    // A command a script ran is logged with the client `?:0`.
    const inner = client === '?:0';
    const name =
      command === 'evalsha'
        ? (names.get(String(args[1])) ?? `evalsha ${String(args[1]).slice(0, 8)}`)
        : command;
    const key = inner ? `  (in scripts) ${name}` : name;
    const stat = by.get(key) ?? { calls: 0, usec: 0, inner };
    stat.calls++;
    stat.usec += Number(usec);
    by.set(key, stat);
  }
  const top = [...by].filter(([, s]) => !s.inner);
  const total = top.reduce((sum, [, s]) => sum + s.usec, 0);
  console.log(
    `${elapsed.toFixed(1)} s, ${entries.length} commands logged; top-level commands took ${((total / 1e6 / elapsed) * 100).toFixed(1)} % of the time`,
  );
  console.log('command                          calls/s    µs/call   % of the time');
  for (const [name, s] of [...by].sort((a, b) => b[1].usec - a[1].usec).slice(0, 20)) {
    console.log(
      `${name.padEnd(30)} ${(s.calls / elapsed).toFixed(s.calls / elapsed < 10 ? 1 : 0).padStart(9)} ${(s.usec / s.calls).toFixed(1).padStart(10)} ${((s.usec / 1e6 / elapsed) * 100).toFixed(1).padStart(10)}`,
    );
  }
} finally {
  await redis.config('SET', 'slowlog-log-slower-than', threshold);
  await redis.config('SET', 'slowlog-max-len', length);
  await redis.slowlog('RESET');
  redis.disconnect();
}
