import { backoffMs, checkReading, sleep } from '@streamgauge/core';
import {
  type ArchiveLog,
  type DeliveredBatch,
  isUnavailable,
  type ReadableEntry,
  type Triage,
  triage,
} from '@streamgauge/redis';
import { rowOf, type Warehouse, type WarehouseRow } from '@streamgauge/warehouse';
import type { Logger } from 'pino';

/** Ingest already judged event times against its clock: any time passes here. */
const ACCEPTED = { nowMs: 0, maxFutureMs: Number.POSITIVE_INFINITY };

export interface ArchiverOptions {
  readonly group: string;
  /** An entry that failed this many deliveries is dead-lettered. */
  readonly maxDeliveries: number;
  readonly logger: Logger;
}

export interface ArchiveOutcome {
  readonly entries: number;
  /** Readings of the entries that could be archived. */
  readonly readings: number;
  readonly inserted: number;
  readonly duplicates: number;
  readonly dead: number;
  readonly failed: number;
  /** Every entry up to this id is in the warehouse. */
  readonly watermark: string | undefined;
}

/**
 * Consumer group `archiver`: every reading of a batch goes into the
 * warehouse, and only once the warehouse has committed them are the entries
 * acknowledged. A crash in between leaves them pending; they are written
 * again and the warehouse skips the identities it holds (one row per
 * `(node_id, timestamp)`), so no reading is written twice or lost.
 */
export class Archiver {
  readonly #warehouse: Warehouse;
  readonly #options: ArchiverOptions;
  #stopping = false;

  constructor(warehouse: Warehouse, options: ArchiverOptions) {
    this.#warehouse = warehouse;
    this.#options = options;
  }

  stop(): void {
    this.#stopping = true;
  }

  async apply(batch: DeliveredBatch, log: ArchiveLog): Promise<ArchiveOutcome> {
    const { group, maxDeliveries } = this.#options;
    // Entries that decode are always written, however often they were
    // delivered: giving up on one would leave its readings out of the
    // system of record. Only entries that cannot be processed fail.
    const sorted = triage(batch.entries, maxDeliveries, new Map(), false);
    const rows: WarehouseRow[] = [];
    const ready: ReadableEntry[] = [];
    for (const entry of sorted.ready) {
      const entryRows = this.#rowsOf(entry);
      if (typeof entryRows === 'string') {
        const failure = { id: entry.id, error: entryRows };
        if (entry.deliveries >= maxDeliveries) sorted.dead.push({ ...failure, deliveries: entry.deliveries });
        else sorted.failures.push(failure);
        continue;
      }
      ready.push(entry);
      for (const row of entryRows) rows.push(row);
    }
    this.#logFailures(batch.shard.stream, sorted);
    const written = await this.#retry(() => this.#warehouse.insert(rows), 'warehouse');
    const commit = log.prepare({
      group,
      ackIds: ready.map((e) => e.id),
      deadLetters: sorted.dead,
      failures: sorted.failures,
      counters: {
        entries: batch.entries.length,
        redelivered: batch.entries.filter((e) => e.deliveries > 1).length,
        readings: rows.length,
        inserted: written.inserted,
        duplicates: written.duplicates,
        dead: sorted.dead.length,
        failed: sorted.failures.length,
      },
    });
    await this.#retry(commit, 'acknowledgement');
    const last = batch.entries[batch.entries.length - 1]?.id;
    const watermark =
      last === undefined
        ? undefined
        : await this.#retry(() => log.advanceWatermark(group, last), 'watermark');
    return {
      entries: batch.entries.length,
      readings: rows.length,
      inserted: written.inserted,
      duplicates: written.duplicates,
      dead: sorted.dead.length,
      failed: sorted.failures.length,
      watermark,
    };
  }

  /**
   * The entry's rows, or why it cannot be archived: ingest validated its
   * readings, but an entry written by anything else is checked again (one
   * bad row must not make every insert of the batch fail).
   */
  #rowsOf(entry: ReadableEntry): WarehouseRow[] | string {
    const rows: WarehouseRow[] = [];
    for (const [i, raw] of entry.readings.entries()) {
      const checked = checkReading(raw, ACCEPTED);
      if (!checked.ok) return `reading ${i}: ${checked.error}`;
      rows.push(rowOf(checked.reading, { entry: entry.id, source: entry.source }));
    }
    return rows;
  }

  #logFailures(stream: string, sorted: Triage): void {
    const { logger } = this.#options;
    for (const dead of sorted.dead) logger.error({ stream, ...dead }, 'entry dead-lettered');
    for (const failure of sorted.failures) {
      logger.warn({ stream, ...failure }, 'entry failed; it stays pending and will be delivered again');
    }
  }

  /**
   * Retries until it succeeds: the batch must be written and acknowledged
   * before the next (an unavailable Redis, or a warehouse error, may pass).
   * A retried warehouse write is safe (it skips the rows it holds). Stops
   * retrying when the archiver stops: the batch stays pending.
   */
  async #retry<T>(work: () => Promise<T>, what: string): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (this.#stopping) throw error;
        const level = isUnavailable(error) ? 'warn' : 'error';
        this.#options.logger[level]({ err: error, attempt }, `writing the ${what} failed; retrying`);
        await sleep(backoffMs(attempt, { baseMs: 100, maxMs: 5_000 }));
      }
    }
  }
}
