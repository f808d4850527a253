import type { ShardKeys } from '@streamgauge/core';
import {
  type DeliveredBatch,
  type Offer,
  type ReconcileOffers,
  type ShardPull,
  ShardReader,
  type ShardReconcileReport,
  type StreamConsumer,
} from '@streamgauge/redis';
import type { Logger } from 'pino';
import {
  BehaviorSubject,
  concatMap,
  defer,
  EMPTY,
  filter,
  lastValueFrom,
  map,
  merge,
  mergeMap,
  type Observable,
  Subject,
  takeUntil,
  tap,
} from 'rxjs';
import type { Aggregator, AppliedBatch, BatchOutcome, ShardState } from './aggregator.ts';
import type { LeaseKeeper } from './leaseKeeper.ts';
import { ReadAheadPace } from './readAheadPace.ts';
import { SideReads } from './sideReads.ts';

export type Job =
  | { readonly kind: 'acquire'; readonly state: ShardState; readonly done: () => void }
  | {
      readonly kind: 'batch';
      readonly state: ShardState;
      /** Its live entries ahead of a lane chunk may be taken while the batch before is applied (SideReads). */
      batch: DeliveredBatch;
      /** The last page of the scan of pending entries that follows an acquisition. */
      readonly settle: boolean;
      /** An empty read: the stream is quiet (see ShardPull). */
      readonly quiet: boolean;
      /** When the shard's next read goes while a lane chunk of it is applied. */
      readonly pace: ReadAheadPace;
      /** Starts the shard's reads of live entries beside a lane chunk being applied (SideReads). */
      readonly beside: () => SideReads;
      /**
       * Pulls the shard's next read, once this batch is applied or while it
       * is (`applied`: until its commit settles, a scan of pending entries
       * leaves its entries out, and those `side` read and the batch took
       * ahead).
       */
      readonly done: (applied: Promise<AppliedBatch>, side?: SideReads) => void;
    }
  | { readonly kind: 'release'; readonly state: ShardState; readonly graceful: boolean }
  | {
      readonly kind: 'reconcile';
      readonly state: ShardState;
      readonly offer: Offer;
      readonly done: () => void;
    }
  /** A pane boundary, or (`step`) the next step of the clock's sweep. */
  | { readonly kind: 'tick'; readonly at: number; readonly step?: boolean }
  /** The next step of the metrics a quiet stream still owes. */
  | { readonly kind: 'metrics' };

export type Processed =
  | {
      readonly kind: 'batches';
      readonly outcome: BatchOutcome;
      readonly stream: string;
      /** From the batch's job starting to its entries acknowledged (and, on settling, the keys written). */
      readonly seconds: number;
      /** The shard whose pending entries this batch finished (after an acquisition). */
      readonly settled?: string;
    }
  | { readonly kind: 'tick'; readonly ranges: string[] }
  | { readonly kind: 'reconcile'; readonly stream: string; readonly report?: ShardReconcileReport }
  | { readonly kind: 'acquire' | 'release'; readonly stream: string };

export interface PipelineOptions {
  /** Entries pending this long are claimed again (crashed reads, failed entries). */
  readonly claimIdleMs: number;
  /** The state of one acquisition of a shard, fenced by the acquisition's lease token. */
  readonly newState: (shard: ShardKeys, token: string) => ShardState;
  /** Emits when the connection came back after a drop: pending entries are scanned at once. */
  readonly reconnected$: Observable<unknown>;
  /** Backfill offers, looked for between a shard's batches at most every `offerCheckMs`. */
  readonly offers?: ReconcileOffers;
  readonly offerCheckMs?: number;
  /**
   * AGGREGATOR_CATCHUP_READINGS, when reads move the catch-up lane: a read
   * leaves the lane alone while a chunk of this size has no room
   * (Aggregator.roomForLaneChunk).
   */
  readonly catchupReadings?: number;
}

export interface RunningPipeline {
  /** Every processed job, for logs, metrics and tests. */
  readonly processed$: Observable<Processed>;
  /** Resolves when the pipeline has stopped (after `stop()`, once the job in hand and the commits sent are done). */
  readonly done: Promise<void>;
  stop(): void;
}

