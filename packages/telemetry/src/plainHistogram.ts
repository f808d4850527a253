import type { Histogram, Registry } from 'prom-client';

/** One value of a histogram's export, as prom-client's get() gives it. */
interface HistogramValue {
  readonly labels: { readonly le?: number | '+Inf' };
  readonly value: number;
  readonly metricName: string;
}

/**
 * A histogram without labels, exported exactly as prom-client's Histogram
 * exports one (the same text and JSON, so threads' series merge alike),
 * whose `observe` is a scan of the bounds and two additions. prom-client's
 * own builds a label set, validates and hashes it for every observation:
 * the aggregator observes once per node written per batch, and that was
 * 4 % of its time at 10,000 nodes and 50,000 readings/s.
 */
export class PlainHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: Float64Array;
  /** Per bound, the observations in it and not in the one before; the last, above every bound. */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;
  /** Reset and not observed since: exported without values, as prom-client does. */
  #cleared = false;

  constructor(options: { name: string; help: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#bounds = Float64Array.from([...options.buckets].sort((a, b) => a - b));
    this.#counts = new Float64Array(this.#bounds.length + 1);
    // Registered as what it stands in for: the registry asks only for its name, get() and reset().
    for (const registry of options.registers) registry.registerMetric(this as unknown as Histogram);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.#sum += value;
    this.#count++;
    this.#cleared = false;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    values: HistogramValue[];
    aggregator: 'sum';
  }> {
    const bucket = `${this.name}_bucket`;
    const values: HistogramValue[] = [];
    if (this.#cleared)
      return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
    let below = 0;
    this.#bounds.forEach((bound, i) => {
      below += this.#counts[i] as number;
      values.push({ labels: { le: bound }, value: below, metricName: bucket });
    });
    values.push(
      { labels: { le: '+Inf' }, value: this.#count, metricName: bucket },
      { labels: {}, value: this.#sum, metricName: `${this.name}_sum` },
      { labels: {}, value: this.#count, metricName: `${this.name}_count` },
    );
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
    this.#cleared = true;
  }
}
