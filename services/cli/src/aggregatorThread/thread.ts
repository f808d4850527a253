import { Worker } from 'node:worker_threads';
import type { Config } from '@streamgauge/core';
import type { ProcessMetrics } from '@streamgauge/telemetry';
import type {
  AggregatorSnapshot,
  AggregatorThreadData,
  FromAggregatorThread,
  SeriesJson,
  ToAggregatorThread,
} from './protocol.ts';

/** The aggregator as `streamgauge start` runs it: on a thread of its own. */
export interface AggregatorThread {
  /** Nodes in the live state, as of the thread's last report (every second). */
  nodeCount(): number;
  /** Read-model keys written since it started, as of the last report. */
  keysWritten(): number;
  /** Anomalies open now, by type, as of the last report. */
  openAnomalies(): ReadonlyMap<string, number>;
  /** Finishes the batch in hand, commits it, gives up the leases, ends the thread. */
  stop(): Promise<void>;
  /** Settles when the thread ends: resolves after stop(), rejects on the aggregator's error. */
  readonly done: Promise<void>;
}

/** A scrape does not wait longer than this for the thread's series; they are left out of that scrape. */
const SCRAPE_TIMEOUT_MS = 2_000;
/** How long a thread whose aggregator ended on an error has to close its connections. */
const ENDED_GRACE_MS = 5_000;
/** How long a stop waits for the batch in hand before the thread is terminated. */
const STOP_TIMEOUT_MS = 60_000;

/**
 * Starts the aggregator on a worker thread, so that it has a core of its own
 * beside ingest and the archiver (one Node thread runs one core at most).
 * Resolves once it runs (its shards taken, what was pending on them
 * applied), rejects with its error if it cannot start. Its series join
 * `metrics`' /metrics.
 */
export async function startAggregatorThread(
  config: Config,
  metrics: ProcessMetrics,
): Promise<AggregatorThread> {
  const data: AggregatorThreadData = {
    config,
    // A thread's stdout is no terminal: the main thread's decides for both.
    logFormat: config.logFormat === 'auto' ? (process.stdout.isTTY ? 'pretty' : 'json') : config.logFormat,
    service: metrics.service,
  };
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { workerData: data });
  const send = (message: ToAggregatorThread) => worker.postMessage(message);
  let snapshot: AggregatorSnapshot = { nodeCount: 0, keysWritten: 0, openAnomalies: [] };
  const scrapes = new Map<number, (series: SeriesJson) => void>();
  let nextScrape = 0;
  let failed: (error: Error) => void = () => {};
  let markRunning: () => void = () => {};
  const running = new Promise<void>((resolve) => {
    markRunning = resolve;
  });
  worker.on('message', (message: FromAggregatorThread) => {
    if (message.kind === 'running' || message.kind === 'snapshot') {
      snapshot = message.snapshot;
      if (message.kind === 'running') markRunning();
    } else if (message.kind === 'series') {
      scrapes.get(message.id)?.(message.series);
    } else if (message.error !== undefined) {
      // The aggregator ended on an error: `start` stops now, not when the thread has wound down.
      failed(new Error(message.error));
      setTimeout(() => void worker.terminate(), ENDED_GRACE_MS).unref();
    }
  });
  const done = new Promise<void>((resolve, reject) => {
    failed = reject;
    worker.once('error', reject);
    worker.once('exit', (code) => {
      for (const answer of scrapes.values()) answer([]);
      if (code !== 0) reject(new Error(`the aggregator's thread ended with exit code ${code}`));
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
    done.then(() => Promise.reject(new Error("the aggregator's thread ended while starting"))),
  ]);
  return {
    nodeCount: () => snapshot.nodeCount,
    keysWritten: () => snapshot.keysWritten,
    openAnomalies: () => new Map(snapshot.openAnomalies),
    done,
    async stop() {
      send({ kind: 'stop' });
      const timer = setTimeout(() => void worker.terminate(), STOP_TIMEOUT_MS);
      await done.finally(() => clearTimeout(timer));
    },
  };
}
