/**
 * Throughput of the Pub/Sub source against Google's fake (pstest) and a
 * throw-away redis-server: messages already waiting on the subscription are
 * pulled, validated, appended and acked; the clock runs from start() to the
 * last ack.
 *
 *   node test/bench/pubsubIngest.ts [messages=2000] [readingsPerMessage=10] [maxStreams=5]
 *
 * The fake itself is the limit (a few hundred messages/s per stream), so this
 * measures the source's cost only as far as the fake lets it; it is not run
 * by vitest.
 */
import { PubSub } from '@google-cloud/pubsub';
import { loadConfig, type Reading, systemClock } from '@streamgauge/core';
import { PubSubSource } from '@streamgauge/ingest';
import { connectRedis, loadScripts, ReadingLog } from '@streamgauge/redis';
import { PubSubEmulator, RedisServer } from '@streamgauge/testkit';
import { pino } from 'pino';

const [messages = 2000, perMessage = 10, maxStreams = 5] = process.argv.slice(2).map(Number);

const emulator = await PubSubEmulator.start();
const server = await RedisServer.start();
const client = new PubSub(emulator.clientOptions);
try {
  const [topic] = await client.createTopic('readings');
  await topic.createSubscription('ingest', { ackDeadlineSeconds: 60 });
  await client.createTopic('dead-letters');

  const start = Date.now() - 3_600_000;
  const publishing: Promise<string>[] = [];
  for (let m = 0; m < messages; m++) {
    const readings: Reading[] = [];
    for (let r = 0; r < perMessage; r++) {
      readings.push({
        node_id: `n${m % 500}`,
        timestamp: start + m * perMessage + r,
        flow_rate: r,
        pressure: 3,
      });
    }
    publishing.push(topic.publishMessage({ json: readings }));
  }
  await Promise.all(publishing);

  const config = loadConfig({
    REDIS_URL: server.url,
    PUBSUB_SUBSCRIPTION: 'ingest',
    PUBSUB_DEAD_LETTER_TOPIC: 'dead-letters',
    PUBSUB_MAX_STREAMS: String(maxStreams),
  });
  const redis = connectRedis(config.redis, { name: 'bench', failFast: true, commandTimeoutMs: 5_000 });
  loadScripts(redis);
  const pubsub = config.ingest.pubsub;
  if (pubsub === undefined) throw new Error('no Pub/Sub settings');
  const source = new PubSubSource({
    client,
    readingLog: new ReadingLog(redis, { ...config.stream, clock: systemClock }),
    config: { ...config.ingest, pubsub },
    clock: systemClock,
    logger: pino({ level: 'warn' }),
  });
  const cpu = process.cpuUsage();
  const began = performance.now();
  source.start();
  while (source.stats.acked < messages) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - began) / 1000;
  const used = process.cpuUsage(cpu);
  await source.close();
  redis.disconnect();
  const { accepted, duplicates, nacked } = source.stats;
  console.log(
    JSON.stringify({
      messages,
      readingsPerMessage: perMessage,
      maxStreams,
      seconds: +seconds.toFixed(2),
      messagesPerSecond: Math.round(messages / seconds),
      readingsPerSecond: Math.round(accepted / seconds),
      clientCpuPerMessageUs: Math.round((used.user + used.system) / messages),
      accepted,
      duplicates,
      nacked,
    }),
  );
} finally {
  await client.close();
  await server.dispose();
  await emulator.stop();
}
