import { allShardKeys, catchupLanesOf, fieldRecord, GROUPS } from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';

/**
 * Waits until a consumer group has read everything (its position is the
 * stream's last entry) and acknowledged it (pending 0) on every given
 * stream, and nothing waits in the stream's catch-up lanes.
 */
export async function waitForDrain(
  redis: Redis | Cluster,
  streams: readonly string[],
  group: string,
  timeoutMs = 60_000,
  /** Per stream, a key holding the consumer's watermark; it must reach the group's last delivered id. */
  watermark?: (stream: string) => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let drained = true;
    const states: string[] = [];
    for (const stream of streams) {
      // The lane first: what the aggregator moves from it after this lands in the stream, read next.
      let waiting = 0;
      for (const lane of catchupLanesOf(stream)) waiting += await redis.xlen(lane);
      const groups = (await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
      const info = groups.map(toObject).find((g) => g.name === group);
      // Not the group's lag: Redis reports it as null when it does not know
      // it (after loading an AOF, for one), which is not 0.
      const last = toObject(((await redis.xinfo('STREAM', stream).catch(() => [])) as unknown[]) ?? [])[
        'last-generated-id'
      ];
      const mark = watermark ? await redis.get(watermark(stream)) : undefined;
      const delivered = info?.['last-delivered-id'];
      states.push(
        `${stream}: pending ${info?.pending}, last entry ${last}, delivered ${delivered}, watermark ${mark}, catch-up lane ${waiting}`,
      );
      if (info === undefined || Number(info.pending) !== 0 || delivered !== last || waiting > 0)
        drained = false;
      else if (watermark && mark !== delivered) drained = false;
    }
    if (drained) return;
    if (Date.now() > deadline) {
      throw new Error(`group ${group} did not drain within ${timeoutMs} ms (${states.join('; ')})`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

function toObject(flat: unknown[]): Record<string, unknown> {
  return fieldRecord(flat);
}

/**
 * Waits until the aggregator has applied every entry of the readings streams
 * and written every key for them (its watermark reached the group's position).
 */
export function waitForAggregator(redis: Redis | Cluster, shards = 1, timeoutMs = 60_000): Promise<void> {
  const keys = allShardKeys(shards);
  const byStream = new Map(keys.map((k) => [k.stream, k.aggregateWritten]));
  return waitForDrain(
    redis,
    keys.map((k) => k.stream),
    GROUPS.aggregator,
    timeoutMs,
    (stream) => byStream.get(stream) ?? '',
  );
}
