import { ANOMALY_TYPES, anomalyKeys, readModelKeys, reconcileKeys, type ShardKeys } from '@streamgauge/core';
import { type RedisClient, shardStatus } from '@streamgauge/redis';
import { type Counter, Gauge, type Registry } from 'prom-client';
import { ScrapeSample, type ScrapeSampleOptions } from './scrapeSample.ts';
import { DESTINATION, GROUP } from './series.ts';

/**
 * Gauges of what Redis holds, read when /metrics is scraped (a ScrapeSample:
 * cached for a second, bounded by a timeout) rather than kept up to date on
 * any hot path. Each is a fact about the whole pipeline, not this process:
 * replicas of a service report the same value (aggregate with max(), not sum()).
 *
 * A service `watch`es with its own connection and lets go when it stops; a
 * read that fails or times out leaves the series out of that scrape and
 * counts in `streamgauge_scrape_read_failures_total`.
 */

interface GroupRow {
  readonly stream: string;
  readonly lag: number;
  readonly pending: number;
}

interface GroupWatch {
  readonly group: string;
  readonly sample: ScrapeSample<GroupRow[]>;
}

/** `streamgauge_consumer_lag` and `streamgauge_consumer_pending`, per group and stream shard. */
export class ConsumerGroupGauges {
  readonly #watches = new Set<GroupWatch>();
  readonly #failures: Counter.Internal;
  readonly #options: ScrapeSampleOptions;

  constructor(registry: Registry, failures: Counter<'source'>, options: ScrapeSampleOptions = {}) {
    this.#failures = failures.labels('consumer_groups');
    this.#failures.inc(0);
    this.#options = options;
    const rows = () => this.#rows();
    new Gauge({
      name: 'streamgauge_consumer_lag',
      help: 'Stream entries not yet delivered to the consumer group (XINFO GROUPS lag).',
      labelNames: [GROUP, DESTINATION],
      registers: [registry],
      async collect() {
        const all = await rows();
        this.reset();
        for (const { group, row } of all) this.labels(group, row.stream).set(row.lag);
      },
    });
    new Gauge({
      name: 'streamgauge_consumer_pending',
      help: 'Stream entries delivered to the consumer group and not yet acknowledged (XINFO GROUPS pending).',
      labelNames: [GROUP, DESTINATION],
      registers: [registry],
      async collect() {
        const all = await rows();
        this.reset();
        for (const { group, row } of all) this.labels(group, row.stream).set(row.pending);
      },
    });
  }

  /** Reports `group` on these shards, read with `redis`, until the returned function is called. */
  watch(redis: RedisClient, group: string, shards: readonly ShardKeys[]): () => void {
    const sample = new ScrapeSample(
      async () => {
        const now = Date.now();
        const statuses = await Promise.all(shards.map((shard) => shardStatus(redis, shard, now)));
        return statuses.flatMap((status) =>
          status.groups
            .filter((g) => g.name === group)
            .map((g) => ({ stream: status.stream, lag: g.lag, pending: g.pending })),
        );
      },
      { ...this.#options, onFailure: () => this.#failures.inc() },
    );
    const watch = { group, sample };
    this.#watches.add(watch);
    return () => this.#watches.delete(watch);
  }

  async #rows(): Promise<{ group: string; row: GroupRow }[]> {
    const watches = [...this.#watches];
    const samples = await Promise.all(watches.map((w) => w.sample.get()));
    const seen = new Set<string>();
    const rows: { group: string; row: GroupRow }[] = [];
    watches.forEach(({ group }, i) => {
      for (const row of samples[i] ?? []) {
        // Two services of one process watching the same group: one series.
        const key = `${group}\n${row.stream}`;
        if (seen.has(key)) continue;
        seen.add(key);
        rows.push({ group, row });
      }
    });
    return rows;
  }
}

/** Node ids read from `nodes:all`, and each node's open anomalies asked for this many at a time. */
const NODES_PER_READ = 1000;

/**
 * `streamgauge_anomalies_open{anomaly_type}`: what the dashboard shows as
 * open, counted from every listed node's `node:{id}:anomalies` hash (one
 * HKEYS per node, auto-pipelined: O(nodes) per scrape).
 */
export class OpenAnomalyGauge {
  readonly #samples: ScrapeSample<Map<string, number>>[] = [];
  readonly #failures: Counter.Internal;
  readonly #options: ScrapeSampleOptions;