/**
 * The aggregator as an RxJS pipeline:
 *
 *   leases ──► per held shard: acquire, then pull ──► claim | XREADGROUP ──┐
 *   clock ──► pane boundaries, then each next step of the sweep ───────────┤
 *   a quiet read ──► each next step of the metrics owed ───────────────────┼─ concatMap(job) ──► keys + commit
 *   leases ──► release | lost ─────────────────────────────────────────────┘
 *
 * Jobs run one at a time. Each shard has one read or claim in flight at a
 * time, and the next is pulled once its batch is applied and its commit
 * sent (or, for a catch-up lane's chunk, while it is applied): the next
 * batch is read and applied while that commit runs, and a batch's commit
 * runs after the one before (two on their way at most), so memory stays
 * bounded (a batch read ahead, one applied, the commits) however far
 * behind the group is. While a chunk of the catch-up lane would fill the
 * next commit with two on their way, reads leave the lane alone and take
 * the live entries (Aggregator.roomForLaneChunk). A claim is just another
 * pull of the shard's loop, so it never races a read of the same shard,
 * and it leaves out the entries this process holds (read, not yet
 * acknowledged) without waiting for them: a scan that waited for the
 * commit in flight held the shard's loop up to 2.7 s during a catch-up
 * (docs/benchmarks.md).
 */
