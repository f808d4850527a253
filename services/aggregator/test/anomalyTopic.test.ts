import { type Message, PubSub } from '@google-cloud/pubsub';
import { anomalyKeys, type Reading, shardKeys } from '@streamgauge/core';
import { labelledReadings } from '@streamgauge/simulator';
import {
  PubSubEmulator,
  pubsubEmulatorAvailable,
  pubsubEmulatorUnavailableReason,
  useRedis,
} from '@streamgauge/testkit';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator } from '../src/index.ts';
import { feedLive, liveSetup, spans } from './support/liveFeed.ts';

const HOUR = 3_600_000;
const db = useRedis({ flushEach: true });
const available = pubsubEmulatorAvailable();
if (!available) console.warn(`SKIPPED anomalyTopic.test.ts: ${pubsubEmulatorUnavailableReason()}`);

let emulator: PubSubEmulator | undefined;
beforeAll(async () => {
  if (available) emulator = await PubSubEmulator.start();
}, 120_000);
afterAll(async () => emulator?.stop());

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!available)(
  'anomaly events on Pub/Sub (ANOMALY_TOPIC), real client over the real protocol',
  () => {
    it('publishes every open and close; a topic that stops answering holds up neither aggregation nor the read model', async () => {
      if (emulator === undefined) throw new Error('no emulator');
      const client = new PubSub(emulator.clientOptions);
      const [topic] = await client.createTopic('anomalies');
      const [subscription] = await topic.createSubscription('watch', { ackDeadlineSeconds: 10 });
      const received = new Map<string, Record<string, unknown>>();
      subscription.on('message', (message: Message) => {
        received.set(message.attributes.event_id ?? '', JSON.parse(message.data.toString()));
        message.ack();
      });

      const start = Date.now() - 10 * 24 * HOUR;
      const data = labelledReadings({
        nodes: 2,
        days: 10,
        start,
        seed: 41,
        inject: ['pressure_drop', 'burst', 'offline'],
      });
      const { clock, ticks, config, log } = liveSetup(db.client, db.url, start, {
        ANOMALY_TOPIC: 'anomalies',
      });
      const aggregator = await startAggregator(
        config,
        pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
        {
          clock,
          ticks$: ticks,
          pubsub: new PubSub(emulator.clientOptions),
        },
      );
      const shard = shardKeys(0, 1);
      const end = (data.readings.at(-1) as Reading).timestamp;
      const pauseFrom = start + 7 * 24 * HOUR;
      let paused = false;
      try {
        // Aggregation goes on while the topic does not answer (feedLive waits for it).
        await feedLive({ client: db.client, log, clock, ticks }, data.readings, spans(start, end, 4 * HOUR), {
          before: (from) => {
            if (paused || from < pauseFrom) return;
            emulator?.pause();
            paused = true;
          },
        });
        // The read model got every event meanwhile; Pub/Sub is behind.
        const outboxLast = async () =>
          (await db.client.xrevrange(shard.anomalies.outbox, '+', '-', 'COUNT', 1))[0]?.[0];
        await until(
          'the read model',
          async () => (await db.client.get(shard.anomalies.published)) === (await outboxLast()),
        );
        expect(await db.client.get(shard.anomalies.pubsub)).not.toBe(await outboxLast());
        const latest = await db.client.hget(`node:${data.readings.at(-1)?.node_id}:latest`, 'timestamp');
        expect(latest).toBeTruthy();

        emulator.resume();
        await until(
          'Pub/Sub to catch up',
          async () => (await db.client.get(shard.anomalies.pubsub)) === (await outboxLast()),
          60_000,
        );
        const ids = ((await db.client.xrange(anomalyKeys.stream, '-', '+')) as [string, string[]][]).map(
          ([, f]) => {
            const e = JSON.parse(f[1] ?? '{}');
            return `${e.id}:${e.event}`;
          },
        );
        expect(ids.length).toBeGreaterThan(4);
        await until('every message', async () => ids.every((id) => received.has(id)));
        expect([...received.keys()].sort()).toEqual([...ids].sort());
        const drop = data.events.find((e) => e.kind === 'pressure_drop');
        const open = [...received.values()].find(
          (m) => m.event === 'open' && m.type === 'low_pressure' && m.node_id === drop?.nodeId,
        );
        expect(open).toMatchObject({ severity: 'critical', opened_at: drop?.start });
      } finally {
        if (paused) emulator.resume();
        await aggregator.stop();
        await subscription.close();
        await client.close();
      }
    }, 120_000);
  },
);
