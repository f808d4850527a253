import { Message, PubSub, type Topic } from '@google-cloud/pubsub';
import { type Clock, decodeEntry, type Env, loadConfig, type Reading, systemClock } from '@streamgauge/core';
import { connectRedis, loadScripts, ReadingLog, type RedisClient } from '@streamgauge/redis';
import {
  metricValue,
  PubSubEmulator,
  parseMetrics,
  pubsubEmulatorAvailable,
  pubsubEmulatorUnavailableReason,
  RedisServer,
  useRedis,
} from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startIngest } from '../src/main.ts';
import { PubSubSource } from '../src/pubsubSource.ts';

const db = useRedis({ flushEach: true });
const available = pubsubEmulatorAvailable();
if (!available) console.warn(`SKIPPED pubsubSource.test.ts: ${pubsubEmulatorUnavailableReason()}`);
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

let emulator: PubSubEmulator | undefined;
beforeAll(async () => {
  if (available) emulator = await PubSubEmulator.start();
}, 120_000);
afterAll(async () => emulator?.stop());

const now = Date.now();
/** Minutes ago, epoch ms. */
const t = (minutesAgo: number) => now - minutesAgo * 60_000;

/**
 * Polls until `check` holds. The default deadline covers a redelivery that
 * comes only at the 10 s ack deadline: the client extends leases at random
 * moments, and an extension sent together with a nack can land after it.
 */
async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 25_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function streamEntries(client: Redis): Promise<{ source: string; readings: Reading[] }[]> {
  const entries = await client.xrange('readings', '-', '+');
  return entries.map(([id, fields]) => decodeEntry(id, fields));
}

const identities = (entries: { readings: Reading[] }[]) =>
  entries.flatMap((e) => e.readings.map((r) => `${r.node_id}@${r.timestamp}`)).sort();

/**
 * What the real client did, in order: each message's acks and nacks (the
 * client's own Message methods, watched) and each append's start and end.
 */
const timeline: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  timeline.length = 0;
});
function watchAcks(): void {
  const { ack, nack } = Message.prototype;
  vi.spyOn(Message.prototype, 'ack').mockImplementation(function (this: Message) {
    timeline.push(`ack ${this.id}`);
    ack.call(this);
  });
  vi.spyOn(Message.prototype, 'nack').mockImplementation(function (this: Message) {
    timeline.push(`nack ${this.id}`);
    nack.call(this);
  });
}
const count = (event: string) => timeline.filter((e) => e === event).length;

let names = 0;

