import type { Counter } from 'prom-client';

export interface ScrapeSampleOptions {
  /** A value this recent is served again without reading (several gauges share one read per scrape). */
  readonly maxAgeMs?: number;
  /** Longest a scrape waits for the read; the last value read is served then (none yet: the series are left out). */
  readonly timeoutMs?: number;
  /** Called when a read fails or outlasts `timeoutMs`. */
  readonly onFailure?: (error: unknown) => void;
}

/**
 * A value read from Redis when /metrics is scraped: at most once per
 * `maxAgeMs`, and never waited for longer than `timeoutMs`, so a slow or
 * absent Redis cannot hang the scrape. A read that outlasts the timeout is
 * not started again while it is still in flight: scrapes do not pile reads
 * onto a struggling server.
 */
export class ScrapeSample<T> {
  readonly #read: () => Promise<T>;
  readonly #maxAgeMs: number;
  readonly #timeoutMs: number;
  readonly #onFailure: (error: unknown) => void;
  #value: T | undefined;
  #readAt = Number.NEGATIVE_INFINITY;
  #reading: Promise<T> | undefined;

  constructor(read: () => Promise<T>, options: ScrapeSampleOptions = {}) {
    this.#read = read;
    this.#maxAgeMs = options.maxAgeMs ?? 1_000;
    this.#timeoutMs = options.timeoutMs ?? 1_000;
    this.#onFailure = options.onFailure ?? (() => {});
  }

  /**
   * The value; when it cannot be read in time (or the read fails), the last
   * one read, however old: a Redis slower than the timeout must not make the
   * series vanish on every scrape. Undefined only before any read succeeded.
   */
  async get(): Promise<T | undefined> {
    if (performance.now() - this.#readAt < this.#maxAgeMs) return this.#value;
    if (this.#reading === undefined) {
      const reading = this.#read().then((value) => {
        this.#value = value;
        this.#readAt = performance.now();
        return value;
      });
      this.#reading = reading;
      reading.then(
        () => {
          this.#reading = undefined;
        },
        () => {
          this.#reading = undefined;
        },
      );
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    try {
      return await Promise.race([this.#reading, timeout]);
    } catch (error) {
      this.#onFailure(error);
      return this.#value;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * A fact about the whole pipeline that any connection watching it can read:
 * the newest watch's sample answers, and a stopped watch lets go. Its read
 * failures count under one `source` of `streamgauge_scrape_read_failures_total`.
 */
export class WatchedSample<T> {
  readonly #samples: ScrapeSample<T>[] = [];
  readonly #failures: Counter.Internal;
  readonly #options: ScrapeSampleOptions;

  constructor(failures: Counter<'source'>, source: string, options: ScrapeSampleOptions = {}) {
    this.#failures = failures.labels(source);
    this.#failures.inc(0);
    this.#options = options;
  }

  /** The value of the newest watch (undefined with none, or before its first read). */
  get(): Promise<T | undefined> | undefined {
    return this.#samples[this.#samples.length - 1]?.get();
  }

  watch(read: () => Promise<T>): () => void {
    const sample = new ScrapeSample(read, { ...this.#options, onFailure: () => this.#failures.inc() });
    this.#samples.push(sample);
    return () => {
      const at = this.#samples.indexOf(sample);
      if (at >= 0) this.#samples.splice(at, 1);
    };
  }
}
