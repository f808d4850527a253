import { reconcileKeys } from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';
import { runScript } from '../scripts.ts';

export type LeaseMode = 'acquire' | 'renew' | 'release';

/**
 * The backfill's control protocol: one scheduler at a time holds the lock (a
 * lease, the same script as a shard's); any process may ask it for a run (a
 * request it takes once); the running scheduler publishes its progress and,
 * at the end, the run's report. Values are JSON, shaped by the backfill.
 */
export class ReconcileControl {
  readonly #redis: Redis | Cluster;

  constructor(redis: Redis | Cluster) {
    this.#redis = redis;
  }

  /** Whether a scheduler holds the lock (a process could open the warehouse itself when none does). */
  async held(): Promise<boolean> {
    return (await this.#redis.exists(reconcileKeys.lock)) === 1;
  }

  /** Takes, renews or releases the lock for `holder`; true when it holds (or released) it. */
  async lease(mode: LeaseMode, holder: string, ms: number): Promise<boolean> {
    return (await runScript(this.#redis, 'lease', [reconcileKeys.lock], [mode, holder, ms])) === 1;
  }

  /** Asks the scheduler for a run (one request waits at a time; a newer one replaces it). */
  async ask(request: object): Promise<void> {
    await this.#redis.set(reconcileKeys.request, JSON.stringify(request));
  }

  /** The waiting request, taken (its JSON, for the scheduler to check), or null. */
  takeRequest(): Promise<string | null> {
    return this.#redis.getdel(reconcileKeys.request);
  }

  async publishProgress(progress: object): Promise<void> {
    await this.#redis.set(reconcileKeys.progress, JSON.stringify(progress));
  }

  /** The progress last published, parsed, or null. */
  async progress(): Promise<unknown> {
    return parsed(await this.#redis.get(reconcileKeys.progress));
  }

  async publishReport(report: object): Promise<void> {
    await this.#redis.set(reconcileKeys.last, JSON.stringify(report));
  }

  /** The last run's report, parsed, or null when no run ever finished. */
  async lastReport(): Promise<unknown> {
    return parsed(await this.#redis.get(reconcileKeys.last));
  }
}

function parsed(raw: string | null): unknown {
  return raw === null ? null : JSON.parse(raw);
}
