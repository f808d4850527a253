/**
 * Runs an async task on request, at most once per `gapMs` and never two at
 * once: a burst of change events (one per aggregator batch) becomes one
 * refetch, and the last request of a burst is always honoured.
 */
export class Coalescer {
  readonly #task: () => Promise<void>;
  readonly #gapMs: number;
  #lastStart = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #again = false;
  #stopped = false;

  constructor(task: () => Promise<void>, gapMs: number) {
    this.#task = task;
    this.#gapMs = gapMs;
  }

  request(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, this.#lastStart + this.#gapMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#run();
    }, wait);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #run(): Promise<void> {
    this.#running = true;
    this.#lastStart = Date.now();
    try {
      await this.#task();
    } catch {
      // Tasks report their own errors; a failure must not stop later refreshes.
    } finally {
      this.#running = false;
      if (this.#again) {
        this.#again = false;
        this.request();
      }
    }
  }
}

/** Calls `fn` once input has paused for `ms`. */
export function debounce(fn: () => void, ms: number): { (): void; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const debounced = () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/**
 * One request at a time per view: starting a fetch aborts the previous
 * one, so an older answer (a slow search for "v" after the one for "via")
 * can never overwrite a newer one.
 */
export class LatestOnly {
  #controller: AbortController | undefined;

  begin(): AbortSignal {
    this.#controller?.abort();
    this.#controller = new AbortController();
    return this.#controller.signal;
  }

  abort(): void {
    this.#controller?.abort();
    this.#controller = undefined;
  }
}
