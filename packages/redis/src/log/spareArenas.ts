import type { GrowingArena } from '@streamgauge/core';

/**
 * Larger arenas are not kept (larger commits are rare: a stop's
 * checkpoint). A catch-up's commits of 10,000 nodes take 10–60 MB, in
 * arenas grown by doubling to 75 MB: with 64 MB here those were dropped,
 * and the next commit started from fresh memory again.
 */
const MAX_SPARE_BYTES = 128 * 1024 * 1024;
/** Spare memory is let go after it was not asked for this long. */
const SPARE_IDLE_MS = 5_000;

/**
 * The memory of commits done, for the next ones to be encoded into (see
 * GrowingArena.reset: fresh memory costs its first touch, ~3 ms a MB on
 * these VMs). At most `kept` arenas, let go once none was asked for in
 * SPARE_IDLE_MS, so a shard whose commits stop holds nothing.
 */
export class SpareArenas {
  readonly #kept: number;
  readonly #arenas: GrowingArena[] = [];
  #idle: NodeJS.Timeout | undefined;

  constructor(kept: number) {
    this.#kept = kept;
  }

  /** An arena done with, if one is kept. */
  take(): GrowingArena | undefined {
    this.#idle?.refresh();
    return this.#arenas.pop();
  }

  /** Keeps an arena whose contents are done with (sent, and the reply received). */
  give(arena: GrowingArena): void {
    if (this.#arenas.length >= this.#kept || arena.bytes.length > MAX_SPARE_BYTES) return;
    this.#arenas.push(arena);
    if (this.#idle === undefined) {
      this.#idle = setTimeout(() => {
        this.#arenas.length = 0;
        this.#idle = undefined;
      }, SPARE_IDLE_MS);
      this.#idle.unref();
    } else {
      this.#idle.refresh();
    }
  }
}
