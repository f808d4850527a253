import type { Config } from '@streamgauge/core';
import type { ProcessMetrics } from '@streamgauge/telemetry';
import type { AggregatorSnapshot } from './protocol.ts';
import { type ServiceThread, startServiceThread } from './thread.ts';

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

/**
 * Starts the aggregator on a worker thread, so that it has a core of its own
 * beside ingest and the archiver. Resolves once it runs (its shards taken,
 * what was pending on them applied).
 */
export async function startAggregatorThread(
  config: Config,
  metrics: ProcessMetrics,
): Promise<AggregatorThread> {
  const thread = await startServiceThread<AggregatorSnapshot>(
    'the aggregator',
    new URL('./aggregatorWorker.ts', import.meta.url),
    config,
    metrics,
    { nodeCount: 0, keysWritten: 0, openAnomalies: [] },
  );
  return {
    nodeCount: () => thread.snapshot().nodeCount,
    keysWritten: () => thread.snapshot().keysWritten,
    openAnomalies: () => new Map(thread.snapshot().openAnomalies),
    stop: () => thread.stop(),
    done: thread.done,
  };
}

/**
 * Starts the archiver and the backfill (the warehouse's host) on a worker
 * thread: writing every reading into DuckDB is the busiest single part of
 * `start`, and beside ingest on the main thread it held both to one core.
 */
export function startWarehouseThread(config: Config, metrics: ProcessMetrics): Promise<ServiceThread<null>> {
  return startServiceThread(
    'the archiver',
    new URL('./warehouseWorker.ts', import.meta.url),
    config,
    metrics,
    null,
  );
}
