import {
  type AnomalySettings,
  DEFAULT_ANOMALY_SETTINGS,
  type Thresholds,
  thresholdsProblem,
} from './anomaly/settings.ts';
import { ConfigError } from './errors/ConfigError.ts';
import type { GatewayLimits } from './gateway.ts';
import { CATCHUP } from './keys.ts';

export type Env = Readonly<Record<string, string | undefined>>;

export interface RedisConfig {
  /** A redis:// or rediss:// URL; REDIS_URL wins over REDIS_HOST/PORT/DB. */
  readonly url: string;
  /** Whether the address was given (false: the defaults were used). */
  readonly explicit: boolean;
  /** REDIS_CLUSTER_NODES: seed nodes of a Redis Cluster; when set, every service uses the cluster. */
  readonly clusterNodes?: readonly { readonly host: string; readonly port: number }[];
}

export interface IngestConfig {
  readonly host: string;
  readonly port: number;
  readonly maxBatchReadings: number;
  readonly maxBodyBytes: number;
  readonly maxFutureMs: number;
  readonly auth: boolean;
  readonly authCacheMs: number;
  /** Longest ingest waits for Redis, over all of a request's calls, before answering 503. */
  readonly redisTimeoutMs: number;
  /** INGEST_REQUEST_TIMEOUT_SECONDS: a request's headers and body must arrive within this (else 408). */
  readonly requestTimeoutMs: number;
  /** INGEST_HEADERS_TIMEOUT_SECONDS: a request's headers must arrive within this. */
  readonly headersTimeoutMs: number;
  /** INGEST_KEEP_ALIVE_SECONDS: an idle keep-alive connection is closed after this. */
  readonly keepAliveMs: number;
  /** INGEST_MAX_CONNECTIONS: connections open at once; more are refused. */
  readonly maxConnections: number;
  /** INGEST_RATE_READINGS, INGEST_RATE_REQUESTS: each gateway's default rates (0: no limit). */
  readonly limits: GatewayLimits;
  /** INGEST_AUTH_FAILURES_PER_MINUTE: failed authentications a client address may make (0: no limit). */
  readonly authFailuresPerMinute: number;
  /** INGEST_NEW_NODES_PER_HOUR: nodes a district gateway may add to its district per hour. */
  readonly newNodesPerHour: number;
  /**
   * INGEST_TRUST_PROXY: behind proxies, which of them to believe about the
   * client address (X-Forwarded-For): false (none), a number of hops, or
   * their addresses and CIDR ranges (comma-separated).
   */
  readonly trustProxy: false | number | string;
  /** PUBSUB_*: readings pulled from a Pub/Sub subscription too (absent: HTTP only). */
  readonly pubsub?: PubSubSourceConfig;
}

/** The Pub/Sub ingest source: present when PUBSUB_SUBSCRIPTION is set. */
export interface PubSubSourceConfig {
  /** PUBSUB_SUBSCRIPTION: a subscription id, or `projects/<project>/subscriptions/<id>`. */
  readonly subscription: string;
  /** PUBSUB_DEAD_LETTER_TOPIC: where messages with rejected readings go, with the reasons. */
  readonly deadLetterTopic: string;
  /** Flow control: messages held (being validated, appended, or waiting) at once. */
  readonly maxMessages: number;
  /** Flow control: message bytes held at once. */
  readonly maxBytes: number;
  /** StreamingPull streams opened to the subscription. */
  readonly maxStreams: number;
}

/**
 * How every Pub/Sub client connects (ingest's subscription, the anomaly
 * topic): otherwise the standard Google way (credentials, project).
 */
export interface PubSubClientConfig {
  /**
   * PUBSUB_EMULATOR_HOST: `host:port` of an emulator; the client then talks
   * to it only, looking up no credentials.
   */
  readonly emulatorHost?: string;
  /** PUBSUB_PROJECT_ID, else GOOGLE_CLOUD_PROJECT: the project of ids given without `projects/…` (unset: the credentials'). */
  readonly projectId?: string;
}

