/** Weight of the newest read in the running estimate of how long one takes. */
const WEIGHT = 0.3;

/** The read goes this much earlier than its expected time strictly needs: a late read stalls the loop. */
const MARGIN = 1.5;

/** Readings a batch applies before its pace is judged (a few yields' worth). */
const GAUGE_READINGS = 1_000;

/**
 * When the next read of a shard goes while a catch-up lane's chunk is
 * applied. Sent as the chunk starts to be applied, it brings the chunk
 * after and, ahead of it, the live entries that came by then; a live
 * reading that comes just after waits for two chunks' apply (~0.5 s each
 * on a 2-core VM). Sent as late as it can be while its reply still comes
 * before the chunk is applied, it brings nearly every live entry that came
 * during the chunk: those wait for the rest of that chunk only.
 *
 * How long the shard's reads that brought a chunk took (Redis busy with the
 * backlog's appends: 0.05–0.5 s) is a running estimate; how long the rest
 * of the batch takes is judged from its own pace so far, which varies 2–3×
 * from one chunk to the next (GC, commits' replies, the read's reply
 * parsed meanwhile): an estimate carried over from earlier batches pulled
 * too late whenever one had waited for its commits. Until a read was
 * measured, the read goes at once. No clock of its own: callers pass
 * `performance.now()` milliseconds.
 */
export class ReadAheadPace {
  #readMs: number | undefined;

  /** A read that brought a lane chunk took `ms`. */
  read(ms: number): void {
    this.#readMs = this.#readMs === undefined ? ms : this.#readMs + WEIGHT * (ms - this.#readMs);
  }

  /**
   * The judge of one batch holding a lane chunk: whether the next read is
   * due at `at`, with `left` of the batch's readings not yet applied.
   */
  during(): (left: number, at: number) => boolean {
    let first: { readonly left: number; readonly at: number } | undefined;
    return (left, at) => {
      const readMs = this.#readMs;
      if (readMs === undefined) return true;
      // Measured from the first report: what the batch waited for before it (room for its commit) is not its pace.
      if (first === undefined) first = { left, at };
      const done = first.left - left;
      if (done < GAUGE_READINGS) return false;
      return (left * (at - first.at)) / done <= readMs * MARGIN;
    };
  }
}
