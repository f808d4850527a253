import { ANOMALY_TYPES, type ShardKeys } from '@streamgauge/core';
import { catchupBacklog, groupsOf, ReconcileControl, type RedisClient } from '@streamgauge/redis';
import { type Counter, Gauge, type Registry } from 'prom-client';
import { ScrapeSample, type ScrapeSampleOptions, WatchedSample } from './scrapeSample.ts';
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
  /** Undefined when Redis cannot tell (after deletions): the series is left out rather than counted at scrape time. */
  readonly lag: number | undefined;
  readonly pending: number;
  /** Age of the oldest entry delivered and not acknowledged (from its id's time), s; undefined with none pending. */
  readonly oldestPendingAgeSeconds: number | undefined;
  /** Entries in the shard's dead-letter stream (every group's). */
  readonly deadLetters: number;
  /** Entries waiting in the shard's catch-up lane. */
  readonly catchup: number;
}

interface GroupWatch {
  readonly group: string;
  readonly sample: ScrapeSample<GroupRow[]>;
}

/**
 * `streamgauge_consumer_lag`, `streamgauge_consumer_pending` and
 * `streamgauge_consumer_pending_oldest_age_seconds` per group and stream
 * shard, and `streamgauge_dead_letters` and `streamgauge_catchup_entries` per shard.
 */
export class ConsumerGroupGauges {
  readonly #watches = new Set<GroupWatch>();
  readonly #failures: Counter.Internal;
  readonly #options: ScrapeSampleOptions;

