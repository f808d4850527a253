import { randomUUID } from 'node:crypto';
import { type Clock, readModelKeys } from '@streamgauge/core';
import { CacheStatus, ReconcileControl, type ReconcileScope, type RedisClient } from '@streamgauge/redis';
import type { Logger } from 'pino';
import type { ReconcileProgress, ReconcileReport, Reconciler } from './reconciler.ts';

export interface SchedulerOptions {
  /** CACHE_REFRESH_HOURS. */
  readonly refreshMs: number;
  /** After a failed run, the next is tried this much later (or at the refresh, if sooner). */
  readonly retryMs: number;
  /** How often the lock is renewed and requests looked for. */
  readonly pollMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Called after each run this scheduler did: its status (`failed`: it threw) and duration (metrics). */
  readonly onRun?: (status: 'complete' | 'partial' | 'failed', durationMs: number) => void;
}

const LOCK_MS = 60_000;

/**
 * When backfills run: at start when the read model is empty (a cold start),
 * then every `refreshMs` after the last completed run, and on request
 * (`streamgauge backfill --now` while this process holds the warehouse).
 * One scheduler runs at a time across processes (a lock in Redis), and its
 * runs one after another.
 */
export class BackfillScheduler {
  readonly #redis: RedisClient;
  readonly #control: ReconcileControl;
  readonly #cache: CacheStatus;
  readonly #reconciler: Reconciler;
  readonly #options: SchedulerOptions;
  readonly #token = randomUUID();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #busy = false;
  #holding = false;
  #nextAt: number | undefined;
  #coldTriedAt = Number.NEGATIVE_INFINITY;
  #waiting: string | undefined;
  #polling: Promise<void> = Promise.resolve();
  #stopped = false;
  /** Aborted by stop(): a run in hand ends at its next step instead of waiting for aggregators that may be gone. */
  readonly #stopping = new AbortController();

  constructor(redis: RedisClient, reconciler: Reconciler, options: SchedulerOptions) {
    this.#redis = redis;
    this.#control = new ReconcileControl(redis);
    this.#cache = new CacheStatus(redis);
    this.#reconciler = reconciler;
    this.#options = options;
  }

