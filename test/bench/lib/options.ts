import { BenchFailure } from './types.ts';

export interface BenchOptions {
  /** Timed window per case, seconds (BENCH_SECONDS, default 5). */
  readonly seconds: number;
  /** Untimed warm-up per case, seconds (BENCH_WARMUP_SECONDS, default 1). */
  readonly warmupSeconds: number;
  /** An existing Redis to use instead of a throw-away server (BENCH_REDIS_URL). */
  readonly redisUrl: string | undefined;
  /** Before each case, wait up to this long for other processes to quiet down (BENCH_QUIET_WAIT_SECONDS, default 0). */
  readonly quietWaitSeconds: number;
  /** Directory for `node --cpu-prof` profiles of the ingest process (BENCH_CPU_PROF_DIR). */
  readonly cpuProfDir: string | undefined;
  /** Extra flags for the aggregator's node in the freshness cases, e.g. `--trace-gc-nvp` (BENCH_AGGREGATOR_NODE_ARGS). */
  readonly aggregatorNodeArgs: readonly string[];
}

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): BenchOptions {
  return {
    seconds: positive(env, 'BENCH_SECONDS', 5),
    warmupSeconds: positive(env, 'BENCH_WARMUP_SECONDS', 1, true),
    redisUrl: text(env, 'BENCH_REDIS_URL'),
    quietWaitSeconds: positive(env, 'BENCH_QUIET_WAIT_SECONDS', 0, true),
    cpuProfDir: text(env, 'BENCH_CPU_PROF_DIR'),
    aggregatorNodeArgs: text(env, 'BENCH_AGGREGATOR_NODE_ARGS')?.split(/\s+/) ?? [],
  };
}

function text(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number, zeroAllowed = false): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zeroAllowed)) {
    throw new BenchFailure(
      `${name}: expected a ${zeroAllowed ? 'non-negative' : 'positive'} number, got ${raw}`,
    );
  }
  return value;
}
