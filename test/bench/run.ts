/**
 * `pnpm bench [suite...] [--json]`: runs the benchmark suites (all by default)
 * against a throw-away redis-server (or BENCH_REDIS_URL) and prints a table.
 * Progress goes to stderr; with --json the results go to stdout as JSON and
 * the table to stderr. Exit code 0 when every suite ran and passed its checks,
 * 1 when one failed, 2 on a usage error.
 */
import { execFileSync } from 'node:child_process';
import { arch, cpus, release, type } from 'node:os';
import { hostBusyPercent } from './lib/cpu.ts';
import { killLiveIngests } from './lib/ingestProcess.ts';
import { optionsFromEnv } from './lib/options.ts';
import { BenchRedis } from './lib/redis.ts';
import { formatCount, formatMs, renderTable } from './lib/stats.ts';
import type { CaseResult, SuiteContext } from './lib/types.ts';
import { BenchFailure } from './lib/types.ts';
import { SUITES } from './suites.ts';

interface Failure {
  readonly suite: string;
  readonly error: string;
}

const USAGE = `usage: pnpm bench [suite...] [--json] [--list]

Suites: ${SUITES.map((s) => s.name).join(', ')} (default: all)
Environment: BENCH_SECONDS (timed window per case, default 5), BENCH_WARMUP_SECONDS (default 1),
  BENCH_REDIS_URL (a scratch Redis instead of a throw-away redis-server; BENCH_REDIS_FLUSH=1 to
  allow emptying a non-empty one), BENCH_CPU_PROF_DIR (write --cpu-prof profiles of the services a case starts),
  BENCH_INGEST_CASES (batch:in-flight pairs, default 1:32,100:16,1000:4),
  BENCH_QUIET_WAIT_SECONDS (on a shared machine: wait up to this long before each case for it to be idle)`;

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

