import { type AnomalyEvent, type AnomalyRecord, anomalyKeys, type ShardKeys } from '@streamgauge/core';
import { sendBatchOrThrow } from '../batch.ts';
import type { RedisClient } from '../connection.ts';
import { runScript } from '../scripts.ts';

/** Events in the `anomalies` stream (and ids remembered to recognise a republished one). */
const STREAM_KEPT = 100_000;
/** DATA_MODEL.md: `anomalies:recent` holds at most 1000. */
const RECENT_KEPT = 1000;
const PAGE = 500;

/** An event as read from a shard's outbox. */
export interface OutboxEvent {
  readonly entry: string;
  readonly event: AnomalyEvent;
}

/**
 * Copies anomaly events from a shard's outbox (written with the state that
 * produced them, so each exactly once) to where they are shown: the
 * `anomalies` stream, `anomalies:recent` (opens, as DATA_MODEL.md's
 * records) and `node:{id}:anomalies` (what is open, by type). Each target
 * recognises an event it already holds, so after a crash between the copy
 * and the recorded progress, copying again adds nothing.
 */
export class AnomalySink {
  readonly #redis: RedisClient;
  readonly #ttlSeconds: number;

  constructor(redis: RedisClient, options: { ttlSeconds: number }) {
    this.#redis = redis;
    this.#ttlSeconds = options.ttlSeconds;
  }

  /** Events of the shard's outbox after `cursor` (a cursor key's value), oldest first. */
  async read(shard: ShardKeys, cursorKey: string, count = PAGE): Promise<OutboxEvent[]> {
    const cursor = (await this.#redis.get(cursorKey)) ?? '0-0';
    const rows = (await this.#redis.xrange(shard.anomalies.outbox, `(${cursor}`, '+', 'COUNT', count)) as [
      string,
      string[],
    ][];
    return rows.map(([entry, fields]) => ({
      entry,
      event: JSON.parse(fields[fields.indexOf('event') + 1] ?? 'null') as AnomalyEvent,
    }));
  }

  /** Records that a consumer of the outbox (a cursor key) has handled it up to `entry`. */
  async advance(cursorKey: string, entry: string): Promise<void> {
    await this.#redis.set(cursorKey, entry);
  }

  /** Copies the shard's next events to Redis' read model; returns how many it handled. */
  async copy(shard: ShardKeys): Promise<number> {
    const events = await this.read(shard, shard.anomalies.published);
    if (events.length === 0) return 0;
    const now = Date.now();
    for (const { event } of events) {
      const { anomaly } = event;
      const id = `${anomaly.id}:${event.event}`;
      await runScript(
        this.#redis,
        'appendAnomalyEvent',
        [anomalyKeys.stream, anomalyKeys.streamIds],
        [id, JSON.stringify({ event: event.event, ...anomaly }), STREAM_KEPT, now],
      );
      if (event.event === 'open') {
        await runScript(
          this.#redis,
          'pushRecentAnomaly',
          [anomalyKeys.recent, anomalyKeys.recentIds],
          [anomaly.id, JSON.stringify(recentRecord(anomaly)), RECENT_KEPT, now, this.#ttlSeconds],
        );
      }
    }
    // Per node, what is open: in order, so a close that follows its open wins.
    await sendBatchOrThrow(this.#redis, (batch) => {
      for (const { event } of events) {
        const key = anomalyKeys.open(event.anomaly.node_id);
        if (event.event === 'open') batch.hset(key, event.anomaly.type, JSON.stringify(event.anomaly));
        else batch.hdel(key, event.anomaly.type);
        batch.expire(key, this.#ttlSeconds);
      }
      batch.set(shard.anomalies.published, (events[events.length - 1] as OutboxEvent).entry);
    });
    return events.length;
  }
}

/**
 * An `anomalies:recent` entry: DATA_MODEL.md's fields (`node_id`,
 * `timestamp` as the dashboard writes times, `anomaly_type`, `severity`,
 * `flow_rate`, `pressure`), then ours.
 */
export function recentRecord(anomaly: AnomalyRecord): Record<string, unknown> {
  return {
    node_id: anomaly.node_id,
    timestamp: new Date(anomaly.opened_at).toISOString().replace('T', ' ').slice(0, 19),
    anomaly_type: anomaly.type,
    severity: anomaly.severity,
    flow_rate: anomaly.reading?.flow_rate ?? 0,
    pressure: anomaly.reading?.pressure ?? 0,
    id: anomaly.id,
    value: anomaly.values.first,
    expected_low: anomaly.expected.low ?? null,
    expected_high: anomaly.expected.high ?? null,
    rules: anomaly.rules,
  };
}
