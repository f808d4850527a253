import { Worker } from 'node:worker_threads';
import type { Config } from '@streamgauge/core';
import type { ProcessMetrics } from '@streamgauge/telemetry';
import type { FromServiceThread, SeriesJson, ServiceThreadData, ToServiceThread } from './protocol.ts';

/** A service as `streamgauge start` runs it: on a worker thread of its own. */
export interface ServiceThread<S> {
  /** What the service reported of itself last (it reports every second). */
  snapshot(): S;
  /** Finishes the work in hand, lets the service close what it opened, ends the thread. */
  stop(): Promise<void>;
  /** Settles when the thread ends: resolves after stop(), rejects on the service's error. */
  readonly done: Promise<void>;
}

/** A scrape does not wait longer than this for the thread's series; they are left out of that scrape. */
const SCRAPE_TIMEOUT_MS = 2_000;
/** How long a thread whose service ended on an error has to close its connections. */
const ENDED_GRACE_MS = 5_000;
/** How long a stop waits for the work in hand before the thread is terminated. */
const STOP_TIMEOUT_MS = 60_000;

/**
 * Starts `worker` (a module that calls serveInThread) on a thread of its
 * own: one Node thread runs one core at most, so each busy service of
 * `start` gets one. Resolves once the service runs, rejects with its error
 * if it cannot start. Its series join `metrics`' /metrics. `name` says
 * whose thread it is in errors ("the aggregator").
 */
export async function startServiceThread<S>(
  name: string,
  worker: URL,
  config: Config,
  metrics: ProcessMetrics,
  initial: S,
): Promise<ServiceThread<S>> {
  const data: ServiceThreadData = {
    config,
    // A thread's stdout is no terminal: the main thread's decides for both.
    logFormat: config.logFormat === 'auto' ? (process.stdout.isTTY ? 'pretty' : 'json') : config.logFormat,
    service: metrics.service,
  };
  const thread = new Worker(worker, { workerData: data });
  const send = (message: ToServiceThread) => thread.postMessage(message);
  let snapshot = initial;
  const scrapes = new Map<number, (series: SeriesJson) => void>();
  let nextScrape = 0;
  let failed: (error: Error) => void = () => {};
  let markRunning: () => void = () => {};
  const running = new Promise<void>((resolve) => {
    markRunning = resolve;
  });
  thread.on('message', (message: FromServiceThread<S>) => {
    if (message.kind === 'running' || message.kind === 'snapshot') {
      snapshot = message.snapshot;
      if (message.kind === 'running') markRunning();
    } else if (message.kind === 'series') {
      scrapes.get(message.id)?.(message.series);
    } else if (message.error !== undefined) {
      // The service ended on an error: `start` stops now, not when the thread has wound down.
      failed(new Error(message.error));
      setTimeout(() => void thread.terminate(), ENDED_GRACE_MS).unref();
    }
  });
  const done = new Promise<void>((resolve, reject) => {
    failed = reject;
    thread.once('error', reject);
    thread.once('exit', (code) => {
      for (const answer of scrapes.values()) answer([]);
      if (code !== 0) reject(new Error(`${name}'s thread ended with exit code ${code}`));
      else resolve();
    });
  });
  const removeSource = metrics.addSource(
    () =>
      new Promise<SeriesJson>((resolve) => {
        const id = nextScrape++;
        const answer = (series: SeriesJson) => {
          clearTimeout(timer);
          scrapes.delete(id);
          resolve(series);
        };
        const timer = setTimeout(() => answer([]), SCRAPE_TIMEOUT_MS).unref();
        scrapes.set(id, answer);
        send({ kind: 'scrape', id });
      }),
  );
  done.finally(removeSource).catch(() => {});
  // Ended before it ran: it could not start, and `done` says why.
  await Promise.race([
    running,
    done.then(() => Promise.reject(new Error(`${name}'s thread ended while starting`))),
  ]);
  return {
    snapshot: () => snapshot,
    done,
    async stop() {
      send({ kind: 'stop' });
      const timer = setTimeout(() => void thread.terminate(), STOP_TIMEOUT_MS);
      await done.finally(() => clearTimeout(timer));
    },
  };
}