export interface StreamConfig {
  readonly shards: number;
  readonly retentionMs: number;
  readonly dedupeHorizonMs: number;
  /** STREAM_MAX_MB: each shard's stream is bounded to this many bytes (0: no bound). */
  readonly maxBytes: number;
  /**
   * CATCHUP_AFTER_MINUTES: a reading whose event time is this far behind
   * ingest's clock may go to the shard's catch-up lane (see CATCHUP); 0:
   * never (every reading queues in arrival order).
   */
  readonly catchupAfterMs: number;
}

export interface AggregatorConfig {
  /** Consumer name in the group; stable across restarts so pending entries are found again. */
  readonly consumer: string;
  /** Stream entries per read (each holds one request's readings). */
  readonly readCount: number;
  /**
   * AGGREGATOR_CATCHUP_READINGS: readings moved from one of a shard's
   * catch-up lanes into its stream at a time (whole entries, at least one,
   * at most 500),
   * while the aggregator has less than a read left in the stream: the most
   * old readings a new one can find ahead of it (besides that read).
   */
  readonly catchupReadings: number;
  /**
   * Readings applied and committed at a time: a read is split into slices of
   * at most this many (an entry larger than this is a slice of its own), each
   * committed on its own, so no batch outlives the shard's lease.
   */
  readonly sliceReadings: number;
  readonly blockMs: number;
  /** Longest metrics, series and system metrics wait after a change. */
  readonly metricsIntervalMs: number;
  /** Under load, how often the ranges beyond 1 hour and the 7-day series are rewritten. */
  readonly longRangesIntervalMs: number;
  /**
   * How long a replica's lease on a shard lasts without renewal: a dead
   * replica's shards are taken over, and shards rebalanced, within about 1.5×.
   */
  readonly leaseMs: number;
  /** Entries pending this long on any consumer are claimed (XAUTOCLAIM) and processed again. */
  readonly claimIdleMs: number;
  /** An entry that failed this many deliveries goes to the dead-letter stream. */
  readonly maxDeliveries: number;
}

export interface ArchiverConfig {
  /** Consumer name in group `archiver` (reads, claims and dead letters follow the AGGREGATOR_* settings). */
  readonly consumer: string;
  /**
   * After a read that returned fewer than 10,000 readings, how long to wait
   * before the next: keeping up one entry at a time costs DuckDB about
   * three times as much per reading as writes of ten thousand.
   */
  readonly lingerMs: number;
}

export interface BackfillConfig {
  /** Warehouse queries of one run in flight at once. */
  readonly concurrency: number;
  /** Longest a run waits for the aggregators to apply its panes before it reports them pending. */
  readonly applyTimeoutMs: number;
}

/** BIGQUERY_*: the warehouse is BigQuery when a project is set (DuckDB otherwise). */
export interface BigQueryConfig {
  readonly project: string;
  readonly dataset: string;
  readonly table: string;
  readonly location?: string;
}

/** How far ahead of the clock a live window accepts a reading: ingest's allowance plus host clock skew. */
export function liveAheadMs(config: Config): number {
  return config.ingest.maxFutureMs + 60_000;
}

/**
 * METRICS_*: the /metrics listener of the aggregator, the archiver and the
 * backfill (ingest serves /metrics on its own port; `start`, one for the
 * whole process, there too).
 */
export interface MetricsConfig {
  /** METRICS_HOST: like INGEST_HOST, every interface: Prometheus scrapes from another host. */
  readonly host: string;
  /** METRICS_PORT (0: any free port); unset: the service's own default (DEFAULT_METRICS_PORTS). */
  readonly port: number | undefined;
  /** METRICS_PORT=off: no listener. */
  readonly enabled: boolean;
}

/**
 * Each service its own port, so all of them can run on one host. 9464 is
 * OpenTelemetry's Prometheus exporter's default.
 */
