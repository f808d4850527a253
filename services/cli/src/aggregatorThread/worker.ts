/**
 * The aggregator's thread in `streamgauge start`: wiring only. The
 * aggregator runs as `streamgauge aggregate` runs it; its series and its
 * counts go to the main thread, which serves /metrics and prints the status
 * line.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startAggregator } from '@streamgauge/aggregator';
import { ProcessMetrics } from '@streamgauge/telemetry';
import { createLogger } from '../logger.ts';
import type {
  AggregatorSnapshot,
  AggregatorThreadData,
  FromAggregatorThread,
  ToAggregatorThread,
} from './protocol.ts';

/** How often the counts the status line shows are sent. */
const SNAPSHOT_MS = 1_000;

const port = parentPort;
if (port === null) throw new Error('the aggregator thread runs as a worker of `streamgauge start`');
const { config, logFormat, service } = workerData as AggregatorThreadData;
const send = (message: FromAggregatorThread) => port.postMessage(message);

// Node and process series are the main thread's: the process is one.
const metrics = new ProcessMetrics({ service, defaultMetrics: false });
// A failure to start rejects here, which ends the thread with that error.
const aggregator = await startAggregator(
  config,
  createLogger({ ...config, logFormat }, 'aggregator', 'warn'),
  {
    metrics,
  },
);
const snapshot = (): AggregatorSnapshot => ({
  nodeCount: aggregator.nodeCount(),
  keysWritten: aggregator.keysWritten(),
  openAnomalies: [...aggregator.openAnomalies()],
});
send({ kind: 'running', snapshot: snapshot() });
const reporting = setInterval(() => send({ kind: 'snapshot', snapshot: snapshot() }), SNAPSHOT_MS);

port.on('message', (message: ToAggregatorThread) => {
  if (message.kind === 'scrape') {
    metrics.registry.getMetricsAsJSON().then(
      (series) => send({ kind: 'series', id: message.id, series }),
      () => send({ kind: 'series', id: message.id, series: [] }),
    );
  } else {
    // How it ended is reported once `done` settles.
    aggregator.stop().catch(() => {});
  }
});

aggregator.done
  .then(
    () => send({ kind: 'ended' }),
    (error: unknown) =>
      send({ kind: 'ended', error: error instanceof Error ? error.message : String(error) }),
  )
  .finally(() => {
    clearInterval(reporting);
    port.close();
  });