  constructor(registry: Registry, failures: Counter<'source'>, options: ScrapeSampleOptions = {}) {
    this.#failures = failures.labels('consumer_groups');
    this.#failures.inc(0);
    this.#options = options;
    const rows = () => this.#rows();
    // One gauge per fact of a group's row, all from the same read per scrape; a fact
    // Redis cannot tell now (undefined) leaves its series out.
    const perRow = (
      name: string,
      help: string,
      value: (row: GroupRow) => number | undefined,
      perGroup = true,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: perGroup ? [GROUP, DESTINATION] : [DESTINATION],
        // A shard's fact that every group's watch reports (its dead letters) is
        // one value however many registries are merged (ProcessMetrics.addSource).
        ...(perGroup ? {} : { aggregator: 'max' as const }),
        registers: [registry],
        async collect() {
          const all = await rows();
          this.reset();
          for (const { group, row } of all) {
            const v = value(row);
            if (v === undefined) continue;
            if (perGroup) this.labels(group, row.stream).set(v);
            else this.labels(row.stream).set(v);
          }
        },
      });
    perRow(
      'streamgauge_consumer_lag',
      'Stream entries not yet delivered to the consumer group (XINFO GROUPS lag).',
      (row) => row.lag,
    );
    perRow(
      'streamgauge_consumer_pending',
      'Stream entries delivered to the consumer group and not yet acknowledged (XINFO GROUPS pending).',
      (row) => row.pending,
    );
    perRow(
      'streamgauge_consumer_pending_oldest_age_seconds',
      "Age of the consumer group's oldest entry delivered and not yet acknowledged, from its id's time (absent with none pending).",
      (row) => row.oldestPendingAgeSeconds,
    );
    perRow(
      'streamgauge_dead_letters',
      "Entries in the stream shard's dead-letter stream (every group's): given up on, waiting for `streamgauge dlq`.",
      (row) => row.deadLetters,
      false,
    );
    perRow(
      'streamgauge_catchup_entries',
      "Entries of late readings waiting in the stream shard's catch-up lane for the aggregator to move them into the stream.",
      (row) => row.catchup,
      false,
    );
  }

  /** Reports `group` on these shards, read with `redis`, until the returned function is called. */
  watch(redis: RedisClient, group: string, shards: readonly ShardKeys[]): () => void {
    const sample = new ScrapeSample(
      // Per shard: XINFO GROUPS, XLEN of the dead letters and of the catch-up lanes, and XPENDING's summary only when entries are pending.
      async () => {
        const now = Date.now();
        const perShard = await Promise.all(
          shards.map(async (shard) => {
            const [groups, deadLetters, catchup] = await Promise.all([
              groupsOf(redis, shard.stream),
              redis.xlen(shard.deadLetters),
              catchupBacklog(redis, shard).then((backlog) => backlog.entries),
            ]);
            const mine = groups.find((g) => g.name === group);
            if (mine === undefined) return [];
            const oldest = mine.pending > 0 ? await oldestPendingId(redis, shard.stream, group) : undefined;
            return [
              {
                stream: shard.stream,
                lag: mine.lag,
                pending: mine.pending,
                oldestPendingAgeSeconds:
                  oldest === undefined ? undefined : Math.max(0, now - idTime(oldest)) / 1000,
                deadLetters,
                catchup,
              },
            ];
          }),
        );
        return perShard.flat();
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

async function oldestPendingId(
  redis: RedisClient,
  stream: string,
  group: string,
): Promise<string | undefined> {
  const summary = (await redis.xpending(stream, group)) as [number, string | null, ...unknown[]];
  return summary[1] ?? undefined;
}

function idTime(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/**
 * `streamgauge_redis_memory_used_bytes` and `streamgauge_redis_memory_max_bytes`
 * (0: no maxmemory), from INFO memory at scrape time: what an alert compares
 * to say Redis is about to refuse writes or evict.
 */
export class RedisMemoryGauges {
  readonly #memory: WatchedSample<{ used: number; max: number }>;

  constructor(registry: Registry, failures: Counter<'source'>, options: ScrapeSampleOptions = {}) {
    const memory = new WatchedSample<{ used: number; max: number }>(failures, 'redis_memory', options);
    this.#memory = memory;
    new Gauge({
      name: 'streamgauge_redis_memory_used_bytes',
      help: 'Memory Redis uses (INFO memory used_memory).',
      registers: [registry],
      async collect() {
        const read = await memory.get();
        this.reset();
        if (read) this.set(read.used);
      },
    });
    new Gauge({
      name: 'streamgauge_redis_memory_max_bytes',
      help: "Redis' maxmemory (0: none set, Redis grows until the machine runs out).",
      registers: [registry],
      async collect() {
        const read = await memory.get();
        this.reset();
        if (read) this.set(read.max);
      },
    });
  }

  watch(redis: RedisClient): () => void {
    return this.#memory.watch(async () => {
      const info = await redis.info('memory');
      const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
      return { used: field('used_memory'), max: field('maxmemory') };
    });
  }
}

/**
 * `streamgauge_anomalies_open{anomaly_type}`: the anomalies open now, as the
 * aggregator's detectors hold them, for the shards this replica holds (each
 * node is held by one replica: sum over replicas for the whole network).
 * Counted in memory at scrape time: no Redis work, whatever the node count.
 */
export class OpenAnomalyGauge {
  readonly #sources: (() => ReadonlyMap<string, number>)[] = [];

  constructor(registry: Registry) {
    const sources = this.#sources;
    new Gauge({
      name: 'streamgauge_anomalies_open',
      help: 'Anomalies open now, by type, on the nodes this aggregator replica holds (sum over replicas).',
      labelNames: ['anomaly_type'],
      registers: [registry],
      collect() {
        this.reset();
        if (sources.length === 0) return;
        const open = new Map<string, number>();
        for (const count of sources) {
          for (const [type, n] of count()) open.set(type, (open.get(type) ?? 0) + n);
        }
        for (const type of ANOMALY_TYPES) this.labels(type).set(open.get(type) ?? 0);
      },
    });
  }

  /** Adds what `count` says is open (type → count) to the gauge; returns what stops it. */
  watch(count: () => ReadonlyMap<string, number>): () => void {
    this.#sources.push(count);
    return () => {
      const at = this.#sources.indexOf(count);
      if (at >= 0) this.#sources.splice(at, 1);
    };
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
  readonly status?: string;
  readonly scope?: unknown;
  readonly drift?: Record<string, number>;
}

/**
 * `streamgauge_reconcile_drift{metric}` and the time the last backfill run
 * finished, from its report in `reconcile:last` (so also a run another
 * process did, and the last run before this process started).
 */
export class ReconcileGauges {
  readonly #report: WatchedSample<LastReport | null>;

  constructor(registry: Registry, failures: Counter<'source'>, options: ScrapeSampleOptions = {}) {
    const last = new WatchedSample<LastReport | null>(failures, 'reconcile', options);
    this.#report = last;
    const report = () => last.get();
    new Gauge({
      name: 'streamgauge_reconcile_drift',
      help: 'How far the live panes had drifted from the warehouse at the last backfill run: the largest absolute difference per metric (readings: count; <measurement>.<mean|min|max>).',
      labelNames: ['metric'],
      registers: [registry],
      async collect() {
        const last = await report();
        this.reset();
        // Only a complete run over every node measures the drift of the whole
        // live state: after a partial run or a scoped rebuild there is none to show.
        if (last === undefined || last === null || last.status !== 'complete' || last.scope !== undefined)
          return;
        const drift: Record<string, unknown> = { ...last.drift };
        for (const metric of DRIFT_METRICS) drift[metric] ??= 0;
        for (const [metric, value] of Object.entries(drift)) {
          if (typeof value === 'number') this.labels(metric).set(value);
        }
      },
    });
    new Gauge({
      name: 'streamgauge_reconcile_last_finished_timestamp_seconds',
      help: 'When the last backfill run finished (Unix time), by its status (complete, partial) and scope (full, or scoped: a rebuild of some nodes or panes).',
      // Labelled so that with no report to read the series is absent, not 0.
      labelNames: ['status', 'scope'],
      registers: [registry],
      async collect() {
        const last = await report();
        this.reset();
        const at = last?.finishedAt === undefined ? Number.NaN : Date.parse(last.finishedAt);
        if (last && Number.isFinite(at)) {
          this.labels(last.status ?? 'complete', last.scope === undefined ? 'full' : 'scoped').set(at / 1000);
        }
      },
    });
  }

  watch(redis: RedisClient): () => void {
    return this.#report.watch(
      async () => (await new ReconcileControl(redis).lastReport()) as LastReport | null,
    );
  }
}