async function main(argv: readonly string[]): Promise<number> {
  const flags = argv.filter((a) => a.startsWith('-'));
  const names = argv.filter((a) => !a.startsWith('-'));
  const unknownFlag = flags.find((f) => !['--json', '--list', '--help', '-h'].includes(f));
  if (flags.includes('--help') || flags.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  if (flags.includes('--list')) {
    for (const suite of SUITES) console.log(`${suite.name}\t${suite.description}`);
    return 0;
  }
  const unknownSuite = names.find((n) => !SUITES.some((s) => s.name === n));
  if (unknownFlag !== undefined || unknownSuite !== undefined) {
    console.error(
      `bench: unknown ${unknownFlag !== undefined ? `option ${unknownFlag}` : `suite ${unknownSuite}`}`,
    );
    console.error(USAGE);
    return 2;
  }
  const json = flags.includes('--json');
  const selected = names.length === 0 ? SUITES : SUITES.filter((s) => names.includes(s.name));
  const options = optionsFromEnv();

  const busyBefore = await hostBusyPercent(1_000);
  if (busyBefore > 20) {
    log(`WARNING: the machine was ${busyBefore.toFixed(0)} % busy before the run: figures will be skewed`);
  }
  const redis = await BenchRedis.open(options.redisUrl, process.env.BENCH_REDIS_FLUSH === '1');
  const stopOnSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping`);
    killLiveIngests();
    void redis.close().finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);

  const cpu = cpus();
  const meta = {
    date: new Date().toISOString(),
    commit: gitCommit(),
    node: process.version,
    cpu: `${cpu[0]?.model.trim() ?? 'unknown'} × ${cpu.length}`,
    os: `${type()} ${release()} ${arch()}`,
    redis: `redis-server ${redis.version} (${redis.server ? 'throw-away, no persistence' : 'BENCH_REDIS_URL'})`,
    secondsPerCase: options.seconds,
    warmupSeconds: options.warmupSeconds,
    /** CPU use of the whole machine in the second before the run, % of one core. */
    busyBeforePercent: Math.round(busyBefore),
  };
  const results: CaseResult[] = [];
  const failures: Failure[] = [];
  const context: SuiteContext = { redis, options, log, record: (result) => results.push(result) };
  try {
    for (const suite of selected) {
      log(`suite ${suite.name}`);
      try {
        await redis.flush();
        await suite.run(context);
      } catch (error) {
        const message =
          error instanceof BenchFailure ? error.message : ((error as Error).stack ?? String(error));
        failures.push({ suite: suite.name, error: (error as Error).message });
        log(`SUITE ${suite.name} FAILED: ${message}`);
      }
    }
  } finally {
    killLiveIngests();
    await redis.close();
  }

  const report = renderReport(meta, results, failures);
  if (json) {
    process.stderr.write(`${report}\n`);
    process.stdout.write(`${JSON.stringify({ meta, results, failures }, null, 2)}\n`);
  } else {
    process.stdout.write(`${report}\n`);
  }
  return failures.length === 0 ? 0 : 1;
}

function renderReport(
  meta: Record<string, unknown>,
  results: readonly CaseResult[],
  failures: readonly Failure[],
): string {
  const lines: string[] = [];
  lines.push('');
  lines.push(`streamgauge benchmarks, ${meta.date}, commit ${meta.commit}`);
  lines.push(`node ${meta.node}; CPU ${meta.cpu}; ${meta.os}`);
  lines.push(`${meta.redis}; ${meta.secondsPerCase} s per case after ${meta.warmupSeconds} s warm-up`);
  lines.push(`machine busy before the run: ${meta.busyBeforePercent} % of one core`);
  lines.push('');
  const header = [
    'suite',
    'case',
    'readings/s',
    'req/s',
    'p50 ms',
    'p99 ms',
    'in flight',
    'Redis µs/reading',
    'CPU % ingest/aggregator/redis/bench/other',
  ];
  const rows = results.map((r) => [
    r.suite,
    r.case,
    formatCount(r.readingsPerSec),
    formatCount(r.requestsPerSec),
    formatMs(r.p50Ms),
    formatMs(r.p99Ms),
    r.concurrency === undefined ? '-' : String(r.concurrency),
    r.redisUsecPerReading === undefined
      ? '-'
      : r.redisUsecPerReading.toFixed(r.redisUsecPerReading < 0.1 ? 3 : 2),
    ['ingest', 'aggregator', 'redis', 'bench', 'other'].map((k) => cpuCell(r.cpu?.[k])).join(' / '),
  ]);
  lines.push(renderTable(header, rows, [false, false, true, true, true, true, true, true, true]));
  lines.push('');
  lines.push(
    'Redis command time in the timed window (INFO commandstats; script-internal commands count in both):',
  );
  for (const r of results) {
    const top = (r.redisCommands ?? [])
      .slice(0, 5)
      .map((c) => `${c.command} ${formatCount(c.calls)}× ${c.usecPerCall.toFixed(2)} µs`)
      .join(', ');
    lines.push(`  ${r.case}: ${top || '-'}`);
  }
  for (const r of results) for (const note of r.notes ?? []) lines.push(`note: ${r.case}: ${note}`);
  if (failures.length > 0) {
    lines.push('');
    for (const f of failures) lines.push(`FAILED: suite ${f.suite}: ${f.error}`);
  }
  return lines.join('\n');
}

function cpuCell(value: number | undefined): string {
  return value === undefined ? '-' : value.toFixed(0);
}

/** The short commit, marked when tracked files differ from it. */
function gitCommit(): string {
  const git = (...args: string[]) =>
    execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const commit = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no') === ''
      ? commit
      : `${commit} (uncommitted changes)`;
  } catch {
    return 'unknown';
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  killLiveIngests();
  console.error(
    `bench: ${error instanceof BenchFailure ? error.message : ((error as Error).stack ?? String(error))}`,
  );
  process.exitCode = 1;
}
