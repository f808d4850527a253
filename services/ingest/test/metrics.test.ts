import { loadConfig } from '@streamgauge/core';
import { metricValue, scrapeMetrics, useRedis } from '@streamgauge/testkit';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningIngest, startIngest } from '../src/index.ts';

const db = useRedis();

const now = Date.now();
const reading = (node: string, secondsAgo: number) => ({
  node_id: node,
  timestamp: new Date(now - secondsAgo * 1000).toISOString(),
  pressure: 3,
});

describe('ingest /metrics and request logs', () => {
  let ingest: RunningIngest;
  const logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const config = loadConfig({
      REDIS_URL: db.url,
      INGEST_HOST: '127.0.0.1',
      INGEST_PORT: '0',
      INGEST_AUTH: 'off',
      STREAM_SHARDS: '2',
    });
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
    ingest = await startIngest(config, logger);
  });
  afterAll(() => ingest.close());

  const post = (body: unknown, requestId?: string) =>
    fetch(`${ingest.url}/v1/readings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(requestId && { 'x-request-id': requestId }) },
      body: JSON.stringify(body),
    });

  it('counts readings accepted, rejected and duplicate, and entries appended per stream', async () => {
    const fresh = ['A', 'B', 'C', 'D', 'E', 'F'].map((node) => reading(node, 10));
    expect((await post([...fresh, { node_id: 'A' }, { timestamp: 'yesterday' }], 'gw-42')).status).toBe(200);
    // A retry of two, and a request with nothing usable (422): still counted.
    expect((await post(fresh.slice(0, 2))).status).toBe(200);
    expect((await post([{ node_id: 'Z', timestamp: 'not a time' }])).status).toBe(422);

    const samples = await scrapeMetrics(`${ingest.url}/metrics`);
    const readings = (outcome: string) =>
      metricValue(samples, 'streamgauge_readings_total', { source: 'http', outcome });
    expect({
      accepted: readings('accepted'),
      rejected: readings('rejected'),
      duplicate: readings('duplicate'),
    }).toEqual({ accepted: 6, rejected: 3, duplicate: 2 });
    // One entry per stream shard the first request touched; the retry added none.
    for (const stream of ['readings:{0}', 'readings:{1}']) {
      expect(
        metricValue(samples, 'messaging_client_sent_messages_total', { messaging_destination_name: stream }),
      ).toBe(await db.client.xlen(stream));
    }
    expect(metricValue(samples, 'messaging_client_sent_messages_total')).toBe(2);
  });

  it('counts requests answered by route and status code (what a 5xx alert divides)', async () => {
    expect((await fetch(`${ingest.url}/nowhere`)).status).toBe(404);
    const samples = await scrapeMetrics(`${ingest.url}/metrics`);
    const answered = (route: string, status: string) =>
      metricValue(samples, 'http_server_request_duration_seconds_count', {
        http_request_method: route === 'unmatched' ? 'GET' : 'POST',
        http_route: route,
        http_response_status_code: status,
      });
    // The first test's two 200s and one 422 (this file's requests so far), and the 404.
    expect(answered('/v1/readings', '200')).toBe(2);
    expect(answered('/v1/readings', '422')).toBe(1);
    expect(answered('unmatched', '404')).toBe(1);
  });

  it("logs a request's rejections with its request id", () => {
    const rejected = logs.find((line) => line.msg === 'readings rejected' && line.reqId === 'gw-42');
    expect(rejected).toMatchObject({ rejected: 2, first: { index: 6 } });
    // Without the header, fastify numbers the requests itself.
    expect(logs.filter((line) => line.msg === 'readings rejected').map((line) => typeof line.reqId)).toEqual([
      'string',
      'string',
    ]);
  });
});
