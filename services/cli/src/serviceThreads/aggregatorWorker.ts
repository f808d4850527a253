/**
 * The aggregator's thread in `streamgauge start`: wiring only. The
 * aggregator runs as `streamgauge aggregate` runs it; its series and its
 * counts go to the main thread, which serves /metrics and prints the status
 * line.
 */
import { startAggregator } from '@streamgauge/aggregator';
import type { AggregatorSnapshot } from './protocol.ts';
import { serveInThread } from './serveInThread.ts';

await serveInThread(
  ({ config, logger, metrics }) => startAggregator(config, logger('aggregator'), { metrics }),
  (aggregator): AggregatorSnapshot => ({
    nodeCount: aggregator.nodeCount(),
    keysWritten: aggregator.keysWritten(),
    openAnomalies: [...aggregator.openAnomalies()],
  }),
);
