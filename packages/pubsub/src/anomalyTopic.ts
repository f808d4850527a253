import type { PubSub, Topic } from '@google-cloud/pubsub';
import type { OutboxEvent } from '@streamgauge/redis';

/**
 * ANOMALY_TOPIC: each open and close event as a message (the event as JSON;
 * attributes `event_id`, `event`, `type`, `node_id`, `severity`). Delivery
 * is at least once (a publish whose reply was lost is sent again):
 * subscribers recognise a repeat by `event_id`.
 */
export class AnomalyTopic {
  readonly #topic: Topic;
  readonly #timeoutMs: number;

  constructor(client: PubSub, name: string, options: { timeoutMs?: number } = {}) {
    this.#topic = client.topic(name, { batching: { maxMessages: 100, maxMilliseconds: 10 } });
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  get name(): string {
    return this.#topic.name;
  }

  /** Publishes every event, or fails (a missing topic, a timeout): then none counts as sent. */
  async publish(events: readonly OutboxEvent[]): Promise<void> {
    const sent = Promise.all(
      events.map(({ event }) =>
        this.#topic.publishMessage({
          data: Buffer.from(JSON.stringify({ event: event.event, ...event.anomaly })),
          attributes: {
            event_id: `${event.anomaly.id}:${event.event}`,
            event: event.event,
            type: event.anomaly.type,
            node_id: event.anomaly.node_id,
            severity: event.anomaly.severity,
          },
        }),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`publishing to ${this.#topic.name} timed out after ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    });
    try {
      await Promise.race([sent, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.#topic.flush().catch(() => {});
  }
}
