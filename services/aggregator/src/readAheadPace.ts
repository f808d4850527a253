/** Weight of the newest measurement in the running estimates. */
const WEIGHT = 0.3;

/** The read goes this much earlier than its expected time strictly needs: a late read stalls the loop. */
const MARGIN = 1.5;

/**
 * When the next read of a shard goes while a catch-up lane's chunk is
 * applied. Sent as the chunk starts to be applied, it brings the chunk
 * after and, ahead of it, the live entries that came by then; a live
 * reading that comes just after waits for two chunks' apply (~0.7 s each
 * on a 2-core VM). Sent as late as it can be while its reply still comes
 * before the chunk is applied, it brings nearly every live entry that came
 * during the chunk: those wait for the rest of that chunk only.
 *
 * The estimates are the shard's own: how long its reads that brought a
 * chunk took (Redis busy with the backlog's appends: 0.1–0.4 s), and how
 * long a reading of its batches holding a chunk took to apply. Until both
 * are known, the read goes at once. No clock of its own: callers pass
 * `performance.now()` milliseconds.
 */
export class ReadAheadPace {
  #readMs: number | undefined;
  #msPerReading: number | undefined;

  /** A read that brought a lane chunk took `ms`. */
  read(ms: number): void {
    this.#readMs = blend(this.#readMs, ms);
  }

  /** A batch holding a lane chunk, of `readings` readings, took `ms` to apply. */
  applied(readings: number, ms: number): void {
    if (readings > 0) this.#msPerReading = blend(this.#msPerReading, ms / readings);
  }

  /**
   * Whether the next read is due, `elapsedMs` into applying a batch of
   * `readings` readings that holds a lane chunk.
   */
  due(readings: number, elapsedMs: number): boolean {
    if (this.#readMs === undefined || this.#msPerReading === undefined) return true;
    return elapsedMs >= readings * this.#msPerReading - this.#readMs * MARGIN;
  }
}

function blend(estimate: number | undefined, measured: number): number {
  return estimate === undefined ? measured : estimate + WEIGHT * (measured - estimate);
}