export function runPipeline(
  consumer: StreamConsumer,
  aggregator: Aggregator,
  keeper: LeaseKeeper,
  ticks$: Observable<number>,
  logger: Logger,
  options: PipelineOptions,
): RunningPipeline {
  const stop$ = new Subject<void>();
  const processed$ = new Subject<Processed>();
  const ends$ = keeper.events$.pipe(filter((e) => e.kind !== 'acquired'));
  const held = new Map<ShardKeys, ShardState>();

  const shardJobs$ = keeper.events$.pipe(
    filter((e) => e.kind === 'acquired'),
    mergeMap((event) => {
      if (event.kind !== 'acquired') return [];
      const { shard } = event;
      const state = options.newState(shard, event.token);
      held.set(shard, state);
      return shardLoop(state, consumer, aggregator, options, logger).pipe(
        takeUntil(merge(stop$, ends$.pipe(filter((e) => e.shard === shard)))),
      );
    }),
  );
  const releases$ = ends$.pipe(
    mergeMap((e) => {
      const state = held.get(e.shard);
      held.delete(e.shard);
      if (state !== undefined) newerAhead.delete(state);
      consumer.release(e.shard);
      if (state === undefined) return [];
      // A lost shard's state is dropped at once, not behind the queued jobs:
      // it may hold changes never committed, and must not be written out.
      if (e.kind === 'lost') aggregator.drop(state);
      return [{ kind: 'release', state, graceful: e.kind === 'release' } as Job];
    }),
  );
  const slides$ = ticks$.pipe(
    takeUntil(stop$),
    map((at): Job => ({ kind: 'tick', at })),
  );

  /**
   * Per shard, the last of the live entries a chunk's batch applied ahead
   * that are newer than the shard's next batch (SideReads.positions): the
   * committed position passes them once that next batch is committed too.
   */
  const newerAhead = new Map<ShardState, { readonly id: string; readonly after: Promise<unknown> }>();
  const steps$ = new Subject<Job>();
  let sweeping = false;
  /** The last read (of any shard) that was not an empty page of a scan found the stream quiet. */
  let quiet = false;
  /** A chain of metrics steps is going on (one queued at a time). */
  let writingOwed = false;
  let boundaryDuringSweep = false;
  // The next metrics step once the commits and the chunk in flight are done:
  // a step then holds the loop for its own work only, never for Redis.
  const nextMetricsStep = () => {
    void aggregator.metricsReady().then(() => steps$.next({ kind: 'metrics' }));
  };
  const work$ = merge(shardJobs$, releases$, slides$, steps$).pipe(
    takeUntil(stop$),
    concatMap(async (job): Promise<{ readonly processed: Promise<Processed | undefined> | undefined }> => {
      switch (job.kind) {
        case 'acquire':
          await aggregator.acquire(job.state);
          job.done();
          return now({ kind: 'acquire', stream: job.state.shard.stream });
        case 'batch': {
          const started = performance.now();
          // A catch-up lane's chunk: the next read goes while it is applied.
          // Such a read took 0.2–0.4 s of a Redis busy with the backlog's
          // appends, and the loop waited for it after every chunk: read
          // ahead, the backlog is absorbed ~1.7× as fast (docs/benchmarks.md,
          // "The next read while a lane chunk is applied"), and as late as
          // its reply still comes in time (ReadAheadPace), the live entries
          // that came meanwhile go before the next chunk. Not otherwise: a
          // live batch is applied in milliseconds, and a reading that came
          // meanwhile would wait for the batch read ahead without it. Nor
          // after the last page of a scan, which settles the shard first.
          const due = !job.settle && holdsLaneChunk(job.batch) ? job.pace.during() : undefined;
          const readAhead = due !== undefined;
          // Meanwhile the live entries that come after the chunk are read
          // and applied ahead of its rest (BatchApplier.apply, "overtaking"),
          // and so are the next read's own ahead of its chunk (SideReads).
          const side = readAhead ? job.beside() : undefined;
          let pulled = false;
          const pull = () => {
            if (pulled) return;
            pulled = true;
            job.done(applying, side);
          };
          // Called at the apply's yields only, once `applying` is set.
          const applying: Promise<AppliedBatch> = aggregator.apply(
            job.batch,
            job.state,
            job.quiet,
            due &&
              ((left) => {
                if (due(left, performance.now())) pull();
              }),
            side,
          );
          const applied = await applying;
          if (readAhead) pull();
          // The committed position of what was applied ahead (BatchApplier.apply leaves it where the batch's is).
          const ahead = newerAhead.get(job.state);
          newerAhead.delete(job.state);
          if (ahead !== undefined) {
            Promise.all([ahead.after, applied.committed]).then(
              () => aggregator.advance(job.state, ahead.id),
              () => {},
            );
          }
          const { older, newer } = side?.positions ?? {};
          if (older !== undefined) {
            applied.committed.then(
              () => aggregator.advance(job.state, older),
              () => {},
            );
          }
          if (newer !== undefined) newerAhead.set(job.state, { id: newer, after: applied.committed });
          if (job.quiet || job.batch.entries.length > 0) quiet = job.quiet;
          if (applied.owed === true && !writingOwed) {
            writingOwed = true;
            nextMetricsStep();
          }
          const stream = job.state.shard.stream;
          // Settle before the next read: the group's position must not yet
          // include entries that are read but not applied.
          if (job.settle) {
            // What the batch staged goes now, not after its linger (a failure is raised below).
            aggregator.committed(job.state).catch(() => {});
            await applied.committed;
            await aggregator.settle(job.state);
          }
          // Otherwise the next read goes now, while the batch's commit runs.
          if (!readAhead) job.done(applying);
          const processed = applied.committed.then((outcome): Processed => {
            const seconds = (performance.now() - started) / 1000;
            return job.settle
              ? { kind: 'batches', outcome, stream, seconds, settled: stream }
              : { kind: 'batches', outcome, stream, seconds };
          });
          // Reported (and a failure raised) in order, below.
          processed.catch(() => {});
          return { processed };
        }
        case 'release':
          await aggregator.release(job.state, job.graceful);
          if (job.graceful) await keeper.released(job.state.shard);
          return now({ kind: 'release', stream: job.state.shard.stream });
        case 'reconcile': {
          const report = await aggregator.reconcile(job.state, job.offer);
          job.done();
          return now(
            report === undefined
              ? { kind: 'reconcile', stream: job.state.shard.stream }
              : { kind: 'reconcile', stream: job.state.shard.stream, report },
          );
        }
        case 'metrics': {
          // While the stream stays quiet; under load the rounds go on between batches.
          writingOwed = quiet && (await aggregator.metricsStep());
          if (writingOwed) nextMetricsStep();
          return { processed: undefined };
        }
        case 'tick': {
          // A boundary during a sweep starts the next sweep once this one ends (one chain of steps at a time).
          if (sweeping && job.step !== true) {
            boundaryDuringSweep = true;
            return { processed: undefined };
          }
          const { ranges, written } = aggregator.tick();
          sweeping = ranges === undefined || boundaryDuringSweep;
          if (ranges !== undefined) boundaryDuringSweep = false;
          // The next step once this one is written, behind the batches that arrived meanwhile.
          if (sweeping)
            written.then(
              () => steps$.next({ kind: 'tick', at: job.at, step: true }),
              () => {},
            );
          const processed = written.then((): Processed | undefined =>
            ranges === undefined ? undefined : { kind: 'tick', ranges },
          );
          // Reported (and a failure raised) in order, below, once written.
          processed.catch(() => {});
          return { processed };
        }
      }
    }),
    // A batch is reported once its commit is done, every job in the order it ran.
    concatMap(({ processed }) => processed ?? EMPTY),
    filter((done): done is Processed => done !== undefined),
    tap((done) => processed$.next(done)),
  );

  const done = lastValueFrom(work$, { defaultValue: undefined }).then(
    () => processed$.complete(),
    (error: unknown) => {
      processed$.error(error);
      throw error;
    },
  );
  return {
    processed$,
    done,
    stop() {
      aggregator.stop();
      stop$.next();
    },
  };
}

function now(processed: Processed): { readonly processed: Promise<Processed | undefined> } {
  return { processed: Promise.resolve(processed) };
}

/**
 * One shard's jobs: its acquisition, then what the shard's reader pulls
 * (ShardReader: pending entries first, then new ones), one at a time, each
 * retried by the reader until it succeeds or the shard's jobs end.
 */
