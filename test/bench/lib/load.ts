import { LatencyRecorder } from './stats.ts';

export interface LoopResult {
  /** Calls that completed without error. */
  readonly completed: number;
  /** From the first call to the last completion, seconds. */
  readonly seconds: number;
  readonly latency: LatencyRecorder;
  readonly failures: number;
  /** The first few distinct failure messages. */
  readonly failureSamples: readonly string[];
  /** The supplier ran dry before the deadline (the window is shorter than asked). */
  readonly exhausted: boolean;
}

const MAX_FAILURES = 100;

/**
 * A closed-loop load generator: `concurrency` workers each take the next item,
 * await `call(item)`, record its latency and repeat, until the deadline or
 * the items run out. Calls in flight at the deadline are waited for and
 * counted. It stops early after too many failures.
 */
export async function closedLoop<T>(options: {
  readonly next: () => T | undefined;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly call: (item: T) => Promise<void>;
}): Promise<LoopResult> {
  const { next, concurrency, durationMs, call } = options;
  const latency = new LatencyRecorder();
  const samples = new Set<string>();
  let completed = 0;
  let failures = 0;
  let exhausted = false;
  const started = performance.now();
  const deadline = started + durationMs;

  const worker = async () => {
    while (failures < MAX_FAILURES) {
      const t0 = performance.now();
      if (t0 >= deadline) return;
      const item = next();
      if (item === undefined) {
        exhausted = true;
        return;
      }
      try {
        await call(item);
        latency.add(performance.now() - t0);
        completed++;
      } catch (error) {
        failures++;
        if (samples.size < 5) samples.add((error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return {
    completed,
    seconds: (performance.now() - started) / 1000,
    latency,
    failures,
    failureSamples: [...samples],
    exhausted,
  };
}

/**
 * Hands out a pre-generated array in order, then (should the window outlast
 * it) items made on the spot; `extra` tells how many were.
 */
export function preGenerated<T>(items: readonly T[], make: () => T): { next: () => T; extra: () => number } {
  let index = 0;
  let extra = 0;
  return {
    next: () => {
      if (index < items.length) return items[index++] as T;
      extra++;
      return make();
    },
    extra: () => extra,
  };
}

/**
 * How many items to pre-generate for a timed window, from the rate seen in
 * the warm-up: four times what that rate needs (a warmed-up process is faster),
 * at least a few per worker, at most `max`.
 */
export function itemsFor(warmup: LoopResult, seconds: number, concurrency: number, max: number): number {
  const rate = warmup.seconds > 0 ? warmup.completed / warmup.seconds : 0;
  return Math.min(max, Math.max(concurrency * 4, Math.ceil(rate * seconds * 4) + concurrency));
}
