import { readModelKeys } from '@streamgauge/core';
import { Redis } from 'ioredis';
import type { Pool } from 'undici';
import { BENCH_DISTRICT, type ReadingSource } from './readings.ts';
import { LatencyRecorder } from './stats.ts';

/** POSTs one body to /v1/readings; throws unless it is a 200 with `expected` readings accepted. */
export async function postReadings(pool: Pool, token: string, body: Buffer, expected: number): Promise<void> {
  const response = await pool.request({
    path: '/v1/readings',
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
  const reply = JSON.parse(text) as { accepted: number };
  if (reply.accepted !== expected) throw new Error(`accepted ${reply.accepted} of ${expected}`);
}

export interface OfferedLoadResult {
  /** Requests sent (each `rate / 100` readings, the last one a probe). */
  readonly requests: number;
  readonly readings: number;
  readonly failures: number;
  /** Probes never seen in `latest` (after settle()). */
  readonly unresolved: number;
  /** Per probe: HTTP 200 → `node:{probe}:latest` shows it, ms. */
  readonly latencies: LatencyRecorder;
}

/**
 * An open-loop load at `rate` readings/s over HTTP, in requests of `rate / 100`
 * readings every 10 ms (an absolute schedule, so the offered rate holds
 * whatever the event loop's delays). Each request carries one probe reading
 * (one of 10 probe nodes, a newer timestamp each time); its freshness is the
 * time from the HTTP 200 to the moment `node:{probe}:latest` shows it,
 * detected through the change notifications (`streamgauge:changes`).
 */
export class FreshnessLoad {
  readonly #pool: Pool;
  readonly #token: string;
  readonly #source: ReadingSource;
  readonly #perRequest: number;
  readonly #subscriber: Redis;
  readonly #reader: Redis;
  readonly #latencies = new LatencyRecorder();
  /** Per probe seen: ms from the load's start to its 200, and its freshness (BENCH_FRESHNESS_TRACE). */
  readonly #trace: [sentAt: number, freshness: number][] = [];
  #started = 0;
  readonly #waiting = new Map<string, { timestamp: number; since: number }[]>();
  readonly #probes = 10;
  #sequence = 0;
  #failures = 0;

  constructor(options: { redisUrl: string; pool: Pool; token: string; source: ReadingSource; rate: number }) {
    this.#pool = options.pool;
    this.#token = options.token;
    this.#source = options.source;
    this.#perRequest = Math.max(1, Math.round(options.rate / 100));
    this.#subscriber = new Redis(options.redisUrl);
    this.#reader = new Redis(options.redisUrl);
  }

  get perRequest(): number {
    return this.#perRequest;
  }

  /** Sends until `until()` is true (checked every 2 ms), then waits for the requests in flight. */
  async run(until: () => boolean): Promise<void> {
    await this.#subscriber.subscribe('streamgauge:changes');
    this.#subscriber.on('message', (_channel, message) => {
      const notice = JSON.parse(message) as { nodes?: string[] };
      for (const node of notice.nodes ?? []) if (node.startsWith('PROBE')) void this.#settle(node);
    });
    const base = Date.now() - 60_000;
    const inFlight: Promise<void>[] = [];
    const started = performance.now();
    this.#started = started;
    const first = this.#sequence;
    while (!until()) {
      const due = first + Math.floor((performance.now() - started) / 10) + 1;
      while (this.#sequence < due) {
        const seq = this.#sequence++;
        const probe = `PROBE${seq % this.#probes}`;
        // One probe every 10 ms: its time keeps up with the clock, a minute behind.
        const timestamp = base + (seq - first) * 10;
        const parts: string[] = [];
        for (let i = 0; i < this.#perRequest - 1; i++) parts.push(this.#source.nextJson());
        parts.push(
          `{"node_id":"${probe}","timestamp":${timestamp},"flow_rate":1,"district_id":"${BENCH_DISTRICT}"}`,
        );
        inFlight.push(
          postReadings(this.#pool, this.#token, Buffer.from(`[${parts.join(',')}]`), this.#perRequest).then(
            () => {
              const list = this.#waiting.get(probe) ?? [];
              list.push({ timestamp, since: performance.now() });
              this.#waiting.set(probe, list);
              return this.#settle(probe);
            },
            () => {
              this.#failures++;
            },
          ),
        );
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await Promise.all(inFlight);
  }

  /** Once the aggregator has drained: resolves every probe still waiting, and the result. */
  async settle(): Promise<OfferedLoadResult> {
    for (let i = 0; i < this.#probes; i++) await this.#settle(`PROBE${i}`);
    return {
      requests: this.#sequence,
      readings: this.#sequence * this.#perRequest,
      failures: this.#failures,
      unresolved: [...this.#waiting.values()].reduce((n, list) => n + list.length, 0),
      latencies: this.#latencies,
    };
  }

  /**
   * Each probe's time sent (ms from the start of `run`, and the wall clock's
   * ISO time: the aggregator's rounds and sweeps follow the wall clock) and
   * freshness, as CSV lines, in the order seen.
   */
  traceCsv(): string {
    const line = ([at, ms]: [number, number]) =>
      `${at.toFixed(1)},${new Date(performance.timeOrigin + this.#started + at).toISOString()},${ms.toFixed(1)}`;
    return `sent_ms,sent_at,freshness_ms\n${this.#trace.map(line).join('\n')}\n`;
  }

  close(): void {
    this.#subscriber.disconnect();
    this.#reader.disconnect();
  }

  /**
   * Nearest-rank percentiles of the probes sent `fromMs` or more after the
   * load started: the steady state, without the first seconds' one-off work
   * (every node's first live readings, the clock's first sweep, the first
   * full metrics round). Empty when none was sent that late.
   */
  percentilesAfter(fromMs: number, ...ps: number[]): { readonly count: number; readonly values: number[] } {
    const late = new LatencyRecorder();
    for (const [sentAt, ms] of this.#trace) if (sentAt >= fromMs) late.add(ms);
    return { count: late.count, values: late.count === 0 ? [] : late.percentiles(...ps) };
  }

  async #settle(node: string): Promise<void> {
    const pending = this.#waiting.get(node);
    if (!pending || pending.length === 0) return;
    const shown = Date.parse((await this.#reader.hget(readModelKeys.nodeLatest(node), 'timestamp')) ?? '');
    const now = performance.now();
    this.#waiting.set(
      node,
      pending.filter((probe) => {
        if (probe.timestamp > shown) return true;
        this.#latencies.add(now - probe.since);
        this.#trace.push([probe.since - this.#started, now - probe.since]);
        return false;
      }),
    );
  }
}
