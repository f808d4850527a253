import { type Config, loadConfig, ManualClock, type Reading } from '@streamgauge/core';
import { ReadingLog } from '@streamgauge/redis';
import { waitForAggregator } from '@streamgauge/testkit';
import type { Redis } from 'ioredis';
import { Subject } from 'rxjs';

export interface LiveFeed {
  readonly client: Redis;
  readonly log: ReadingLog;
  readonly clock: ManualClock;
  readonly ticks: Subject<number>;
}

/**
 * Plays a history as if live: between consecutive `bounds`, the readings of
 * that span are appended, the aggregator applies them, then the clock
 * ticks at the span's end (so silence is judged after the readings that
 * came), never past the last reading (a silence at the end would, rightly,
 * open `offline` for every node). `before` and `after` run around each span.
 */
export async function feedLive(
  feed: LiveFeed,
  readings: readonly Reading[],
  bounds: readonly number[],
  hooks: { before?: (from: number) => void; after?: (to: number) => Promise<void> } = {},
): Promise<void> {
  const last = (readings.at(-1) as Reading).timestamp;
  for (let i = 1; i < bounds.length; i++) {
    const [from, to] = [bounds[i - 1] as number, bounds[i] as number];
    hooks.before?.(from);
    const chunk = readings.filter((r) => r.timestamp >= from && r.timestamp < to);
    feed.clock.set(Math.min(to, last));
    if (chunk.length > 0) await feed.log.append(chunk, 'test');
    await waitForAggregator(feed.client);
    feed.ticks.next(feed.clock.now());
    await waitForAggregator(feed.client);
    await hooks.after?.(to);
  }
}

/** `start`, then every `stepMs` until past `end`, with `extra` boundaries inserted in order. */
export function spans(start: number, end: number, stepMs: number, extra: readonly number[] = []): number[] {
  const bounds = new Set<number>([start, ...extra]);
  for (let t = start + stepMs; t < end + stepMs; t += stepMs) bounds.add(t);
  return [...bounds].sort((a, b) => a - b);
}

/** A clock at `start`, a tick source, the configuration (`env` added) and a log to append to: what `feedLive` drives. */
export function liveSetup(
  client: Redis,
  url: string,
  start: number,
  env: Record<string, string> = {},
): LiveFeed & { readonly config: Config } {
  const clock = new ManualClock(start);
  const config = loadConfig({
    REDIS_URL: url,
    AGGREGATOR_BLOCK_MS: '50',
    AGGREGATOR_LEASE_MS: '1000',
    ...env,
  });
  return {
    client,
    clock,
    ticks: new Subject<number>(),
    config,
    log: new ReadingLog(client, { ...config.stream, clock }),
  };
}