export const DEFAULT_METRICS_PORTS = { aggregator: 9464, archiver: 9465, backfill: 9466 } as const;

/** The port `service` serves /metrics on, or undefined when METRICS_PORT=off. */
export function metricsPort(config: Config, service: keyof typeof DEFAULT_METRICS_PORTS): number | undefined {
  if (!config.metrics.enabled) return undefined;
  return config.metrics.port ?? DEFAULT_METRICS_PORTS[service];
}

/** ANOMALY_*: the detectors' settings, and where open and close events are published. */
export interface AnomalyConfig {
  readonly settings: AnomalySettings;
  /** ANOMALY_TOPIC: a Pub/Sub topic for open and close events (unset: none). */
  readonly topic?: string;
}

/** DASHBOARD_*: the read API and page. */
export interface DashboardConfig {
  /** DASHBOARD_HOST; unset: loopback for `start`, every interface for `dashboard`. */
  readonly host: string | undefined;
  readonly port: number;
  /** IANA zone the page shows times in (stored times stay UTC). */
  readonly timeZone: string;
  /** A node whose newest reading is older is stale, then offline. */
  readonly staleAfterMs: number;
  readonly offlineAfterMs: number;
}

export interface Config {
  readonly redis: RedisConfig;
  readonly dashboard: DashboardConfig;
  readonly anomalies: AnomalyConfig;
  readonly backfill: BackfillConfig;
  readonly bigquery?: BigQueryConfig;
  readonly aggregator: AggregatorConfig;
  readonly archiver: ArchiverConfig;
  readonly cacheTtlSeconds: number;
  readonly cacheRefreshMs: number;
  readonly dataDir: string;
  readonly ingest: IngestConfig;
  readonly pubsubClient: PubSubClientConfig;
  readonly stream: StreamConfig;
  /** LOG_LEVEL; unset, each command decides (services log from info, ops commands from warn). */
  readonly logLevel: string | undefined;
  /** LOG_FORMAT: `json`, `pretty`, or `auto` (pretty on a terminal, JSON otherwise). */
  readonly logFormat: LogFormat;
  readonly metrics: MetricsConfig;
}

const HOUR_MS = 3_600_000;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

function readAnomalies(read: Reader, env: Env): AnomalyConfig {
  const d = DEFAULT_ANOMALY_SETTINGS;
  let thresholds: Thresholds = d.thresholds;
  const raw = env.ANOMALY_THRESHOLDS?.trim();
  if (raw) {
    try {
      const parsed = JSON.parse(raw) as unknown;
      const problem = thresholdsProblem(parsed);
      if (problem === undefined) thresholds = parsed as Thresholds;
      else read.problem(`ANOMALY_THRESHOLDS: ${problem}`);
    } catch (error) {
      read.problem(`ANOMALY_THRESHOLDS: not JSON (${(error as Error).message})`);
    }
  }
  const topic = env.ANOMALY_TOPIC?.trim();
  return {
    settings: {
      ...d,
      thresholds,
      sigma: read.number('ANOMALY_SIGMA', d.sigma, { min: 0.5, max: 20 }),
      windowReadings: read.number('ANOMALY_WINDOW_READINGS', d.windowReadings, {
        min: 2,
        max: 10_000,
        integer: true,
      }),
      clearMs: read.number('ANOMALY_CLEAR_MINUTES', d.clearMs / 60_000, { min: 0 }) * 60_000,
      stuckMs: read.number('ANOMALY_STUCK_MINUTES', d.stuckMs / 60_000, { min: 1 }) * 60_000,
      offlineFactor: read.number('ANOMALY_OFFLINE_FACTOR', d.offlineFactor, { min: 1, max: 1000 }),
      offlineMinMs: read.number('ANOMALY_OFFLINE_MIN_MINUTES', d.offlineMinMs / 60_000, { min: 1 }) * 60_000,
      confirmReadings: read.number('ANOMALY_CONFIRM_READINGS', d.confirmReadings, {
        min: 1,
        max: 100,
        integer: true,
      }),
      unlikelyProbability: read.number('ANOMALY_UNLIKELY_PROBABILITY', d.unlikelyProbability, {
        min: 1e-9,
        max: 1,
      }),
      alarmScore: read.number('ANOMALY_ALARM_SCORE', d.alarmScore, { min: 0, max: 1 }),
      checkpointMs:
        read.number('ANOMALY_CHECKPOINT_SECONDS', d.checkpointMs / 1000, { min: 0, max: 3600 }) * 1000,
    },
    ...(topic && { topic }),
  };
}

