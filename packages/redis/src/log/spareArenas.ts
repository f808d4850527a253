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

  /**
   * The largest arena done with, if one is kept. The largest, not the last
   * given: a catch-up's commit taking a spare half its size grew it by
   * doubling (42 to 85 MB, 0.2–0.47 s of the loop in fresh memory) while
   * a spare of its size waited unused.
   */
  take(): GrowingArena | undefined {
    this.#idle?.refresh();
    const arenas = this.#arenas;
    let largest = 0;
    for (let i = 1; i < arenas.length; i++) {
      if ((arenas[i] as GrowingArena).bytes.length > (arenas[largest] as GrowingArena).bytes.length)
        largest = i;
    }
    const taken = arenas[largest];
    if (taken !== undefined) arenas.splice(largest, 1);
    return taken;
  }

  /**
   * Keeps an arena whose contents are done with (sent, and the reply
   * received); with `kept` already, in place of the smallest when larger.
   */
  give(arena: GrowingArena): void {
    if (arena.bytes.length > MAX_SPARE_BYTES) return;
    const arenas = this.#arenas;
    if (arenas.length >= this.#kept) {
      let smallest = 0;
      for (let i = 1; i < arenas.length; i++) {
        if ((arenas[i] as GrowingArena).bytes.length < (arenas[smallest] as GrowingArena).bytes.length)
          smallest = i;
      }
      if ((arenas[smallest] as GrowingArena).bytes.length >= arena.bytes.length) return;
      arenas.splice(smallest, 1);
    }
    arenas.push(arena);
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