function shardLoop(
  state: ShardState,
  consumer: StreamConsumer,
  aggregator: Aggregator,
  options: PipelineOptions,
  logger: Logger,
): Observable<Job> {
  const pull$ = new BehaviorSubject<void>(undefined);
  const ended = new AbortController();
  const reader = new ShardReader(consumer, state.shard, {
    claimIdleMs: options.claimIdleMs,
    onRetry: (error, attempt) =>
      logger.warn({ err: error, attempt, stream: state.shard.stream }, 'reading the stream failed; retrying'),
    onForgotten: (consumers) =>
      logger.info(
        { stream: state.shard.stream, consumers },
        'removed consumers idle for an hour with nothing pending',
      ),
  });
  let acquired = false;
  let settled = false;
  let offerChecked = 0;
  const reconnected = options.reconnected$.subscribe(() => reader.reconnected());
  const pace = new ReadAheadPace();
  const next = () => pull$.next();
  /**
   * Entries read and not yet acknowledged: reads go on while a batch is
   * applied and while its commit runs, and a scan of pending entries (which
   * may claim them, once idle long enough or after a reconnection) leaves
   * them out, or they would be applied twice.
   */
  const holding = new Set<string>();
  /** The reads beside the last lane chunk: what its apply did not take goes next, before anything read after. */
  let lastSide: SideReads | undefined;
  const leftBehind = (): Promise<DeliveredBatch | undefined> | undefined => {
    const side = lastSide;
    lastSide = undefined;
    return side?.stop().then(() => side.leftOver());
  };
  const beside = () => {
    const before = leftBehind();
    lastSide = new SideReads(
      async () => {
        const batch = await reader.readBeside();
        for (const entry of batch.entries) holding.add(entry.id);
        return batch;
      },
      before === undefined ? {} : { before },
    );
    return lastSide;
  };

  const batchJob = (pulled: ShardPull): Extract<Job, { kind: 'batch' }> => {
    const ids = pulled.batch.entries.map((e) => e.id);
    for (const id of ids) holding.add(id);
    return {
      kind: 'batch',
      state,
      batch: pulled.batch,
      settle: pulled.settled,
      quiet: pulled.quiet,
      pace,
      beside,
      done: (applied, side) => {
        // A failed commit ends the pipeline (raised where the batch is reported).
        void applied
          .then((batch) => batch.committed)
          .catch(() => {})
          .finally(() => {
            for (const id of ids) holding.delete(id);
            for (const id of side?.taken ?? []) holding.delete(id);
          });
        next();
      },
    };
  };

  const fetch = async (): Promise<Job> => {
    if (!acquired) {
      // The acquisition sets the shard's applied mark from the group's position: the group must exist first.
      await reader.ensureGroup();
      acquired = true;
      return { kind: 'acquire', state, done: next };
    }
    if (lastSide?.closed) {
      const batch = await leftBehind();
      if (batch !== undefined) return batchJob({ batch, settled: false, quiet: false, scanned: false });
    }
    // A backfill is applied between batches, once the pending entries are done.
    const { offers, offerCheckMs = 1_000 } = options;
    if (offers !== undefined && settled && Date.now() - offerCheckMs >= offerChecked) {
      offerChecked = Date.now();
      const offer = await offers.current(state.shard);
      if (offer !== undefined) return { kind: 'reconcile', state, offer, done: next };
    }
    const started = performance.now();
    const { catchupReadings } = options;
    const lane =
      catchupReadings === undefined || aggregator.roomForLaneChunk(state, catchupReadings) ? 'admit' : 'held';
    // Reads beside a chunk still applied go on: what they bring is older or newer than this read's.
    const side = lastSide;
    const sideBefore = side?.nextRead();
    const pulled = await reader.next({ holding, lane });
    await sideBefore;
    // Read beside before this one and left by an apply that is over: it goes first.
    const older = side?.olderLeftOver();
    if (pulled.settled) settled = true;
    if (!pulled.scanned && holdsLaneChunk(pulled.batch)) pace.read(performance.now() - started);
    const job = batchJob(
      older === undefined
        ? pulled
        : { ...pulled, batch: { ...pulled.batch, entries: [...older.entries, ...pulled.batch.entries] } },
    );
    // Read while a chunk is applied: its live head may go ahead of that chunk's rest.
    side?.resume(job);
    return job;
  };

  return pull$.pipe(
    concatMap(() => defer(() => reader.retry(fetch, ended.signal))),
    tap({
      finalize: () => {
        reconnected.unsubscribe();
        // A pull still failing after the shard was released or lost must stop retrying.
        ended.abort();
      },
    }),
  );
}

/** Entries moved from the shard's catch-up lane are among the batch's (admitCatchup.lua). */
function holdsLaneChunk(batch: DeliveredBatch): boolean {
  return batch.entries.some((e) => 'readings' in e && e.fromLane === true);
}