function readBigQuery(read: Reader, env: Env): { bigquery?: BigQueryConfig } {
  const project = env.BIGQUERY_PROJECT?.trim();
  if (!project) return {};
  const location = env.BIGQUERY_LOCATION?.trim();
  return {
    bigquery: {
      project,
      dataset: read.text('BIGQUERY_DATASET', 'streamgauge'),
      table: read.text('BIGQUERY_TABLE', 'readings'),
      ...(location && { location }),
    },
  };
}

// Pub/Sub resource ids: 3–255 characters, starting with a letter. A full
// resource name (`projects/<project>/subscriptions/<id>`) is taken as well.
const PUBSUB_ID = '[A-Za-z][A-Za-z0-9._~+%-]{2,254}';
const PUBSUB_PROJECT = '[a-z][a-z0-9.:-]{1,62}[a-z0-9]';
const SUBSCRIPTION_NAME = new RegExp(`^(projects/${PUBSUB_PROJECT}/subscriptions/)?${PUBSUB_ID}$`);
const TOPIC_NAME = new RegExp(`^(projects/${PUBSUB_PROJECT}/topics/)?${PUBSUB_ID}$`);

/**
 * Never "every proxy": X-Forwarded-For's leftmost entry is whatever the
 * client wrote, so trusting all of it would let a client choose the address
 * its failed logins are counted against.
 */
function trustedProxies(value: string): false | number | string {
  const text = value.trim();
  if (text === 'off' || text === '') return false;
  if (text === 'on') return 1;
  if (/^\d+$/.test(text)) return Number(text);
  return text;
}

/**
 * Not checked: the values go to Google's client as they are, and it takes
 * more than an id or a `host:port` (an emulator URL with its scheme, a
 * domain-scoped project).
 */
function readPubSubClient(env: Env): PubSubClientConfig {
  const emulatorHost = env.PUBSUB_EMULATOR_HOST?.trim();
  const projectId = env.PUBSUB_PROJECT_ID?.trim() || env.GOOGLE_CLOUD_PROJECT?.trim();
  return { ...(emulatorHost && { emulatorHost }), ...(projectId && { projectId }) };
}

function readPubSubSource(read: Reader, env: Env): { pubsub?: PubSubSourceConfig } {
  const subscription = env.PUBSUB_SUBSCRIPTION?.trim();
  if (!subscription) return {};
  if (!SUBSCRIPTION_NAME.test(subscription)) {
    read.problem(
      `PUBSUB_SUBSCRIPTION: expected a subscription id (3 to 255 letters, digits or . _ ~ + % -, starting with a letter) or projects/<project>/subscriptions/<id>, got ${JSON.stringify(subscription)}`,
    );
  }
  // Required: a message with rejected readings is acknowledged only once it is
  // dead-lettered. Without a destination it could only be dropped (losing
  // data silently) or refused forever (redelivered in a loop).
  const deadLetterTopic = env.PUBSUB_DEAD_LETTER_TOPIC?.trim() ?? '';
  if (deadLetterTopic === '') {
    read.problem(
      'PUBSUB_DEAD_LETTER_TOPIC: required when PUBSUB_SUBSCRIPTION is set (messages with rejected readings are published there with the reasons)',
    );
  } else if (!TOPIC_NAME.test(deadLetterTopic)) {
    read.problem(
      `PUBSUB_DEAD_LETTER_TOPIC: expected a topic id (3 to 255 letters, digits or . _ ~ + % -, starting with a letter) or projects/<project>/topics/<id>, got ${JSON.stringify(deadLetterTopic)}`,
    );
  }
  return {
    pubsub: {
      subscription,
      deadLetterTopic,
      maxMessages: read.number('PUBSUB_MAX_MESSAGES', 1000, { min: 1, max: 100_000, integer: true }),
      maxBytes: read.number('PUBSUB_MAX_BYTES', 100 * 1024 * 1024, {
        min: 1024 * 1024,
        max: 4 * 1024 * 1024 * 1024,
        integer: true,
      }),
      maxStreams: read.number('PUBSUB_MAX_STREAMS', 5, { min: 1, max: 32, integer: true }),
    },
  };
}

