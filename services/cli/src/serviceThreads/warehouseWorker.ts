/**
 * The warehouse's thread in `streamgauge start`: wiring only. The archiver
 * and the backfill run as `streamgauge archive` runs them, sharing the
 * warehouse; their series go to the main thread's /metrics.
 */
import { startWarehouseHost } from '../warehouseHost.ts';
import { serveInThread } from './serveInThread.ts';

await serveInThread(
  ({ config, logger, metrics }) =>
    startWarehouseHost(config, { archiver: logger('archiver'), backfill: logger('backfill') }, metrics),
  () => null,
);
