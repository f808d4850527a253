import { GROUPS, loadConfig, type Reading, systemClock } from '@streamgauge/core';
import { ReadingLog } from '@streamgauge/redis';
import { ProcessMetrics } from '@streamgauge/telemetry';
import { metricValue, parseMetrics, useRedis, waitForAggregator } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { startAggregatorThread } from '../src/aggregatorThread/thread.ts';

const db = useRedis();

describe("the aggregator on a thread of its own (streamgauge start's)", () => {
  it('applies what the stream holds, reports its counts and series to the main thread, and stops cleanly', async () => {
    const config = loadConfig({ REDIS_URL: db.url, STREAM_SHARDS: '1', LOG_LEVEL: 'warn' });
    const log = new ReadingLog(db.client, {
      shards: 1,
      retentionMs: 48 * 3_600_000,
      dedupeHorizonMs: 48 * 3_600_000,
      clock: systemClock,
    });
    const now = Date.now();
    const readings: Reading[] = Array.from({ length: 30 }, (_, i) => ({
      node_id: `T${i % 3}`,
      timestamp: now - 60_000 + i * 1000,
      flow_rate: i,
    }));
    await log.append(readings, 'test');
    const metrics = new ProcessMetrics({ service: 'streamgauge' });
    const thread = await startAggregatorThread(config, metrics);
    try {
      await waitForAggregator(db.client, 1, 20_000);
      // The newest of node T2 is reading 29, as the thread wrote it.
      expect(await db.client.hget('node:T2:latest', 'flow_rate')).toBe('29');
      // The counts come with the thread's next report (every second).
      for (const deadline = Date.now() + 5_000; thread.nodeCount() < 3 && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(thread.nodeCount()).toBe(3);
      expect(thread.keysWritten()).toBeGreaterThan(0);
      const all = parseMetrics((await metrics.scrape()).body);
      expect(metricValue(all, 'streamgauge_aggregator_readings_total', { outcome: 'applied' })).toBe(30);
      expect(
        metricValue(all, 'messaging_client_consumed_messages_total', {
          messaging_consumer_group_name: GROUPS.aggregator,
        }),
      ).toBe(1);
      expect(metricValue(all, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    } finally {
      await thread.stop();
    }
    await expect(thread.done).resolves.toBeUndefined();
    // Its series leave /metrics with it.
    const after = parseMetrics((await metrics.scrape()).body);
    expect(metricValue(after, 'streamgauge_aggregator_readings_total', { outcome: 'applied' })).toBe(
      undefined,
    );
  }, 60_000);
});
