import {
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';
import { ConsumerGroupGauges, OpenAnomalyGauge, ReconcileGauges, RedisMemoryGauges } from './redisGauges.ts';
import type { ScrapeSampleOptions } from './scrapeSample.ts';
import {
  AggregatorSeries,
  ArchiverSeries,
  BackfillSeries,
  ConsumerFamilies,
  ConsumerSeries,
  IngestSeries,
  PubSubSeries,
} from './series.ts';

/** A registry's series as `getMetricsAsJSON()` gives them. */
export type SeriesSource = () => Promise<MetricObjectWithValues<MetricValue<string>>[]>;

export interface ProcessMetricsOptions {
  /** The `service` label on every series: ingest, aggregator, archiver, backfill, or streamgauge (`start`). */
  readonly service: string;
  /** Node.js and process series (prom-client's defaults); off for services a test starts in-process. */
  readonly defaultMetrics?: boolean;
  /** How the gauges read from Redis at scrape time are cached and bounded. */
  readonly scrape?: ScrapeSampleOptions;
}

/**
 * The metrics of one process: one registry, served at one /metrics, with a
 * `service` label on every series. A service's series are registered when
 * it first asks for them, so each process exports only what it runs
 * (`streamgauge start` runs all services and exports everything once).
 */
export class ProcessMetrics {
  readonly registry: Registry;
  readonly service: string;
  readonly #scrape: ScrapeSampleOptions;
  #ingest: IngestSeries | undefined;
  #consumerFamilies: ConsumerFamilies | undefined;
  readonly #consumers = new Map<string, ConsumerSeries>();
  #aggregator: AggregatorSeries | undefined;
  #archiver: ArchiverSeries | undefined;
  #backfill: BackfillSeries | undefined;
  #pubsub: PubSubSeries | undefined;
  #readFailures: Counter<'source'> | undefined;
  #consumerGroups: ConsumerGroupGauges | undefined;
  #openAnomalies: OpenAnomalyGauge | undefined;
  #reconcile: ReconcileGauges | undefined;
  #redisMemory: RedisMemoryGauges | undefined;
  #readiness: (() => Promise<void>) | undefined;
  readonly #sources = new Set<SeriesSource>();

  constructor(options: ProcessMetricsOptions) {
    this.service = options.service;
    this.#scrape = options.scrape ?? {};
    this.registry = new Registry();
    this.registry.setDefaultLabels({ service: options.service });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  get ingest(): IngestSeries {
    this.#ingest ??= new IngestSeries(this.registry);
    return this.#ingest;
  }

  /** A consumer group's series (`aggregator`, `archiver`). */
  consumer(group: string): ConsumerSeries {
    let series = this.#consumers.get(group);
    if (series === undefined) {
      this.#consumerFamilies ??= new ConsumerFamilies(this.registry);
      series = new ConsumerSeries(this.#consumerFamilies, group);
      this.#consumers.set(group, series);
    }
    return series;
  }

  get aggregator(): AggregatorSeries {
    this.#aggregator ??= new AggregatorSeries(this.registry);
    return this.#aggregator;
  }

  get archiver(): ArchiverSeries {
    this.#archiver ??= new ArchiverSeries(this.registry);
    return this.#archiver;
  }

  /** The Pub/Sub ingest source's messages. */
  get pubsub(): PubSubSeries {
    this.#pubsub ??= new PubSubSeries(this.registry);
    return this.#pubsub;
  }

  get backfill(): BackfillSeries {
    this.#backfill ??= new BackfillSeries(this.registry);
    return this.#backfill;
  }

  /** Lag and pending entries per group and shard, read at scrape time. */
  get consumerGroups(): ConsumerGroupGauges {
    this.#consumerGroups ??= new ConsumerGroupGauges(this.registry, this.#failures(), this.#scrape);
    return this.#consumerGroups;
  }

  /** Open anomalies by type, read at scrape time. */
  get openAnomalies(): OpenAnomalyGauge {
    this.#openAnomalies ??= new OpenAnomalyGauge(this.registry);
    return this.#openAnomalies;
  }

  /** The last backfill run's drift, read at scrape time. */
  get reconcile(): ReconcileGauges {
    this.#reconcile ??= new ReconcileGauges(this.registry, this.#failures(), this.#scrape);
    return this.#reconcile;
  }

  /** Redis' memory used and its maxmemory, read at scrape time. */
  get redisMemory(): RedisMemoryGauges {
    this.#redisMemory ??= new RedisMemoryGauges(this.registry, this.#failures(), this.#scrape);
    return this.#redisMemory;
  }

  /** What /readyz checks from now on: resolves when the service can work. Until set, /readyz says "starting". */
  readyWhen(check: () => Promise<void>): void {
    this.#readiness = check;
  }

  /** Resolves when the service is ready (see readyWhen). */
  async ready(): Promise<void> {
    if (this.#readiness === undefined) throw new Error('starting');
    await this.#readiness();
  }

  /**
   * Series recorded elsewhere in the process (a worker thread's registry, as
   * `getMetricsAsJSON()` gives them), served with this registry's: series of
   * the same name and labels add up, as one registry's would. Returns the
   * function that removes the source.
   */
  addSource(source: SeriesSource): () => void {
    this.#sources.add(source);
    return () => this.#sources.delete(source);
  }

  /** The exposition, as /metrics answers it. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    if (this.#sources.size === 0) {
      return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    }
    const series = await Promise.all([
      this.registry.getMetricsAsJSON(),
      ...[...this.#sources].map((source) => source()),
    ]);
    // A series only one registry holds is served as it is: an aggregator
    // meant for merging copies of one process (`omit` for its start time)
    // must not drop it.
    const holders = new Map<string, number>();
    for (const metrics of series)
      for (const m of metrics) holders.set(m.name, (holders.get(m.name) ?? 0) + 1);
    const merged = series.map((metrics) =>
      metrics.map((m) => (holders.get(m.name) === 1 ? { ...m, aggregator: 'first' as const } : m)),
    );
    return {
      contentType: this.registry.contentType,
      body: await AggregatorRegistry.aggregate(merged).metrics(),
    };
  }

  #failures(): Counter<'source'> {
    this.#readFailures ??= new Counter({
      name: 'streamgauge_scrape_read_failures_total',
      help: 'Reads of Redis at scrape time that failed or timed out (their series were left out of that scrape).',
      labelNames: ['source'],
      registers: [this.registry],
    });
    return this.#readFailures;
  }
}