  start(): void {
    const poll = () => {
      this.#polling = this.#poll()
        .catch((error: unknown) =>
          this.#options.logger.warn({ err: error }, 'backfill scheduler: poll failed'),
        )
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(poll, this.#options.pollMs);
        });
    };
    poll();
  }

  /**
   * Runs one backfill now (after the one in hand, if any). Fails with
   * BackfillBusyError when another process holds the scheduler's lock.
   */
  runNow(
    options: { request?: string; scope?: ReconcileScope; onProgress?: (p: ReconcileProgress) => void } = {},
  ): Promise<ReconcileReport> {
    const run = this.#running.then(async () => {
      if (this.#stopped) throw new Error('the backfill scheduler is stopping');
      if (!(await this.#lock())) {
        throw new BackfillBusyError('another process runs the backfill (it holds {reconcile}:lock)');
      }
      this.#holding = true;
      this.#busy = true;
      const retry = () =>
        this.#options.clock.now() + Math.min(this.#options.retryMs, this.#options.refreshMs);
      const started = performance.now();
      try {
        const report = await this.#reconciler.run({
          ...options,
          holding: () => this.#lock(),
          signal: this.#stopping.signal,
        });
        this.#nextAt =
          report.status === 'complete' ? this.#options.clock.now() + this.#options.refreshMs : retry();
        this.#options.onRun?.(report.status, performance.now() - started);
        return report;
      } catch (error) {
        this.#nextAt = retry();
        this.#options.onRun?.('failed', performance.now() - started);
        throw error;
      } finally {
        this.#busy = false;
      }
    });
    this.#running = run.catch(() => {});
    return run;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopping.abort(new Error('the backfill scheduler stopped before the run completed'));
    if (this.#timer) clearTimeout(this.#timer);
    await this.#polling;
    await this.#running;
    if (this.#holding) await this.#lease('release').catch(() => {});
  }

  async #poll(): Promise<void> {
    if (this.#stopped) return;
    const holding = await this.#lock();
    // Taken (again): the schedule is read afresh, another process may have run meanwhile.
    if (holding && !this.#holding) this.#nextAt = undefined;
    this.#holding = holding;
    if (!holding || this.#busy || this.#stopped) return;
    const now = this.#options.clock.now();
    this.#nextAt ??= await this.#firstRun(now);
    const raw = await this.#control.takeRequest();
    if (raw !== null) {
      let request: BackfillRequest;
      try {
        request = parseRequest(raw);
      } catch (error) {
        this.#options.logger.error({ err: error }, 'backfill request refused');
        return;
      }
      this.#options.logger.info(request, 'backfill requested');
      void this.runNow(request).catch(() => {});
      return;
    }
    // A run waits while the archiver has not yet written any batch of a shard
    // that holds entries (just started, say): there is no cut to take yet.
    const waiting = await this.#reconciler.waitingFor();
    if (waiting !== this.#waiting && waiting !== undefined) {
      this.#options.logger.info({ reason: waiting }, 'backfill waits for the archiver');
    }
    this.#waiting = waiting;
    if (waiting === undefined && (now >= this.#nextAt || (await this.#cold(now)))) {
      void this.runNow().catch(() => {});
    }
  }

  /** Now on a cold start (or when no run ever completed); otherwise a refresh interval after the last. */
  async #firstRun(now: number): Promise<number> {
    const last = await this.#cache.lastRefreshAt();
    if (await this.#cold(now)) return now;
    return last === undefined ? now : last + this.#options.refreshMs;
  }

  /**
   * The read model is empty and was never filled (or Redis lost it all):
   * looked at on every poll, so a wiped Redis is refilled at once rather than
   * at the next refresh; tried at most once per retry interval.
   */
  async #cold(now: number): Promise<boolean> {
    if (now < this.#coldTriedAt + this.#options.retryMs) return false;
    const [listed, initialized] = await Promise.all([
      this.#redis.exists(readModelKeys.nodesAll),
      this.#cache.initialized(),
    ]);
    if (listed === 1 || initialized) return false;
    this.#coldTriedAt = now;
    this.#options.logger.info('read model is empty: cold start from the warehouse');
    return true;
  }

  /** Takes the scheduler lock, or renews it (the same lease script as a shard's). */
  async #lock(): Promise<boolean> {
    return (await this.#lease('renew')) || (await this.#lease('acquire'));
  }

  async #lease(mode: 'acquire' | 'renew' | 'release'): Promise<boolean> {
    return this.#control.lease(mode, this.#token, LOCK_MS);
  }
}

/** A run asked for through Redis: its id, and a rebuild's scope. */
export interface BackfillRequest {
  readonly request: string;
  readonly scope?: ReconcileScope;
}

/**
 * `{request, scope}` as JSON; a bare id (as earlier versions wrote it) asks
 * for a full run. A scope that is not one (nodes not a list of ids, a
 * `since` that is not a time) is refused: running everything instead would
 * not be what was asked.
 */
export function parseRequest(raw: string): BackfillRequest {
  let parsed: { request?: unknown; scope?: { nodes?: unknown; since?: unknown } };
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { request: raw };
  }
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.request !== 'string')
    return { request: raw };
  if (parsed.scope === undefined) return { request: parsed.request };
  const { nodes, since } = parsed.scope;
  const validNodes =
    nodes === undefined || (Array.isArray(nodes) && nodes.every((n) => typeof n === 'string'));
  const validSince = since === undefined || (typeof since === 'number' && Number.isFinite(since));
  if (!validNodes || !validSince)
    throw new Error(`backfill request ${parsed.request}: not a valid scope: ${raw}`);
  return {
    request: parsed.request,
    scope: {
      ...(nodes !== undefined && { nodes: nodes as string[] }),
      ...(since !== undefined && { since: since as number }),
    },
  };
}

export class BackfillBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackfillBusyError';
  }
}
