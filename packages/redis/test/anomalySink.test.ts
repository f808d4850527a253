import { type AnomalyEvent, anomalyKeys, shardKeys } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { AnomalySink } from '../src/index.ts';

const db = useRedis({ flushEach: true });
const shard = shardKeys(0, 1);

function event(kind: 'open' | 'close', i: number): AnomalyEvent {
  const opened = Date.UTC(2026, 10, 25) + i * 60_000;
  return {
    event: kind,
    anomaly: {
      id: `N${i % 3}:low_pressure:${opened}`,
      node_id: `N${i % 3}`,
      type: 'low_pressure',
      severity: 'critical',
      rules: ['threshold'],
      opened_at: opened,
      last_at: opened,
      values: { first: 1, last: 1, min: 1, max: 1, count: 1 },
      expected: { low: 1.5 },
      reading: { flow_rate: 3, pressure: 1 },
      ...(kind === 'close' && { closed_at: opened + 1_800_000 }),
    },
  };
}

async function outbox(events: AnomalyEvent[]): Promise<void> {
  for (const e of events) await db.client.xadd(shard.anomalies.outbox, '*', 'event', JSON.stringify(e));
}

describe('AnomalySink', () => {
  it('keeps anomalies:recent newest first and at most 1000, and copies again without duplicating anything', async () => {
    const sink = new AnomalySink(db.client, { ttlSeconds: 3600 });
    const opens = Array.from({ length: 1005 }, (_, i) => event('open', i));
    await outbox(opens);
    while ((await sink.copy(shard)) > 0) {}
    const recent = (await db.client.lrange(anomalyKeys.recent, 0, -1)).map((r) => JSON.parse(r));
    expect(recent).toHaveLength(1000);
    expect(recent[0]).toMatchObject({
      node_id: 'N2',
      anomaly_type: 'low_pressure',
      severity: 'critical',
      flow_rate: 3,
      pressure: 1,
      timestamp: new Date(Date.UTC(2026, 10, 25) + 1004 * 60_000)
        .toISOString()
        .replace('T', ' ')
        .slice(0, 19),
    });
    expect(recent.at(-1)?.id).toBe(opens[5]?.anomaly.id);
    expect(await db.client.ttl(anomalyKeys.recent)).toBeGreaterThan(0);

    // A copier that died before recording its progress copies again: nothing doubles.
    await db.client.del(shard.anomalies.published);
    await outbox([event('close', 1004)]);
    while ((await sink.copy(shard)) > 0) {}
    expect(await db.client.llen(anomalyKeys.recent)).toBe(1000);
    expect(await db.client.xlen(anomalyKeys.stream)).toBe(1006);
    // What is open per node follows the events in order: N2's last anomaly closed, N1's is open.
    expect(await db.client.hkeys(anomalyKeys.open('N2'))).toEqual([]);
    expect(await db.client.hkeys(anomalyKeys.open('N1'))).toEqual(['low_pressure']);
  });
});