  constructor(registry: Registry, failures: Counter<'source'>, options: ScrapeSampleOptions = {}) {
    this.#failures = failures.labels('anomalies');
    this.#failures.inc(0);
    this.#options = options;
    const counts = () => this.#samples[this.#samples.length - 1]?.get();
    new Gauge({
      name: 'streamgauge_anomalies_open',
      help: 'Anomalies open now, by type (from each node’s node:{id}:anomalies).',
      labelNames: ['anomaly_type'],
      registers: [registry],
      async collect() {
        const open = await counts();
        this.reset();
        if (open === undefined) return;
        for (const type of ANOMALY_TYPES) this.labels(type).set(open.get(type) ?? 0);
      },
    });
  }

  watch(redis: RedisClient): () => void {
    const sample = new ScrapeSample(() => countOpen(redis), {
      ...this.#options,
      onFailure: () => this.#failures.inc(),
    });
    this.#samples.push(sample);
    return () => {
      const at = this.#samples.indexOf(sample);
      if (at >= 0) this.#samples.splice(at, 1);
    };
  }
}

async function countOpen(redis: RedisClient): Promise<Map<string, number>> {
  const open = new Map<string, number>();
  for (let start = 0; ; start += NODES_PER_READ) {
    const nodes = await redis.lrange(readModelKeys.nodesAll, start, start + NODES_PER_READ - 1);
    const types = await Promise.all(nodes.map((node) => redis.hkeys(anomalyKeys.open(node))));
    for (const list of types) for (const type of list) open.set(type, (open.get(type) ?? 0) + 1);
    if (nodes.length < NODES_PER_READ) return open;
  }
}

/**
 * What a report's `drift` can name (core's window/reconcile.ts: `readings`,
 * and `<measurement>.<stat>` for each pane measurement). A run records only
 * the metrics that drifted, so the rest are shown as 0: a steady set of
 * series for dashboards. Any other name a report holds is shown as well.
 */
const DRIFT_METRICS = [
  'readings',
  ...['flow_rate', 'pressure', 'temperature', 'volume'].flatMap((m) =>
    ['mean', 'min', 'max'].map((stat) => `${m}.${stat}`),
  ),
];

interface LastReport {
  readonly finishedAt?: string;
  readonly drift?: Record<string, number>;
}

/**
 * `streamgauge_reconcile_drift{metric}` and the time the last backfill run
 * finished, from its report in `reconcile:last` (so also a run another
 * process did, and the last run before this process started).
 */
export class ReconcileGauges {
  readonly #samples: ScrapeSample<LastReport | null>[] = [];
  readonly #failures: Counter.Internal;
  readonly #options: ScrapeSampleOptions;

  constructor(registry: Registry, failures: Counter<'source'>, options: ScrapeSampleOptions = {}) {
    this.#failures = failures.labels('reconcile');
    this.#failures.inc(0);
    this.#options = options;
    const report = () => this.#samples[this.#samples.length - 1]?.get();
    new Gauge({
      name: 'streamgauge_reconcile_drift',
      help: 'How far the live panes had drifted from the warehouse at the last backfill run: the largest absolute difference per metric (readings: count; <measurement>.<mean|min|max>).',
      labelNames: ['metric'],
      registers: [registry],
      async collect() {
        const last = await report();
        this.reset();
        if (last === undefined || last === null) return;
        const drift: Record<string, unknown> = { ...last.drift };
        for (const metric of DRIFT_METRICS) drift[metric] ??= 0;
        for (const [metric, value] of Object.entries(drift)) {
          if (typeof value === 'number') this.labels(metric).set(value);
        }
      },
    });
    new Gauge({
      name: 'streamgauge_reconcile_last_finished_timestamp_seconds',
      help: 'When the last backfill run finished (Unix time).',
      registers: [registry],
      async collect() {
        const last = await report();
        this.reset();
        const at = last?.finishedAt === undefined ? Number.NaN : Date.parse(last.finishedAt);
        if (Number.isFinite(at)) this.set(at / 1000);
      },
    });
  }

  watch(redis: RedisClient): () => void {
    const sample = new ScrapeSample(
      async () => {
        const raw = await redis.get(reconcileKeys.last);
        return raw === null ? null : (JSON.parse(raw) as LastReport);
      },
      { ...this.#options, onFailure: () => this.#failures.inc() },
    );
    this.#samples.push(sample);
    return () => {
      const at = this.#samples.indexOf(sample);
      if (at >= 0) this.#samples.splice(at, 1);
    };
  }
}
