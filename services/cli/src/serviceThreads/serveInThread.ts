import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '@streamgauge/core';
import { ProcessMetrics } from '@streamgauge/telemetry';
import type { Logger } from 'pino';
import { createLogger } from '../logger.ts';
import type { FromServiceThread, ServiceThreadData, ToServiceThread } from './protocol.ts';

/** How often the service's snapshot (the status line's counts) is sent. */
const SNAPSHOT_MS = 1_000;

export interface ThreadContext {
  readonly config: Config;
  /** A logger for one of its services, warnings and up unless LOG_LEVEL says otherwise (as `start`'s). */
  logger(service: string): Logger;
  /** Its series, sent to the main thread's /metrics on each scrape. */
  readonly metrics: ProcessMetrics;
}

export interface ThreadService {
  stop(): Promise<void>;
  /** Settles when the service ends (after stop, or on a fatal error). */
  readonly done: Promise<void>;
}

/**
 * The worker's side of startServiceThread: starts the service, reports it
 * running (with `snapshot` of it, then every second), answers scrapes with
 * its series, stops it when told. A failure to start rejects here, which
 * ends the thread with that error.
 */
export async function serveInThread<T extends ThreadService, S>(
  start: (context: ThreadContext) => Promise<T>,
  snapshot: (service: T) => S,
): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error("a service's thread runs as a worker of `streamgauge start`");
  const { config, logFormat, service: label } = workerData as ServiceThreadData;
  const send = (message: FromServiceThread<S>) => port.postMessage(message);
  // Node and process series are the main thread's: the process is one.
  const metrics = new ProcessMetrics({ service: label, defaultMetrics: false });
  const service = await start({
    config,
    logger: (name) => createLogger({ ...config, logFormat }, name, 'warn'),
    metrics,
  });
  send({ kind: 'running', snapshot: snapshot(service) });
  const reporting = setInterval(() => send({ kind: 'snapshot', snapshot: snapshot(service) }), SNAPSHOT_MS);
  let stopped: Promise<unknown> | undefined;
  const stop = () => {
    stopped ??= service.stop().catch(() => {});
    return stopped;
  };
  port.on('message', (message: ToServiceThread) => {
    if (message.kind === 'scrape') {
      metrics.registry.getMetricsAsJSON().then(
        (series) => send({ kind: 'series', id: message.id, series }),
        () => send({ kind: 'series', id: message.id, series: [] }),
      );
    } else {
      // How it ended is reported once `done` settles and the stop has closed what it opened.
      void stop();
    }
  });
  try {
    await service.done;
    // Ended without being told (its loops ended): what it opened is closed all the same.
    await stop();
    send({ kind: 'ended' });
  } catch (error) {
    send({ kind: 'ended', error: error instanceof Error ? error.message : String(error) });
    // What it opened is closed while `start` winds down (the main thread ends the thread after a grace).
    await stop();
  } finally {
    clearInterval(reporting);
    port.close();
  }
}
