import type { ShardKeys } from '@streamgauge/core';
import type { DeliveredBatch, StreamConsumer } from './streamConsumer.ts';

export interface ShardPull {
  readonly batch: DeliveredBatch;
  /** This batch ends the scan of everything pending that follows the start. */
  readonly settled: boolean;
}

/**
 * What a consumer pulls next from one shard: first a scan of everything
 * pending in the group (entries a dead or earlier consumer never
 * acknowledged), then new entries, with a scan of entries pending longer
 * than `claimIdleMs` every so often, after a reconnection, and after a read
 * that failed (its reply may have been lost after Redis delivered it).
 *
 * One pull at a time, the next only once the last batch is acknowledged:
 * then a scan can never claim entries that are in this process, waiting to
 * be processed, and scanning everything pending is safe.
 */
export class ShardReader {
  readonly #consumer: StreamConsumer;
  readonly #shard: ShardKeys;
  readonly #claimIdleMs: number;
  #scan: { minIdleMs: number; cursor: string; settle: boolean } | undefined = {
    minIdleMs: 0,
    cursor: '0-0',
    settle: true,
  };
  #nextScanAt: number;
  #readFailed = false;

  constructor(consumer: StreamConsumer, shard: ShardKeys, options: { claimIdleMs: number }) {
    this.#consumer = consumer;
    this.#shard = shard;
    this.#claimIdleMs = options.claimIdleMs;
    this.#nextScanAt = Date.now() + options.claimIdleMs;
  }

  /** The connection came back: scan what is pending before reading on. */
  reconnected(): void {
    this.#scan ??= { minIdleMs: 0, cursor: '0-0', settle: false };
  }

  async next(): Promise<ShardPull> {
    if (this.#readFailed) {
      this.#readFailed = false;
      this.reconnected();
    }
    if (this.#scan === undefined && Date.now() >= this.#nextScanAt) {
      this.#scan = { minIdleMs: this.#claimIdleMs, cursor: '0-0', settle: false };
    }
    const scan = this.#scan;
    if (scan !== undefined) {
      const page = await this.#consumer.claim(this.#shard, scan.minIdleMs, scan.cursor);
      const finished = page.next === '0-0';
      this.#scan = finished ? undefined : { ...scan, cursor: page.next };
      if (finished) this.#nextScanAt = Date.now() + this.#claimIdleMs / 2;
      return { batch: page.batch, settled: finished && scan.settle };
    }
    try {
      return { batch: await this.#consumer.read(this.#shard), settled: false };
    } catch (error) {
      this.#readFailed = true;
      throw error;
    }
  }
}