/**
 * The one configuration loader. Every problem is collected and reported
 * together, naming the variable, the value and what was expected.
 */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const read = new Reader(env, problems);

  const redis = readRedis(read, env);
  const config: Config = {
    redis,
    // At least 2 h: keys that change slowly (latest of a quiet node, 3d-30d
    // metrics, the series) are rewritten hourly, and must not expire in between.
    cacheTtlSeconds: Math.round(read.number('CACHE_TTL_HOURS', 24, { min: 2 }) * 3600),
    cacheRefreshMs: read.number('CACHE_REFRESH_HOURS', 6, { min: 1 / 60 }) * HOUR_MS,
    dataDir: read.text('DATA_DIR', './data'),
    ingest: {
      host: read.text('INGEST_HOST', '0.0.0.0'),
      port: read.number('INGEST_PORT', 8080, { min: 0, max: 65535, integer: true }),
      maxBatchReadings: read.number('INGEST_MAX_READINGS', 10_000, { min: 1, max: 100_000, integer: true }),
      maxBodyBytes: read.number('INGEST_MAX_BODY_BYTES', 5 * 1024 * 1024, { min: 1024, integer: true }),
      maxFutureMs: read.number('INGEST_MAX_FUTURE_SECONDS', 300, { min: 0 }) * 1000,
      auth: read.choice('INGEST_AUTH', 'on', ['on', 'off']) === 'on',
      authCacheMs: read.number('INGEST_AUTH_CACHE_SECONDS', 5, { min: 0 }) * 1000,
      redisTimeoutMs: read.number('INGEST_REDIS_TIMEOUT_MS', 5_000, {
        min: 100,
        max: 600_000,
        integer: true,
      }),
      requestTimeoutMs: read.number('INGEST_REQUEST_TIMEOUT_SECONDS', 30, { min: 1, max: 3600 }) * 1000,
      headersTimeoutMs: read.number('INGEST_HEADERS_TIMEOUT_SECONDS', 10, { min: 1, max: 3600 }) * 1000,
      keepAliveMs: read.number('INGEST_KEEP_ALIVE_SECONDS', 72, { min: 1, max: 3600 }) * 1000,
      maxConnections: read.number('INGEST_MAX_CONNECTIONS', 4096, { min: 1, max: 1_000_000, integer: true }),
      limits: {
        readingsPerSecond: read.number('INGEST_RATE_READINGS', 20_000, { min: 0 }),
        requestsPerSecond: read.number('INGEST_RATE_REQUESTS', 100, { min: 0 }),
      },
      authFailuresPerMinute: read.number('INGEST_AUTH_FAILURES_PER_MINUTE', 30, { min: 0, integer: true }),
      newNodesPerHour: read.number('INGEST_NEW_NODES_PER_HOUR', 100, { min: 0, integer: true }),
      trustProxy: trustedProxies(read.text('INGEST_TRUST_PROXY', 'off')),
      ...readPubSubSource(read, env),
    },
    aggregator: {
      consumer: read.text('AGGREGATOR_CONSUMER', 'aggregator-1'),
      readCount: read.number('AGGREGATOR_READ_COUNT', 500, { min: 1, max: 100_000, integer: true }),
      catchupReadings: read.number('AGGREGATOR_CATCHUP_READINGS', 50_000, {
        min: 1,
        max: 10_000_000,
        integer: true,
      }),
      sliceReadings: read.number('AGGREGATOR_SLICE_READINGS', 50_000, {
        min: 1,
        max: 10_000_000,
        integer: true,
      }),
      blockMs: read.number('AGGREGATOR_BLOCK_MS', 1000, { min: 10, max: 60_000, integer: true }),
      metricsIntervalMs: read.number('AGGREGATOR_METRICS_INTERVAL_MS', 1000, {
        min: 0,
        max: 3_600_000,
        integer: true,
      }),
      longRangesIntervalMs: read.number('AGGREGATOR_LONG_RANGES_INTERVAL_MS', 30_000, {
        min: 0,
        max: 3_600_000,
        integer: true,
      }),
      leaseMs: read.number('AGGREGATOR_LEASE_MS', 10_000, { min: 300, max: 600_000, integer: true }),
      claimIdleMs: read.number('AGGREGATOR_CLAIM_IDLE_MS', 30_000, {
        min: 100,
        max: 86_400_000,
        integer: true,
      }),
      maxDeliveries: read.number('AGGREGATOR_MAX_DELIVERIES', 5, { min: 1, max: 1000, integer: true }),
    },
    archiver: {
      consumer: read.text('ARCHIVER_CONSUMER', 'archiver-1'),
      lingerMs: read.number('ARCHIVER_LINGER_MS', 500, { min: 0, max: 60_000, integer: true }),
    },
    backfill: {
      concurrency: read.number('BACKFILL_CONCURRENCY', 4, { min: 1, max: 64, integer: true }),
      applyTimeoutMs: read.number('BACKFILL_APPLY_TIMEOUT_SECONDS', 300, { min: 1 }) * 1000,
    },
    ...readBigQuery(read, env),
    anomalies: readAnomalies(read, env),
    pubsubClient: readPubSubClient(env),
    stream: {
      shards: read.number('STREAM_SHARDS', 1, { min: 1, max: 1024, integer: true }),
      retentionMs: read.number('STREAM_RETENTION_HOURS', 48, { min: 1 / 60 }) * HOUR_MS,
      dedupeHorizonMs: read.number('DEDUPE_HORIZON_HOURS', 48, { min: 1 / 60 }) * HOUR_MS,
      maxBytes: Math.round(read.number('STREAM_MAX_MB', 4096, { min: 0 }) * 1_048_576),
      catchupAfterMs: read.number('CATCHUP_AFTER_MINUTES', CATCHUP.lateMs / 60_000, { min: 0 }) * 60_000,
    },
    logLevel: env.LOG_LEVEL?.trim() ? read.choice('LOG_LEVEL', 'info', LOG_LEVELS) : undefined,
    logFormat: read.choice('LOG_FORMAT', 'auto', LOG_FORMATS) as LogFormat,
    metrics: readMetrics(read, env),
    dashboard: readDashboard(read, env),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

function readDashboard(read: Reader, env: Env): DashboardConfig {
  const timeZone = read.text('DASHBOARD_TIME_ZONE', 'UTC');
  try {
    new Intl.DateTimeFormat('en', { timeZone });
  } catch {
    read.problem(
      `DASHBOARD_TIME_ZONE: ${JSON.stringify(timeZone)} is not an IANA time zone (e.g. Europe/Rome)`,
    );
  }
  const staleAfterMs = read.number('DASHBOARD_STALE_SECONDS', 900, { min: 1 }) * 1000;
  const offlineAfterMs = read.number('DASHBOARD_OFFLINE_SECONDS', 3600, { min: 1 }) * 1000;
  if (offlineAfterMs < staleAfterMs) {
    read.problem('DASHBOARD_OFFLINE_SECONDS: must be at least DASHBOARD_STALE_SECONDS');
  }
  return {
    host: env.DASHBOARD_HOST?.trim() || undefined,
    port: read.number('DASHBOARD_PORT', 8090, { min: 0, max: 65535, integer: true }),
    timeZone,
    staleAfterMs,
    offlineAfterMs,
  };
}

function readMetrics(read: Reader, env: Env): MetricsConfig {
  const host = read.text('METRICS_HOST', '0.0.0.0');
  if (env.METRICS_PORT?.trim().toLowerCase() === 'off') return { host, port: undefined, enabled: false };
  const port = env.METRICS_PORT?.trim()
    ? read.number('METRICS_PORT', 0, { min: 0, max: 65535, integer: true })
    : undefined;
  return { host, port, enabled: true };
}

function readRedis(read: Reader, env: Env): RedisConfig {
  const cluster = env.REDIS_CLUSTER_NODES?.trim();
  if (cluster) {
    const nodes = cluster.split(',').map((item) => {
      const match = /^\[?([^\s\]]+?)\]?:(\d{1,5})$/.exec(item.trim());
      const port = Number(match?.[2]);
      if (!match || port < 1 || port > 65535) {
        read.problem(
          `REDIS_CLUSTER_NODES: expected host:port[,host:port…], got ${JSON.stringify(item.trim())}`,
        );
        return { host: '', port: 0 };
      }
      return { host: match[1] as string, port };
    });
    const first = nodes[0] as { host: string; port: number };
    const hostPart = first.host.includes(':') ? `[${first.host}]` : first.host;
    return { url: `redis://${hostPart}:${first.port}`, explicit: true, clusterNodes: nodes };
  }
  const url = env.REDIS_URL?.trim();
  if (url) {
    if (!/^rediss?:\/\/[^\s]+$/.test(url)) {
      read.problem(`REDIS_URL: expected redis://host:port[/db] or rediss://…, got ${JSON.stringify(url)}`);
    }
    return { url, explicit: true };
  }
  const host = read.text('REDIS_HOST', 'localhost');
  const port = read.number('REDIS_PORT', 6379, { min: 1, max: 65535, integer: true });
  const db = read.number('REDIS_DB', 0, { min: 0, max: 15, integer: true });
  const explicit = [env.REDIS_HOST, env.REDIS_PORT, env.REDIS_DB].some((v) => v !== undefined && v !== '');
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return { url: `redis://${hostPart}:${port}/${db}`, explicit };
}

interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
}

class Reader {
  readonly #env: Env;
  readonly #problems: string[];

  constructor(env: Env, problems: string[]) {
    this.#env = env;
    this.#problems = problems;
  }

  problem(message: string): void {
    this.#problems.push(message);
  }

  #raw(name: string): string | undefined {
    const value = this.#env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  text(name: string, fallback: string): string {
    return this.#raw(name) ?? fallback;
  }

  number(name: string, fallback: number, rule: NumberRule): number {
    const raw = this.#raw(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    const expected = describeRule(rule);
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw) || !Number.isFinite(value)) {
      this.problem(`${name}: expected ${expected}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    if (
      (rule.integer && !Number.isInteger(value)) ||
      (rule.min !== undefined && value < rule.min) ||
      (rule.max !== undefined && value > rule.max)
    ) {
      this.problem(`${name}: expected ${expected}, got ${raw}`);
      return fallback;
    }
    return value;
  }

  choice(name: string, fallback: string, allowed: readonly string[]): string {
    const raw = this.#raw(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (!allowed.includes(raw)) {
      this.problem(`${name}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return raw;
  }
}

function describeRule(rule: NumberRule): string {
  const kind = rule.integer ? 'a whole number' : 'a number';
  if (rule.min !== undefined && rule.max !== undefined) return `${kind} from ${rule.min} to ${rule.max}`;
  if (rule.min !== undefined) return `${kind} ≥ ${+rule.min.toFixed(4)}`;
  return kind;
}

/** The URL with any password masked, for logs and messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}
