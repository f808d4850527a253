import type { BenchOptions } from './options.ts';
import type { BenchRedis } from './redis.ts';

/** One measured row of the report. */
export interface CaseResult {
  readonly suite: string;
  readonly case: string;
  /** Readings per request (HTTP) or per call/entry (baselines); undefined when it does not apply. */
  readonly batch?: number;
  /** Requests (or calls) in flight at once. */
  readonly concurrency?: number;
  /** Length of the timed window, seconds. */
  readonly seconds: number;
  /** Readings (or stream entries, for the per-reading XADD baseline) completed in the window. */
  readonly readings: number;
  /** Requests (HTTP), calls or stream entries completed in the window. */
  readonly requests: number;
  readonly readingsPerSec: number;
  readonly requestsPerSec: number;
  /** Latency of one request/call, milliseconds; absent where it is not measured. */
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  /** CPU time per process over the timed window, in % of one core. */
  readonly cpu?: Readonly<Record<string, number>>;
  /** Redis main-thread time of the case's top-level command(s) per reading, µs (from commandstats). */
  readonly redisUsecPerReading?: number;
  /** Redis INFO commandstats over the timed window. */
  readonly redisCommands?: readonly CommandStat[];
  readonly notes?: readonly string[];
  /** Named figures of the case beyond the columns (memory, drain time…), for --json. */
  readonly figures?: Readonly<Record<string, number | string | boolean | null>>;
}

export interface CommandStat {
  readonly command: string;
  readonly calls: number;
  readonly usec: number;
  readonly usecPerCall: number;
}

export interface SuiteContext {
  readonly redis: BenchRedis;
  readonly options: BenchOptions;
  /** Progress line on stderr. */
  log(message: string): void;
  /** Adds a measured row to the report (rows of a suite that fails later are kept). */
  record(result: CaseResult): void;
}

export interface Suite {
  readonly name: string;
  readonly description: string;
  run(context: SuiteContext): Promise<void>;
}

/** A check failed: the figures of this suite are not to be trusted. */
export class BenchFailure extends Error {
  override readonly name = 'BenchFailure';
}
