import { CpuMeter, type CpuTarget } from './cpu.ts';
import { closedLoop, fromArray, itemsFor, type LoopResult } from './load.ts';
import type { CaseResult, SuiteContext } from './types.ts';
import { BenchFailure } from './types.ts';

/** At most this many readings are pre-generated for one timed window (memory). */
const MAX_READINGS_PER_CASE = 2_500_000;
/** Above this much CPU used by other processes, a case's figures are flagged. */
const NOISY_OTHER_PERCENT = 15;

export interface CaseSpec<T> {
  readonly suite: string;
  readonly name: string;
  readonly batch: number;
  readonly concurrency: number;
  /** Readings and requests (calls, commands) one item stands for. */
  readonly readingsPerItem: number;
  readonly requestsPerItem: number;
  /** Makes the next item (a request body, a batch...); called before the timed window. */
  readonly make: () => T;
  /** Sends one item; throws when the answer is not the expected one. */
  readonly call: (item: T) => Promise<void>;
  readonly cpuTargets: readonly CpuTarget[];
  /** Runs before the warm-up (e.g. remembers the stream's last id). */
  readonly before?: () => Promise<void>;
  /** Checks what reached Redis, given every item that completed (warm-up included). */
  readonly verify?: (completedItems: number) => Promise<void>;
}

/**
 * One benchmark case: an untimed warm-up (which also sizes the pre-generated
 * items), then a timed closed-loop window with CPU and Redis command stats,
 * then the checks. Throws BenchFailure on any failed call or check.
 */
export async function measureCase<T>(context: SuiteContext, spec: CaseSpec<T>): Promise<CaseResult> {
  const { options, redis } = context;
  context.log(`${spec.suite} / ${spec.name}: warm-up`);
  await spec.before?.();
  const warmup = await closedLoop({
    next: spec.make,
    concurrency: spec.concurrency,
    durationMs: Math.max(options.warmupSeconds, 0.25) * 1000,
    call: spec.call,
  });
  failOn(`${spec.suite} / ${spec.name}`, 'warm-up', warmup);

  const count = itemsFor(
    warmup,
    options.seconds,
    spec.concurrency,
    Math.max(1, Math.floor(MAX_READINGS_PER_CASE / spec.readingsPerItem)),
  );
  const items = Array.from({ length: count }, spec.make);
  context.log(`${spec.suite} / ${spec.name}: ${options.seconds} s timed (${count} items ready)`);

  await redis.resetStats();
  const cpu = new CpuMeter(spec.cpuTargets);
  cpu.start();
  const timed = await closedLoop({
    next: fromArray(items),
    concurrency: spec.concurrency,
    durationMs: options.seconds * 1000,
    call: spec.call,
  });
  const cpuPercent = cpu.stop();
  const redisCommands = await redis.commandStats();
  failOn(`${spec.suite} / ${spec.name}`, 'timed window', timed);
  await spec.verify?.(warmup.completed + timed.completed);

  const [p50, p99] = timed.latency.percentiles(50, 99);
  const notes: string[] = [];
  const other = cpuPercent.other;
  if (other !== undefined && other > NOISY_OTHER_PERCENT) {
    notes.push(`other processes used ${other.toFixed(0)} % of a core during the window: figures are skewed`);
  }
  if (timed.exhausted) notes.push(`pre-generated items ran out: window ${timed.seconds.toFixed(2)} s`);
  return {
    suite: spec.suite,
    case: spec.name,
    batch: spec.batch,
    concurrency: spec.concurrency,
    seconds: timed.seconds,
    readings: timed.completed * spec.readingsPerItem,
    requests: timed.completed * spec.requestsPerItem,
    readingsPerSec: (timed.completed * spec.readingsPerItem) / timed.seconds,
    requestsPerSec: (timed.completed * spec.requestsPerItem) / timed.seconds,
    p50Ms: p50,
    p99Ms: p99,
    cpu: cpuPercent,
    redisCommands,
    notes,
  };
}

function failOn(label: string, phase: string, result: LoopResult): void {
  if (result.failures > 0) {
    throw new BenchFailure(
      `${label}: ${result.failures} failed calls in the ${phase} ` +
        `(${result.completed} succeeded); first: ${result.failureSamples.join(' | ')}`,
    );
  }
  if (result.completed === 0) throw new BenchFailure(`${label}: nothing completed in the ${phase}`);
}
