import { type Clock, seededRandom, systemClock } from '@streamgauge/core';
import { readingOf, type SimulatedNode, type SimulatedReading, simulatedNetwork } from './network.ts';

export interface SimulatorOptions {
  /** Base URL of an ingest service, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly token?: string;
  readonly nodes: number;
  /** Readings per second, all nodes together. */
  readonly rate: number;
  readonly seed?: number;
  readonly clock?: Clock;
  readonly onError?: (message: string) => void;
}

export interface SimulatorStats {
  requests: number;
  sent: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  failedRequests: number;
  /** Readings held back by an outage, then sent late and out of order. */
  resent: number;
}

const TICK_MS = 1_000;
const MAX_BATCH = 1_000;

interface NodeRun {
  readonly node: SimulatedNode;
  nextDue: number;
  offlineUntil: number;
  buffered: SimulatedReading[];
  recent: SimulatedReading[];
}

/**
 * Sensor gateways for one district, sending through the real HTTP API once a
 * second: steady readings, occasional lost samples, outages after which the
 * buffered readings arrive in one out-of-order burst, and now and then a
 * gateway retry that resends readings already delivered.
 */
export class GatewaySimulator {
  readonly stats: SimulatorStats = {
    requests: 0,
    sent: 0,
    accepted: 0,
    duplicates: 0,
    rejected: 0,
    failedRequests: 0,
    resent: 0,
  };
  readonly #options: SimulatorOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #runs: NodeRun[];
  readonly #periodMs: number;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> = Promise.resolve();

  constructor(options: SimulatorOptions) {
    if (!(options.nodes >= 1) || !(options.rate > 0)) throw new RangeError('nodes must be ≥ 1 and rate > 0');
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = seededRandom(options.seed ?? 1);
    this.#periodMs = (options.nodes / options.rate) * 1000;
    const now = this.#clock.now();
    this.#runs = simulatedNetwork(options.nodes, this.#random).map((node) => ({
      node,
      nextDue: now - this.#periodMs + this.#random() * this.#periodMs,
      offlineUntil: 0,
      buffered: [],
      recent: [],
    }));
  }

  get nodeIds(): string[] {
    return this.#runs.map((r) => r.node.id);
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.#inFlight = this.#inFlight.then(() => this.tick());
    }, TICK_MS);
    this.#inFlight = this.#inFlight.then(() => this.tick());
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }

  /** Produces and sends one second's readings. */
  async tick(): Promise<void> {
    const now = this.#clock.now();
    const batch: SimulatedReading[] = [];
    for (const run of this.#runs) {
      const online = now >= run.offlineUntil;
      if (online && run.buffered.length > 0) {
        // Back from an outage: the gateway flushes its buffer, out of order.
        shuffle(run.buffered, this.#random);
        this.stats.resent += run.buffered.length;
        batch.push(...run.buffered.splice(0));
        if (this.#random() < 0.3) batch.push(...run.recent.slice(-5)); // a retry of readings already sent
      }
      if (online && this.#random() < TICK_MS / 300_000)
        run.offlineUntil = now + 20_000 + this.#random() * 40_000;
      while (run.nextDue <= now) {
        const reading = readingOf(run.node, run.nextDue, this.#periodMs, this.#random);
        run.nextDue += this.#periodMs;
        if (this.#random() < 0.01) continue; // a lost sample: a gap
        if (now < run.offlineUntil) {
          run.buffered.push(reading);
        } else {
          batch.push(reading);
          run.recent.push(reading);
          if (run.recent.length > 20) run.recent.shift();
        }
      }
    }
    for (let i = 0; i < batch.length; i += MAX_BATCH) await this.#send(batch.slice(i, i + MAX_BATCH));
  }

  async #send(readings: SimulatedReading[]): Promise<void> {
    if (readings.length === 0) return;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#options.token) headers.authorization = `Bearer ${this.#options.token}`;
    this.stats.requests++;
    this.stats.sent += readings.length;
    try {
      const response = await fetch(`${this.#options.url}/v1/readings`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ readings }),
        signal: AbortSignal.timeout(10_000),
      });
      const reply = (await response.json()) as {
        accepted?: number;
        duplicates?: number;
        rejected?: unknown[];
        error?: string;
      };
      if (response.status !== 200 && response.status !== 422) {
        this.stats.failedRequests++;
        this.#options.onError?.(`ingest answered ${response.status}: ${reply.error ?? ''}`);
        return;
      }
      this.stats.accepted += reply.accepted ?? 0;
      this.stats.duplicates += reply.duplicates ?? 0;
      this.stats.rejected += reply.rejected?.length ?? 0;
    } catch (error) {
      this.stats.failedRequests++;
      this.#options.onError?.(`request failed: ${(error as Error).message}`);
    }
  }
}

function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
}
