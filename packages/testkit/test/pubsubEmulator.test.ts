import { type Message, PubSub, type Subscription } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PubSubEmulator, pubsubEmulatorUnavailableReason } from '../src/index.ts';

const unavailable = pubsubEmulatorUnavailableReason();
if (unavailable) console.warn(`SKIPPED pubsubEmulator.test.ts: no Pub/Sub emulator here: ${unavailable}`);

/** Calls `onMessage` for each delivery until it returns true; then resolves with every message seen. */
function receive(
  subscription: Subscription,
  onMessage: (message: Message, seen: Message[]) => boolean,
  timeoutMs = 20_000,
): Promise<Message[]> {
  return new Promise((resolve, reject) => {
    const seen: Message[] = [];
    const done = (error?: Error) => {
      clearTimeout(timer);
      subscription.off('message', handle);
      subscription.off('error', done);
      if (error) reject(error);
      else resolve(seen);
    };
    const handle = (message: Message) => {
      seen.push(message);
      if (onMessage(message, seen)) done();
    };
    const timer = setTimeout(() => done(new Error(`timed out after ${seen.length} deliveries`)), timeoutMs);
    subscription.on('message', handle);
    subscription.on('error', done);
  });
}

describe.skipIf(unavailable !== undefined)(
  'PubSubEmulator (pstest) with the real @google-cloud/pubsub client',
  () => {
    let emulator: PubSubEmulator;
    let pubsub: PubSub;
    const subscriptions: Subscription[] = [];
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);

    beforeAll(async () => {
      process.on('warning', onWarning);
      // The first run on a machine builds the Go binary (about 10 s cold).
      emulator = await PubSubEmulator.start();
      // Emulator mode (insecure channel) without the ADC / GCE metadata lookup: see clientOptions.
      pubsub = new PubSub(emulator.clientOptions);
    }, 120_000);

    afterAll(async () => {
      for (const subscription of subscriptions) await subscription.close();
      await pubsub?.close();
      await emulator?.stop();
      await emulator?.stop(); // safe twice
      process.off('warning', onWarning);
    });

    it('serves on 127.0.0.1 at the port it printed', () => {
      expect(emulator.host).toBe(`127.0.0.1:${emulator.port}`);
      expect(emulator.env).toMatchObject({
        PUBSUB_EMULATOR_HOST: emulator.host,
        PUBSUB_PROJECT_ID: 'streamgauge-test',
      });
      expect(pubsub.isEmulator).toBe(true);
    });

    it('delivers 100 published messages, bodies and attributes intact, over streaming pull', async () => {
      const [topic] = await pubsub.createTopic('readings');
      // The fake rejects a subscription without an explicit ack deadline (10 to 600 s).
      const [subscription] = await topic.createSubscription('readings-all', { ackDeadlineSeconds: 10 });
      subscriptions.push(subscription);

      const sent = Array.from({ length: 100 }, (_, i) => ({
        body: JSON.stringify({ sensor: `s-${i % 7}`, seq: i, value: i * 1.5 }),
        attributes: { seq: String(i), sensor: `s-${i % 7}`, kind: 'reading' },
      }));
      const received = receive(subscription, (message, seen) => {
        message.ack();
        return seen.length >= sent.length;
      });
      const ids = await Promise.all(
        sent.map(({ body, attributes }) => topic.publishMessage({ data: Buffer.from(body), attributes })),
      );
      expect(new Set(ids).size).toBe(100);

      const messages = await received;
      const bySeq = new Map(messages.map((m) => [Number(m.attributes.seq), m]));
      expect(bySeq.size).toBe(100);
      for (const [i, expected] of sent.entries()) {
        const message = bySeq.get(i);
        expect(message?.data.toString('utf8')).toBe(expected.body);
        expect(message?.attributes).toEqual(expected.attributes);
        expect(message?.id).toBe(ids[i]);
      }
    });

    it('redelivers a nacked message well before its ack deadline', async () => {
      const [topic] = await pubsub.createTopic('alerts');
      const [subscription] = await topic.createSubscription('alerts-nack', { ackDeadlineSeconds: 10 });
      subscriptions.push(subscription);

      // The client modAcks each message on receipt and batches modAcks for up to
      // 100 ms, one RPC per deadline, sent concurrently: a nack inside that window
      // races the receipt modAck, and if the fake applies the nack first the
      // message stays leased until its ack deadline (10 s). So nack a bit later.
      const received = receive(
        subscription,
        (message, seen) => {
          if (seen.length === 1) {
            setTimeout(() => message.nack(), 300);
            return false;
          }
          message.ack();
          return true;
        },
        // Under the 10 s ack deadline: a redelivery by expiry alone would fail the test.
        6_000,
      );
      const id = await topic.publishMessage({
        data: Buffer.from('over threshold'),
        attributes: { level: 'high' },
      });

      const [first, second] = await received;
      expect(first?.id).toBe(id);
      expect(second?.id).toBe(id);
      expect(second?.data.toString('utf8')).toBe('over threshold');
      expect(second?.attributes).toEqual({ level: 'high' });
    });

    it('pause() freezes it (a publish waits) and resume() lets the publish through', async () => {
      const [topic] = await pubsub.createTopic('paused');
      emulator.pause();
      let settled = false;
      const publishing = topic.publishMessage({ data: Buffer.from('while paused') }).finally(() => {
        settled = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(settled).toBe(false);
      emulator.resume();
      await expect(publishing).resolves.toMatch(/\S/);
    });

    it('never probed the GCE metadata server', () => {
      // With plain { projectId, apiEndpoint } google-auth looks for credentials and,
      // off GCE, warns "MetadataLookupWarning ... ENOTFOUND".
      expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
    });
  },
);
