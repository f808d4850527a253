import type { DeliveredBatch, StreamConsumer } from '@streamgauge/redis';
import type { Logger } from 'pino';
import {
  BehaviorSubject,
  concatMap,
  defer,
  lastValueFrom,
  map,
  merge,
  type Observable,
  retry,
  Subject,
  takeUntil,
  tap,
  timer,
} from 'rxjs';
import type { Aggregator, BatchOutcome } from './aggregator.ts';

export type Job =
  | { readonly kind: 'batches'; readonly batches: DeliveredBatch[] }
  | { readonly kind: 'tick'; readonly at: number };

export type Processed =
  | { readonly kind: 'batches'; readonly outcome: BatchOutcome }
  | { readonly kind: 'tick'; readonly ranges: string[] };

export interface RunningPipeline {
  /** Every processed job, for logs, metrics and tests. */
  readonly processed$: Observable<Processed>;
  /** Resolves when the pipeline has stopped (after `stop()`, once the job in hand is done). */
  readonly done: Promise<void>;
  stop(): void;
}

/**
 * The aggregator as an RxJS pipeline:
 *
 *   pull ──► XREADGROUP (blocking, own connection) ──┐
 *                                                    ├─ concatMap(apply | slide) ──► keys + commit
 *   clock ──► pane boundaries ───────────────────────┘
 *
 * One read is in flight at a time and the next is pulled only once its batch
 * is committed, so memory stays bounded however far behind the group is, and
 * batches and ticks never interleave.
 */
export function runPipeline(
  consumer: StreamConsumer,
  aggregator: Aggregator,
  ticks$: Observable<number>,
  logger: Logger,
): RunningPipeline {
  const stop$ = new Subject<void>();
  const pull$ = new BehaviorSubject<void>(undefined);
  const processed$ = new Subject<Processed>();

  const reads$ = pull$.pipe(
    takeUntil(stop$),
    concatMap(() =>
      defer(() => consumer.read()).pipe(
        retry({
          delay: (error: Error, attempt) => {
            logger.warn({ err: error, attempt }, 'reading the stream failed; retrying');
            return timer(Math.min(100 * 2 ** attempt, 2_000));
          },
          resetOnSuccess: true,
        }),
      ),
    ),
    map((batches): Job => ({ kind: 'batches', batches })),
  );
  const slides$ = ticks$.pipe(
    takeUntil(stop$),
    map((at): Job => ({ kind: 'tick', at })),
  );

  const work$ = merge(reads$, slides$).pipe(
    concatMap(async (job): Promise<Processed> => {
      if (job.kind === 'batches') {
        return { kind: 'batches', outcome: await aggregator.apply(job.batches) };
      }
      return { kind: 'tick', ranges: await aggregator.tick() };
    }),
    tap((done) => {
      processed$.next(done);
      if (done.kind === 'batches') pull$.next();
    }),
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
      pull$.complete();
    },
  };
}
