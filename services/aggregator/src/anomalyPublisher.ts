import type { ShardKeys } from '@streamgauge/core';
import type { AnomalyTopic } from '@streamgauge/pubsub';
import type { AnomalySink, OutboxEvent } from '@streamgauge/redis';
import type { Logger } from 'pino';

/** Somewhere anomaly events go: copies what a shard's outbox holds beyond the target's own cursor. */
export interface AnomalyTarget {
  readonly name: string;
  /** Copies the next events of the shard; returns how many (0: nothing waiting). */
  copy(shard: ShardKeys): Promise<number>;
}

/** The dashboard's anomaly keys in Redis (AnomalySink.copy). */
export function redisTarget(sink: AnomalySink): AnomalyTarget {
  return { name: 'redis', copy: (shard) => sink.copy(shard) };
}

/**
 * ANOMALY_TOPIC: the topic's cursor advances only once the topic has taken
 * every event read, so a failed publish sends them all again (subscribers
 * recognise repeats by `event_id`).
 */
export function pubsubTarget(sink: AnomalySink, topic: AnomalyTopic): AnomalyTarget {
  return {
    name: `pubsub:${topic.name}`,
    copy: async (shard) => {
      const events = await sink.read(shard, shard.anomalies.pubsub);
      if (events.length === 0) return 0;
      await topic.publish(events);
      await sink.advance(shard.anomalies.pubsub, (events[events.length - 1] as OutboxEvent).entry);
      return events.length;
    },
  };
}

/**
 * Copies the anomaly events of the shards this replica holds from their
 * outboxes to each target, one loop per target on its own timer: a slow
 * or failing target (a Pub/Sub topic that is gone) holds up neither the
 * batches nor the other targets. Events are in the outbox as soon as their
 * batch is committed, so nothing is lost while a target waits or retries.
 */
export class AnomalyPublisher {
  readonly #targets: readonly AnomalyTarget[];
  readonly #shards: () => readonly ShardKeys[];
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #running = new Map<AnomalyTarget, Promise<void>>();
  readonly #failing = new Set<AnomalyTarget>();
  #stopped = false;

  constructor(
    targets: readonly AnomalyTarget[],
    shards: () => readonly ShardKeys[],
    logger: Logger,
    intervalMs = 250,
  ) {
    this.#targets = targets;
    this.#shards = shards;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    for (const target of this.#targets) {
      const loop = () => {
        this.#running.set(
          target,
          this.#drain(target).finally(() => {
            if (this.#stopped) return;
            const timer = setTimeout(() => {
              this.#timers.delete(timer);
              loop();
            }, this.#intervalMs);
            this.#timers.add(timer);
          }),
        );
      };
      loop();
    }
  }

  async #drain(target: AnomalyTarget): Promise<void> {
    for (const shard of this.#shards()) {
      try {
        while ((await target.copy(shard)) > 0) {}
        if (this.#failing.delete(target))
          this.#logger.info({ target: target.name }, 'anomaly events flow again');
      } catch (error) {
        if (!this.#failing.has(target)) {
          this.#logger.warn(
            { err: error, target: target.name, stream: shard.stream },
            'copying anomaly events failed; they wait in the outbox and are retried',
          );
        }
        this.#failing.add(target);
      }
    }
  }

  /** Stops after a last copy to each target (one that fails stays behind: its events wait in the outbox). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    await Promise.all(this.#running.values());
    await Promise.all(this.#targets.map((target) => this.#drain(target)));
  }
}
