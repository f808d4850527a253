import { ManualClock, readModelKeys, reconcileKeys } from '@streamgauge/core';
import { CacheStatus } from '@streamgauge/redis';
import { useRedis } from '@streamgauge/testkit';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ReconcileReport, Reconciler } from '../src/reconciler.ts';
import { BackfillBusyError, BackfillScheduler } from '../src/scheduler.ts';

const fixture = useRedis({ flushEach: true });
const HOUR = 3_600_000;

/**
 * The scheduler decides when runs happen; what a run does is the
 * reconciler's (tested end to end in test/e2e/backfill.e2e.test.ts). Here a
 * run only records that it happened and marks the cache refreshed, as a
 * complete run does.
 */
function recordingReconciler(clock: ManualClock) {
  const runs: { request?: string; at: number }[] = [];
  const state: { waiting: string | undefined } = { waiting: undefined };
  const reconciler = {
    waitingFor: async () => state.waiting,
    async run(options: { request?: string; holding?: () => Promise<boolean> } = {}) {
      if (options.holding && !(await options.holding())) throw new Error('lock lost');
      runs.push({ at: clock.now(), ...(options.request && { request: options.request }) });
      await new CacheStatus(fixture.client).refreshed(`run-${runs.length}`, clock.now());
      return { status: 'complete', run: `run-${runs.length}` } as ReconcileReport;
    },
  };
  return { runs, state, reconciler: reconciler as unknown as Reconciler };
}

/** Scheduler settings for a test: a quick poll, a silent log. */
const schedule = (clock: ManualClock, refreshMs: number, retryMs: number) => ({
  refreshMs,
  retryMs,
  pollMs: 10,
  clock,
  logger: pino({ level: 'silent' }),
});

const until = async (check: () => boolean) => {
  const deadline = Date.now() + 5_000;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
};
const settle = () => new Promise((r) => setTimeout(r, 100));

describe('BackfillScheduler', () => {
  it('runs on a cold start, then every refresh interval after the last run, and on request', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));
    const { runs, reconciler } = recordingReconciler(clock);
    const finished: string[] = [];
    const options = {
      ...schedule(clock, 6 * HOUR, 5 * 60_000),
      onRun: (status: string) => finished.push(status),
    };
    const scheduler = new BackfillScheduler(fixture.client, reconciler, options);
    scheduler.start();
    try {
      await until(() => runs.length === 1);
      // The clock moves only once the run is over: the scheduler dates the next one from its end.
      await until(() => finished.length === 1);
      await fixture.client.rpush(readModelKeys.nodesAll, 'N1');
      clock.advance(6 * HOUR - 1_000);
      await settle();
      expect(runs).toHaveLength(1);
      clock.advance(1_000);
      await until(() => runs.length === 2);
      expect(runs[1]?.at).toBe((runs[0]?.at ?? 0) + 6 * HOUR);

      await fixture.client.set(reconcileKeys.request, 'req-1');
      await until(() => runs.length === 3);
      expect(runs[2]?.request).toBe('req-1');
      expect(await fixture.client.exists(reconcileKeys.request)).toBe(0);

      // Redis lost everything (a restart without persistence): a cold start, at once.
      await fixture.client.flushall();
      await until(() => runs.length === 4);
    } finally {
      await scheduler.stop();
    }
    expect(await fixture.client.exists(reconcileKeys.lock)).toBe(0);
  });

  it('runs in one process at a time: another scheduler neither runs on its own nor on demand', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));
    const first = recordingReconciler(clock);
    const second = recordingReconciler(clock);
    const options = schedule(clock, HOUR, 60_000);
    const holder = new BackfillScheduler(fixture.client, first.reconciler, options);
    const other = new BackfillScheduler(fixture.client, second.reconciler, options);
    holder.start();
    try {
      await until(() => first.runs.length === 1);
      other.start();
      await expect(other.runNow()).rejects.toBeInstanceOf(BackfillBusyError);
      clock.advance(HOUR);
      await until(() => first.runs.length === 2);
      await settle();
      expect(second.runs).toHaveLength(0);
    } finally {
      await other.stop();
      await holder.stop();
    }
  });

  it('holds a cold start back while the archiver has not written its first batch', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));
    const { runs, state, reconciler } = recordingReconciler(clock);
    state.waiting = 'readings holds entries the archiver never processed';
    const options = schedule(clock, HOUR, 60_000);
    const scheduler = new BackfillScheduler(fixture.client, reconciler, options);
    scheduler.start();
    try {
      await settle();
      expect(runs).toHaveLength(0);
      state.waiting = undefined;
      await until(() => runs.length === 1);
    } finally {
      await scheduler.stop();
    }
  });
});
