import { startArchiver } from '@streamgauge/archiver';
import { startBackfill } from '@streamgauge/backfill';
import type { Config } from '@streamgauge/core';
import type { ProcessMetrics } from '@streamgauge/telemetry';
import { describeWarehouse, openWarehouse } from '@streamgauge/warehouse';
import type { Logger } from 'pino';

export interface RunningWarehouseHost {
  stop(): Promise<void>;
  /** Settles when the archiver's loops end. */
  readonly done: Promise<void>;
}

/**
 * The process that holds the warehouse runs what needs it: the archiver
 * (every reading in) and the backfill (the 30-day panes out). DuckDB lets
 * one process open its file, so the two share one instance.
 */
export async function startWarehouseHost(
  config: Config,
  loggers: { archiver: Logger; backfill: Logger },
  /** The process's metrics, served by the caller. */
  metrics?: ProcessMetrics,
  /** Without the backfill scheduler: it runs elsewhere (`streamgauge backfill`, with BigQuery). */
  options: { backfill: boolean } = { backfill: true },
): Promise<RunningWarehouseHost> {
  const warehouse = await openWarehouse(config);
  loggers.archiver.info({ warehouse: describeWarehouse(config) }, 'warehouse open');
  const started: { stop(): Promise<void> }[] = [];
  try {
    const archiver = await startArchiver(config, loggers.archiver, { warehouse, metrics });
    started.push(archiver);
    const backfill = options.backfill
      ? await startBackfill(config, warehouse, loggers.backfill, { metrics })
      : undefined;
    return {
      done: archiver.done,
      async stop() {
        await backfill?.stop();
        await archiver.stop();
        await warehouse.close();
      },
    };
  } catch (error) {
    for (const service of started) await service.stop().catch(() => {});
    await warehouse.close();
    throw error;
  }
}
