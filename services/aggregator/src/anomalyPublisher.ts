import type { ShardKeys } from '@streamgauge/core';
import type { AnomalySink } from '@streamgauge/redis';
import type { Logger } from 'pino';

/**
 * Copies the anomaly events of the shards this replica holds from their
 * outboxes to the read model, on its own timer: a slow or failing copy
 * never holds up a batch. Events are in the outbox as soon as their batch
 * is committed, so nothing is lost while this waits or retries.
 */
export class AnomalyPublisher {
  readonly #sink: AnomalySink;
  readonly #shards: () => readonly ShardKeys[];
  readonly #logger: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;
  #failing = false;

  constructor(sink: AnomalySink, shards: () => readonly ShardKeys[], logger: Logger, intervalMs = 250) {
    this.#sink = sink;
    this.#shards = shards;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    const loop = () => {
      this.#running = this.drain().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(loop, this.#intervalMs);
      });
    };
    loop();
  }

  /** Copies everything waiting in the held shards' outboxes. */
  async drain(): Promise<void> {
    for (const shard of this.#shards()) {
      try {
        while ((await this.#sink.copy(shard)) > 0) {}
        if (this.#failing) this.#logger.info('anomaly events are copied again');
        this.#failing = false;
      } catch (error) {
        if (!this.#failing)
          this.#logger.warn({ err: error, stream: shard.stream }, 'copying anomaly events failed; retrying');
        this.#failing = true;
      }
    }
  }

  /** Stops after a last copy of what is waiting. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
    await this.drain();
  }
}
