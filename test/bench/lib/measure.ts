import { CpuMeter, type CpuTarget, hostBusyPercent } from './cpu.ts';
import { closedLoop, itemsFor, type LoopResult, preGenerated } from './load.ts';
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
  /** Cap on pre-generated items; default: what 2.5 M readings need (set it when items share memory). */
  readonly maxItems?: number;
  /** Makes the next item (a request body, a batch...); called before the timed window. */
  readonly make: () => T;
  /** Sends one item; throws when the answer is not the expected one. */
  readonly call: (item: T) => Promise<void>;
  readonly cpuTargets: readonly CpuTarget[];
  /**
   * The commands this case sends itself (e.g. evalsha, eval), whose time is the
   * Redis cost of its readings; commands run inside a script are counted apart.
   */
  readonly redisCommands: readonly string[];
  /** Runs before the warm-up (e.g. empties the stream the case writes). */
  readonly before?: () => Promise<void>;
  /** Checks what reached Redis, given every item that completed (warm-up included). */
  readonly verify?: (completedItems: number) => Promise<void>;
  /** After failed calls: what reached Redis anyway, for the failure message. */
  readonly explainFailure?: (tally: { succeeded: number; failed: number }) => Promise<string>;
}

/**
 * One benchmark case: an untimed warm-up (which also sizes the pre-generated
 * items), then a timed closed-loop window with CPU and Redis command stats,
 * then the checks. Throws BenchFailure on any failed call or check.
 */
export async function measureCase<T>(context: SuiteContext, spec: CaseSpec<T>): Promise<CaseResult> {
  const { options, redis } = context;
  await waitForQuiet(context, options.quietWaitSeconds);
  context.log(`${spec.suite} / ${spec.name}: warm-up`);
  await spec.before?.();
  const warmup = await closedLoop({
    next: spec.make,
    concurrency: spec.concurrency,
    durationMs: Math.max(options.warmupSeconds, 0.25) * 1000,
    call: spec.call,
  });
  await failOn(spec, 'warm-up', warmup);

  const count = itemsFor(
    warmup,
    options.seconds,
    spec.concurrency,
    spec.maxItems ?? Math.max(1, Math.floor(MAX_READINGS_PER_CASE / spec.readingsPerItem)),
  );
  const items = Array.from({ length: count }, spec.make);
  context.log(`${spec.suite} / ${spec.name}: ${options.seconds} s timed (${count} items ready)`);

  await redis.resetStats();
  const cpu = new CpuMeter(spec.cpuTargets);
  cpu.start();
  const supply = preGenerated(items, spec.make);
  const timed = await closedLoop({
    next: supply.next,
    concurrency: spec.concurrency,
    durationMs: options.seconds * 1000,
    call: spec.call,
  });
  const cpuPercent = cpu.stop();
  const redisCommands = await redis.commandStats();
  await failOn(spec, 'timed window', timed, warmup.completed);
  await spec.verify?.(warmup.completed + timed.completed);

  const [p50, p99] = timed.latency.percentiles(50, 99);
  const readings = timed.completed * spec.readingsPerItem;
  const redisUsec = redisCommands
    .filter((c) => spec.redisCommands.includes(c.command))
    .reduce((sum, c) => sum + c.usec, 0);
  const notes: string[] = [];
  const other = cpuPercent.other;
  if (other !== undefined && other > NOISY_OTHER_PERCENT) {
    notes.push(`other processes used ${other.toFixed(0)} % of a core during the window: figures are skewed`);
  }
  if (supply.extra() > 0) {
    notes.push(
      `${supply.extra()} of ${timed.completed} items were generated during the window (too few pre-generated)`,
    );
  }
  return {
    suite: spec.suite,
    case: spec.name,
    batch: spec.batch,
    concurrency: spec.concurrency,
    seconds: timed.seconds,
    readings,
    requests: timed.completed * spec.requestsPerItem,
    readingsPerSec: readings / timed.seconds,
    requestsPerSec: (timed.completed * spec.requestsPerItem) / timed.seconds,
    p50Ms: p50,
    p99Ms: p99,
    cpu: cpuPercent,
    redisUsecPerReading: redisUsec / readings,
    redisCommands,
    notes,
  };
}

/** Waits (at most `seconds`) until the machine is quiet: under NOISY_OTHER_PERCENT busy for a second. */
async function waitForQuiet(context: SuiteContext, seconds: number): Promise<void> {
  if (seconds <= 0) return;
  const deadline = Date.now() + seconds * 1000;
  let busy = await hostBusyPercent(1_000);
  if (busy <= NOISY_OTHER_PERCENT) return;
  context.log(`machine ${busy.toFixed(0)} % busy: waiting up to ${seconds} s for it to settle`);
  while (busy > NOISY_OTHER_PERCENT && Date.now() < deadline) busy = await hostBusyPercent(1_000);
  if (busy > NOISY_OTHER_PERCENT) context.log(`still ${busy.toFixed(0)} % busy: measuring anyway`);
}

async function failOn<T>(spec: CaseSpec<T>, phase: string, result: LoopResult, earlier = 0): Promise<void> {
  const label = `${spec.suite} / ${spec.name}`;
  if (result.failures > 0) {
    const tally = { succeeded: earlier + result.completed, failed: result.failures };
    const explained = await spec.explainFailure?.(tally).catch((error: unknown) => String(error));
    throw new BenchFailure(
      `${label}: ${result.failures} failed calls in the ${phase} ` +
        `(${result.completed} succeeded); first: ${result.failureSamples.join(' | ')}` +
        (explained ? `; ${explained}` : ''),
    );
  }
  if (result.completed === 0) throw new BenchFailure(`${label}: nothing completed in the ${phase}`);
}
