import { NodeWindows, type Reading } from '@streamgauge/core';

export const BENCH_DISTRICT = 'BENCH';

/**
 * Unique readings for the benchmarks. Reading number g is node
 * `B<(g mod nodes) + 1>` at `anchor - floor(g / nodes) × step` (step 1 s by
 * default): consecutive readings are different nodes at the same instant
 * (what a gateway polling its nodes sends), and no (node_id, timestamp)
 * repeats, so nothing is a duplicate as long as one source is used per
 * Redis database.
 *
 * Going back, each node's readings after its first are older than its
 * newest: they count in the windows, but leave `latest` as it is and are
 * not examined by the detectors (which judge readings in time order). A
 * case that stands for a live fleet goes `forward`: at
 * `anchor + floor(g / nodes) × step`, the anchor a minute ago, a step of
 * `nodes / rate` seconds keeping the readings' times with the clock at
 * `rate` readings a second (going back, a long run's readings would also
 * turn late, see CATCHUP).
 */
export class ReadingSource {
  readonly nodes: number;
  readonly #anchorMs: number;
  readonly #step: number;
  readonly #nodeIds: string[];
  #next = 0;

  constructor(options: { nodes?: number; anchorMs?: number; forward?: boolean; stepMs?: number } = {}) {
    this.nodes = options.nodes ?? 10_000;
    const step = options.stepMs ?? 1000;
    this.#step = options.forward === true ? step : -step;
    // Whole seconds, so timestamps look like a logger's.
    const anchor = options.anchorMs ?? Date.now() - (options.forward === true ? 60_000 : 0);
    this.#anchorMs = Math.floor(anchor / 1000) * 1000;
    this.#nodeIds = Array.from({ length: this.nodes }, (_, i) => `B${String(i + 1).padStart(5, '0')}`);
  }

  /** How many readings were handed out. */
  get taken(): number {
    return this.#next;
  }

  /** The next reading, as the JSON a gateway would send. */
  nextJson(): string {
    const g = this.#next++;
    const node = this.#nodeIds[g % this.nodes] as string;
    const timestamp = this.#anchorMs + Math.floor(g / this.nodes) * this.#step;
    return (
      `{"node_id":"${node}","timestamp":${timestamp},"flow_rate":${flow(g)},` +
      `"pressure":${pressure(g)},"temperature":${temperature(g)},"district_id":"${BENCH_DISTRICT}"}`
    );
  }

  /** The next reading, as the object ingest would hand to the log after validation. */
  nextReading(): Reading {
    const g = this.#next++;
    return {
      node_id: this.#nodeIds[g % this.nodes] as string,
      timestamp: this.#anchorMs + Math.floor(g / this.nodes) * this.#step,
      flow_rate: flow(g),
      pressure: pressure(g),
      temperature: temperature(g),
      district_id: BENCH_DISTRICT,
    };
  }

  /** A request body of `batch` readings: one object for 1, else a JSON array. */
  nextBody(batch: number): Buffer {
    if (batch === 1) return Buffer.from(this.nextJson());
    const parts = new Array<string>(batch);
    for (let i = 0; i < batch; i++) parts[i] = this.nextJson();
    return Buffer.from(`[${parts.join(',')}]`);
  }

  nextReadings(batch: number): Reading[] {
    const readings = new Array<Reading>(batch);
    for (let i = 0; i < batch; i++) readings[i] = this.nextReading();
    return readings;
  }
}

function flow(g: number): number {
  return ((g * 7919) % 50_000) / 100;
}

function pressure(g: number): number {
  return 2 + ((g * 31) % 300) / 100;
}

function temperature(g: number): number {
  return 8 + ((g * 17) % 150) / 10;
}

/**
 * Reading `i` of node `n` of a smooth synthetic series (the core benches'
 * input: every measurement present, values that vary as a logger's do).
 */
export function seriesReading(n: number, i: number, start: number, stepMs: number): Reading {
  return {
    node_id: `N${n}`,
    timestamp: start + i * stepMs,
    flow_rate: 10 + Math.sin(i / 30 + n) + (i % 7) * 0.01,
    pressure: 3 + Math.cos(i / 50) * 0.5,
    temperature: 12 + (i % 11) * 0.1,
    volume: 1000 + i * 0.01,
  };
}

/**
 * `nodes` nodes' windows, each fed `perNode` readings of `seriesReading`
 * from `start`, `stepMs` apart (the metrics benches' input); `now` is just
 * after the last reading.
 */
export function filledWindows(
  nodes: number,
  perNode: number,
  start: number,
  stepMs: number,
): { windows: NodeWindows[]; now: number } {
  const windows: NodeWindows[] = [];
  for (let n = 0; n < nodes; n++) {
    const node = new NodeWindows(`N${n}`, 6 * 60_000);
    for (let i = 0; i < perNode; i++) {
      const reading = seriesReading(n, i, start, stepMs);
      node.add(reading, reading.timestamp);
    }
    windows.push(node);
  }
  return { windows, now: start + perNode * stepMs };
}