interface Rig {
  readonly client: PubSub;
  readonly topic: Topic;
  readonly source: PubSubSource;
  readonly redis: RedisClient;
  /** Dead letters received so far. */
  readonly deadLetters: { data: string; attributes: Record<string, string> }[];
  /** Publishes one message; resolves with its id. */
  publish(data: unknown, attributes?: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

/**
 * A topic with the source's subscription, a dead-letter topic watched by a
 * subscription of the test's own, and a source on them. `tag` names the
 * appends in the timeline by the first reading's node id.
 */
async function rig(
  redisUrl: string,
  options: { env?: Env; retryDelayMs?: number; appendDelayMs?: number; commandTimeoutMs?: number } = {},
): Promise<Rig> {
  if (emulator === undefined) throw new Error('no emulator');
  const n = ++names;
  const client = new PubSub(emulator.clientOptions);
  const [topic] = await client.createTopic(`readings-${n}`);
  await topic.createSubscription(`ingest-${n}`, { ackDeadlineSeconds: 10 });
  const [deadTopic] = await client.createTopic(`dead-letters-${n}`);
  const [deadWatch] = await deadTopic.createSubscription(`dead-watch-${n}`, { ackDeadlineSeconds: 10 });
  const deadLetters: Rig['deadLetters'] = [];
  deadWatch.on('message', (message: Message) => {
    deadLetters.push({ data: message.data.toString(), attributes: { ...message.attributes } });
    message.ack();
  });
  const config = loadConfig({
    REDIS_URL: redisUrl,
    PUBSUB_SUBSCRIPTION: `ingest-${n}`,
    PUBSUB_DEAD_LETTER_TOPIC: `dead-letters-${n}`,
    ...options.env,
  });
  const redis = connectRedis(config.redis, {
    name: 'pubsub-test',
    failFast: true,
    commandTimeoutMs: options.commandTimeoutMs ?? 5_000,
  });
  redis.on('error', () => {});
  loadScripts(redis);
  const log = new ReadingLog(redis, { ...config.stream, clock: systemClock as Clock });
  const source = new PubSubSource({
    client,
    readingLog: {
      async append(readings, from) {
        const tag = readings[0]?.node_id;
        timeline.push(`append ${tag}`);
        if (options.appendDelayMs) await new Promise((r) => setTimeout(r, options.appendDelayMs));
        try {
          const result = await log.append(readings, from);
          timeline.push(`appended ${tag}`);
          return result;
        } catch (error) {
          timeline.push(`append failed ${tag}`);
          throw error;
        }
      },
    },
    config: { ...config.ingest, pubsub: config.ingest.pubsub as NonNullable<typeof config.ingest.pubsub> },
    clock: systemClock,
    logger,
    ...(options.retryDelayMs !== undefined && { retryDelayMs: options.retryDelayMs }),
  });
  source.start();
  return {
    client,
    topic,
    source,
    redis,
    deadLetters,
    publish: (data, attributes = {}) =>
      topic.publishMessage({
        data: Buffer.isBuffer(data)
          ? data
          : Buffer.from(typeof data === 'string' ? data : JSON.stringify(data)),
        attributes,
      }),
    async close() {
      await source.close();
      await deadWatch.close();
      await client.close();
      redis.disconnect();
    },
  };
}

describe.skipIf(!available)('the Pub/Sub source, real client over the real protocol (pstest)', () => {
  it('appends each message once and acks it only after its append resolved', async () => {
    watchAcks();
    // Each append takes 300 ms longer: an ack sent on receipt would come first.
    const r = await rig(db.url, { appendDelayMs: 300 });
    try {
      const ids = {
        A: await r.publish({ node_id: 'A', timestamp: t(10), flow_rate: 1.5 }),
        B: await r.publish([
          { node_id: 'B', timestamp: new Date(t(10)).toISOString(), pressure: 3 },
          { node_id: 'B', timestamp: t(9), pressure: 3.5 },
        ]),
        C: await r.publish(
          { readings: [{ node_id: 'C', timestamp: t(10), temperature: 18 }] },
          { gateway: 'north' },
        ),
        D: await r.publish(
          `${JSON.stringify({ node_id: 'D', timestamp: t(10), volume: 12 })}\n\n${JSON.stringify({ node_id: 'D', timestamp: t(9), volume: 13 })}\n`,
          { 'content-type': 'application/x-ndjson' },
        ),
      };
      await until('every message acked', () => r.source.stats.acked === 4);
      for (const [tag, id] of Object.entries(ids)) {
        expect(count(`ack ${id}`)).toBe(1);
        expect(timeline.indexOf(`ack ${id}`)).toBeGreaterThan(timeline.indexOf(`appended ${tag}`));
      }
      expect(timeline.filter((e) => e.startsWith('nack'))).toEqual([]);
      const entries = await streamEntries(db.client);
      expect(identities(entries)).toEqual(
        [`A@${t(10)}`, `B@${t(10)}`, `B@${t(9)}`, `C@${t(10)}`, `D@${t(10)}`, `D@${t(9)}`].sort(),
      );
      // The `gateway` attribute names the source; without it, the subscription does.
      const sourceOf = (node: string) => entries.find((e) => e.readings[0]?.node_id === node)?.source;
      expect(sourceOf('C')).toBe('north');
      expect(sourceOf('A')).toBe(`pubsub:ingest-${names}`);

      // The same readings again (a gateway's retry): counted, not appended.
      const again = await r.publish([
        { node_id: 'A', timestamp: t(10), flow_rate: 1.5 },
        { node_id: 'B', timestamp: t(9), pressure: 3.5 },
      ]);
      await until('the repeat acked', () => count(`ack ${again}`) === 1);
      expect(r.source.stats).toEqual({
        received: 5,
        acked: 5,
        nacked: 0,
        deadLettered: 0,
        accepted: 6,
        duplicates: 2,
        rejected: 0,
      });
      expect(await db.client.xlen('readings')).toBe(4);
      expect(r.deadLetters).toEqual([]);
    } finally {
      await r.close();
    }
  }, 60_000);

  it('acks nothing while Redis is down; redelivered messages are appended once when it is back', async () => {
    watchAcks();
    const server = await RedisServer.start({ appendfsync: 'always' });
    const direct = new Redis(server.url, { maxRetriesPerRequest: 1, lazyConnect: true });
    direct.on('error', () => {});
    const r = await rig(server.url, { retryDelayMs: 300 });
    try {
      const first = await r.publish([
        { node_id: 'A', timestamp: t(10), flow_rate: 1 },
        { node_id: 'A', timestamp: t(9), flow_rate: 2 },
      ]);
      await until('the first message acked', () => count(`ack ${first}`) === 1);

      await server.kill();
      const second = await r.publish([
        { node_id: 'B', timestamp: t(10), flow_rate: 3 },
        { node_id: 'B', timestamp: t(9), flow_rate: 4 },
      ]);
      // A gateway's retry of A@t(10), sent with a new reading.
      const third = await r.publish([
        { node_id: 'A', timestamp: t(10), flow_rate: 1 },
        { node_id: 'C', timestamp: t(10), flow_rate: 5 },
      ]);
      // Each delivered, refused and nacked at least twice: Pub/Sub redelivers them.
      await until('redeliveries', () => count(`nack ${second}`) >= 2 && count(`nack ${third}`) >= 2);
      expect(count(`ack ${second}`) + count(`ack ${third}`)).toBe(0);
      expect(timeline.filter((e) => e.startsWith('appended')).length).toBe(1);

      timeline.push('redis back');
      await server.start();
      await until('every message acked', () => count(`ack ${second}`) === 1 && count(`ack ${third}`) === 1);
      const back = timeline.indexOf('redis back');
      expect(timeline.indexOf(`ack ${second}`)).toBeGreaterThan(back);
      expect(timeline.indexOf(`ack ${third}`)).toBeGreaterThan(back);
      expect(identities(await streamEntries(direct))).toEqual(
        [`A@${t(10)}`, `A@${t(9)}`, `B@${t(10)}`, `B@${t(9)}`, `C@${t(10)}`].sort(),
      );
      expect(r.source.stats).toMatchObject({ acked: 3, accepted: 5, duplicates: 1, rejected: 0 });
      expect(r.source.stats.nacked).toBe(r.source.stats.received - 3);
    } finally {
      await r.close();
      direct.disconnect();
      await server.dispose();
    }
  }, 60_000);

  it('a write Redis took but did not confirm in time is nacked; the redelivery counts it as duplicates', async () => {
    watchAcks();
    const server = await RedisServer.start();
    const direct = new Redis(server.url, { maxRetriesPerRequest: 1 });
    const r = await rig(server.url, { retryDelayMs: 300, commandTimeoutMs: 300 });
    try {
      // One append first: the script is then loaded, so the hung attempt's
      // EVALSHA runs on resume (a NOSCRIPT reply's fallback to EVAL would come
      // after the timeout, too late to be sent).
      const warm = await r.publish({ node_id: 'W', timestamp: t(10), flow_rate: 1 });
      await until('the warm-up acked', () => count(`ack ${warm}`) === 1);
      // Redis hangs: the append is sent, times out, and runs once Redis resumes.
      server.pause();
      const id = await r.publish([
        { node_id: 'H', timestamp: t(10), flow_rate: 1 },
        { node_id: 'H', timestamp: t(9), flow_rate: 2 },
      ]);
      await until('a nack', () => count(`nack ${id}`) >= 1);
      expect(count(`ack ${id}`)).toBe(0);
      server.resume();
      await until('the ack', () => count(`ack ${id}`) === 1);
      expect(identities(await streamEntries(direct))).toEqual(
        [`H@${t(10)}`, `H@${t(9)}`, `W@${t(10)}`].sort(),
      );
      expect(await direct.xlen('readings')).toBe(2);
      // The timed-out attempt stored both readings; the one that got an answer found them.
      expect(r.source.stats).toMatchObject({ acked: 2, accepted: 1, duplicates: 2 });
    } finally {
      server.resume();
      await r.close();
      direct.disconnect();
      await server.dispose();
    }
  }, 60_000);

  it('dead-letters what it cannot take, with the reasons, appends the rest, and acks the original after', async () => {
    watchAcks();
    const r = await rig(db.url, { env: { INGEST_MAX_READINGS: '3' } });
    const subscription = `ingest-${names}`;
    try {
      // Sent back from the dead letters, with its earlier verdict: only the new one goes out.
      const unreadable = await r.publish('{"node_id": ', {
        gateway: 'north',
        rejected: '[{"index":0,"error":"stale"}]',
        rejected_count: '1',
      });
      const mixed = await r.publish(
        [
          { node_id: 'E', timestamp: t(10), flow_rate: 1 },
          { node_id: 'E', timestamp: t(9), flow_rate: '12' },
        ],
        { gateway: 'north' },
      );
      const badLines = `{"node_id": "F", "timestamp": ${t(10)}}\nnot json\n`;
      const allBad = await r.publish(badLines, { 'Content-Type': 'application/x-ndjson' });
      const tooMany = await r.publish([1, 2, 3, 4]);
      const csv = await r.publish('node_id,timestamp\n', { 'content-type': 'text/csv' });
      await until('five dead letters', () => r.deadLetters.length === 5);
      await until('every original acked', () => r.source.stats.acked === 5);
      const byId = new Map(r.deadLetters.map((d) => [d.attributes.message_id, d]));

      expect(byId.get(unreadable)).toEqual({
        data: '{"node_id": ',
        attributes: {
          gateway: 'north',
          error: 'the body is not valid JSON: Unexpected end of JSON input',
          message_id: unreadable,
          subscription,
        },
      });
      const flowError = 'flow_rate: expected a finite number (L/s), got string "12"';
      expect(byId.get(mixed)).toEqual({
        data: JSON.stringify([{ node_id: 'E', timestamp: t(9), flow_rate: '12' }]),
        attributes: {
          gateway: 'north',
          error: `1 of 2 readings rejected; the first, index 1: ${flowError}`,
          rejected: JSON.stringify([{ index: 1, error: flowError }]),
          rejected_count: '1',
          message_id: mixed,
          subscription,
        },
      });
      const noMeasurement =
        'reading: no measurement; expected at least one of flow_rate, pressure, pressure_1, pressure_2, temperature, volume';
      expect(byId.get(allBad)).toEqual({
        data: badLines,
        attributes: {
          'Content-Type': 'application/x-ndjson',
          error: `2 of 2 readings rejected; the first, index 0: ${noMeasurement}`,
          rejected: JSON.stringify([
            { index: 0, error: noMeasurement },
            {
              index: 1,
              error: `line 2: not valid JSON (Unexpected token 'o', "not json" is not valid JSON)`,
            },
          ]),
          rejected_count: '2',
          message_id: allBad,
          subscription,
        },
      });
      expect(byId.get(tooMany)?.attributes.error).toBe(
        'the message holds 4 readings; at most 3 are taken per message',
      );
      expect(byId.get(csv)?.attributes.error).toBe(
        'content-type "text/csv" is not supported: send application/json or application/x-ndjson',
      );

      // The valid reading of the mixed message is in, once; each original was
      // acked after its dead letter was published.
      const entries = await streamEntries(db.client);
      expect(entries).toEqual([
        {
          id: expect.any(String),
          source: 'north',
          readings: [{ node_id: 'E', timestamp: t(10), flow_rate: 1 }],
        },
      ]);
      for (const id of [unreadable, mixed, allBad, tooMany, csv]) expect(count(`ack ${id}`)).toBe(1);
      expect(r.source.stats).toEqual({
        received: 5,
        acked: 5,
        nacked: 0,
        deadLettered: 5,
        accepted: 1,
        duplicates: 0,
        rejected: 3,
      });
    } finally {
      await r.close();
    }
  }, 60_000);

  it('dead-letters a message whose rejected part cannot be serialised again as it came, once', async () => {
    const r = await rig(db.url);
    try {
      // A rejected item nested too deep for JSON.stringify: the whole message is the dead letter.
      const deep = `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`;
      const data = `[{"node_id": "H", "timestamp": ${t(10)}, "flow_rate": 1}, ${deep}]`;
      const id = await r.publish(data);
      await until('the dead letter', () => r.deadLetters.length === 1);
      await until('the ack', () => r.source.stats.acked === 1);
      expect(r.deadLetters[0]?.data).toBe(data);
      expect(r.deadLetters[0]?.attributes).toMatchObject({ message_id: id, rejected_count: '1' });
      expect(identities(await streamEntries(db.client))).toEqual([`H@${t(10)}`]);
      expect(r.source.stats).toMatchObject({ received: 1, nacked: 0, accepted: 1, rejected: 1 });
    } finally {
      await r.close();
    }
  }, 60_000);

  it('nacks a message whose dead letter cannot be published, and takes it once the topic is there', async () => {
    watchAcks();
    const r = await rig(db.url, { retryDelayMs: 300 });
    const deadTopic = r.client.topic(`dead-letters-${names}`);
    try {
      await deadTopic.delete();
      const id = await r.publish([
        { node_id: 'G', timestamp: t(10), flow_rate: 1 },
        { node_id: 'G', timestamp: t(9) },
      ]);
      await until('two nacks', () => count(`nack ${id}`) >= 2);
      expect(count(`ack ${id}`)).toBe(0);
      await r.client.createTopic(`dead-letters-${names}`);
      const [watch] = await deadTopic.createSubscription(`dead-watch-again-${names}`, {
        ackDeadlineSeconds: 10,
      });
      const received: Message[] = [];
      watch.on('message', (message: Message) => {
        received.push(message);
        message.ack();
      });
      await until('the ack', () => count(`ack ${id}`) === 1);
      await until('the dead letter', () => received.length >= 1);
      await watch.close();
      expect(received[0]?.attributes.message_id).toBe(id);
      // The rejected reading is dead-lettered before the valid one is
      // appended: appended once, on the delivery that got the dead letter out,
      // and no redelivery counted it again as a duplicate.
      expect(identities(await streamEntries(db.client))).toEqual([`G@${t(10)}`]);
      expect(r.source.stats.accepted).toBe(1);
      expect(r.source.stats.duplicates).toBe(0);
    } finally {
      await r.close();
    }
  }, 60_000);

  it('keeps reopening a subscription that does not exist yet, and pulls once it does', async () => {
    if (emulator === undefined) throw new Error('no emulator');
    const client = new PubSub(emulator.clientOptions);
    const n = ++names;
    const config = loadConfig({
      REDIS_URL: db.url,
      PUBSUB_SUBSCRIPTION: `ingest-${n}`,
      PUBSUB_DEAD_LETTER_TOPIC: `dead-letters-${n}`,
    });
    const redis = connectRedis(config.redis, { name: 'pubsub-test', failFast: true });
    loadScripts(redis);
    const logged: Record<string, unknown>[] = [];
    const source = new PubSubSource({
      client,
      readingLog: new ReadingLog(redis, { ...config.stream, clock: systemClock }),
      config: { ...config.ingest, pubsub: config.ingest.pubsub as NonNullable<typeof config.ingest.pubsub> },
      clock: systemClock,
      logger: pino({ level: 'warn' }, { write: (line: string) => logged.push(JSON.parse(line)) }),
      reopenDelayMs: 200,
    });
    try {
      source.start();
      // The client reports NOT_FOUND and closes the subscription; the source reopens it.
      const failed = () => logged.filter((l) => l.msg === 'Pub/Sub subscription failed');
      await until('two failed attempts', () => failed().length >= 2);
      expect(failed()[0]).toMatchObject({ level: 50, code: 5, subscription: `ingest-${n}` });
      expect(logged.filter((l) => l.msg === 'Pub/Sub subscription closed; reopening').length).toBeGreaterThan(
        0,
      );
      const [topic] = await client.createTopic(`readings-${n}`);
      await topic.createSubscription(`ingest-${n}`, { ackDeadlineSeconds: 10 });
      await topic.publishMessage({ json: { node_id: 'R', timestamp: t(10), flow_rate: 1 } });
      await until('the message appended', () => source.stats.acked === 1);
      expect(identities(await streamEntries(db.client))).toEqual([`R@${t(10)}`]);
    } finally {
      await source.close();
      await client.close();
      redis.disconnect();
    }
  }, 60_000);

  it('runs inside ingest when PUBSUB_SUBSCRIPTION is set, and stops with it', async () => {
    if (emulator === undefined) throw new Error('no emulator');
    const client = new PubSub(emulator.clientOptions);
    const n = ++names;
    const [topic] = await client.createTopic(`readings-${n}`);
    await topic.createSubscription(`ingest-${n}`, { ackDeadlineSeconds: 10 });
    await client.createTopic(`dead-letters-${n}`);
    const config = loadConfig({
      REDIS_URL: db.url,
      INGEST_HOST: '127.0.0.1',
      INGEST_PORT: '0',
      INGEST_AUTH: 'off',
      PUBSUB_SUBSCRIPTION: `ingest-${n}`,
      PUBSUB_DEAD_LETTER_TOPIC: `dead-letters-${n}`,
    });
    const ingest = await startIngest(config, logger, systemClock, { pubsub: client });
    try {
      await topic.publishMessage({ json: { node_id: 'P', timestamp: t(10), pressure: 2 } });
      const response = await fetch(`${ingest.url}/v1/readings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ node_id: 'Q', timestamp: t(10), pressure: 2 }),
      });
      expect(response.status).toBe(200);
      await until('the message appended', () => ingest.pubsub?.stats.acked === 1);
      // A message with a rejected reading: dead-lettered, then acked.
      await topic.publishMessage({
        json: [{ node_id: 'R', timestamp: t(10), pressure: 2 }, { node_id: 'R' }],
      });
      await until('the second message taken', () => ingest.pubsub?.stats.acked === 2);
      expect(identities(await streamEntries(db.client))).toEqual([`P@${t(10)}`, `Q@${t(10)}`, `R@${t(10)}`]);
      // Its /metrics: the readings by source, the messages by outcome.
      const metrics = parseMetrics(await (await fetch(`${ingest.url}/metrics`)).text());
      const readings = (source: string, outcome: string) =>
        metricValue(metrics, 'streamgauge_readings_total', { source, outcome });
      expect([
        readings('pubsub', 'accepted'),
        readings('pubsub', 'rejected'),
        readings('http', 'accepted'),
      ]).toEqual([2, 1, 1]);
      const messages = (outcome: string) =>
        metricValue(metrics, 'streamgauge_pubsub_messages_total', { subscription: `ingest-${n}`, outcome });
      expect([messages('acked'), messages('dead_lettered'), messages('nacked')]).toEqual([1, 1, 0]);
      expect(
        metricValue(metrics, 'streamgauge_pubsub_process_duration_seconds_count', {
          subscription: `ingest-${n}`,
        }),
      ).toBe(2);
    } finally {
      await ingest.close();
      await client.close();
    }
  }, 60_000);
});
