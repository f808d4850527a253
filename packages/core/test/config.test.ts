import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, metricsPort, redactUrl } from '../src/index.ts';

describe('loadConfig', () => {
  it('has the defaults the old system had', () => {
    const config = loadConfig({});
    expect(config.redis).toEqual({ url: 'redis://localhost:6379/0', explicit: false });
    expect(config.cacheTtlSeconds).toBe(24 * 3600);
    expect(config.cacheRefreshMs).toBe(6 * 3600_000);
    expect(config.ingest).toMatchObject({
      port: 8080,
      maxBatchReadings: 10_000,
      maxBodyBytes: 5 * 1024 * 1024,
      maxFutureMs: 300_000,
      auth: true,
    });
    expect(config.stream).toEqual({
      shards: 1,
      retentionMs: 48 * 3600_000,
      dedupeHorizonMs: 48 * 3600_000,
      maxBytes: 4096 * 1_048_576,
      catchupAfterMs: 5 * 60_000,
    });
    expect(loadConfig({ STREAM_MAX_MB: '0' }).stream.maxBytes).toBe(0);
    expect(loadConfig({ CATCHUP_AFTER_MINUTES: '0' }).stream.catchupAfterMs).toBe(0);
    expect(() => loadConfig({ CATCHUP_AFTER_MINUTES: '-1' })).toThrow(/CATCHUP_AFTER_MINUTES/);
    expect(() => loadConfig({ STREAM_MAX_MB: '-1' })).toThrow(/STREAM_MAX_MB/);
  });

  it('builds the Redis URL from REDIS_HOST, REDIS_PORT and REDIS_DB; REDIS_URL wins', () => {
    expect(loadConfig({ REDIS_HOST: 'cache', REDIS_PORT: '6380', REDIS_DB: '2' }).redis).toEqual({
      url: 'redis://cache:6380/2',
      explicit: true,
    });
    expect(loadConfig({ REDIS_URL: 'redis://u:p@x:1/3', REDIS_HOST: 'cache' }).redis.url).toBe(
      'redis://u:p@x:1/3',
    );
    expect(loadConfig({ REDIS_HOST: '::1' }).redis.url).toBe('redis://[::1]:6379/0');
  });

  it('reports every bad value at once, naming variable, value and expectation', () => {
    let error: unknown;
    try {
      loadConfig({
        REDIS_PORT: '70000',
        REDIS_DB: 'one',
        CACHE_TTL_HOURS: '-1',
        INGEST_AUTH: 'maybe',
        STREAM_SHARDS: '1.5',
        REDIS_URL: '',
        LOG_LEVEL: 'loud',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'REDIS_PORT: expected a whole number from 1 to 65535, got 70000',
      'REDIS_DB: expected a whole number from 0 to 15, got "one"',
      'CACHE_TTL_HOURS: expected a number ≥ 2, got -1',
      'INGEST_AUTH: expected one of on, off, got "maybe"',
      'STREAM_SHARDS: expected a whole number from 1 to 1024, got 1.5',
      'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ]);
  });

  it('reads the seed nodes of a Redis Cluster, and names a malformed one', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-b:7001,[::1]:7002' });
    expect(config.redis.clusterNodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,redis-b' })).toThrow(
      'REDIS_CLUSTER_NODES: expected host:port[,host:port…], got "redis-b"',
    );
  });

  it('reads the dashboard settings: a real time zone, stale before offline', () => {
    const config = loadConfig({ DASHBOARD_TIME_ZONE: 'Europe/Rome', DASHBOARD_PORT: '9000' });
    expect(config.dashboard).toEqual({
      host: undefined,
      port: 9000,
      timeZone: 'Europe/Rome',
      staleAfterMs: 900_000,
      offlineAfterMs: 3_600_000,
    });
    expect(loadConfig({}).dashboard.timeZone).toBe('UTC');
    expect(() => loadConfig({ DASHBOARD_TIME_ZONE: 'Mars/Olympus' })).toThrow(
      /DASHBOARD_TIME_ZONE: "Mars\/Olympus" is not an IANA time zone/,
    );
    expect(() => loadConfig({ DASHBOARD_STALE_SECONDS: '600', DASHBOARD_OFFLINE_SECONDS: '60' })).toThrow(
      /DASHBOARD_OFFLINE_SECONDS: must be at least DASHBOARD_STALE_SECONDS/,
    );
  });

  it('reads the scale-out settings and rejects nonsense', () => {
    const config = loadConfig({
      STREAM_SHARDS: '8',
      AGGREGATOR_LEASE_MS: '2000',
      AGGREGATOR_CLAIM_IDLE_MS: '5000',
      AGGREGATOR_MAX_DELIVERIES: '3',
      AGGREGATOR_SLICE_READINGS: '2500',
    });
    expect(config.stream.shards).toBe(8);
    expect(config.aggregator).toMatchObject({
      leaseMs: 2000,
      claimIdleMs: 5000,
      maxDeliveries: 3,
      sliceReadings: 2500,
    });
    expect(loadConfig({}).aggregator.sliceReadings).toBe(50_000);
    expect(loadConfig({}).aggregator.catchupReadings).toBe(50_000);
    expect(loadConfig({ AGGREGATOR_CATCHUP_READINGS: '500' }).aggregator.catchupReadings).toBe(500);
    expect(() => loadConfig({ AGGREGATOR_CATCHUP_READINGS: '0' })).toThrow(/AGGREGATOR_CATCHUP_READINGS/);
    expect(() => loadConfig({ AGGREGATOR_SLICE_READINGS: '0' })).toThrow(/AGGREGATOR_SLICE_READINGS/);
    expect(() => loadConfig({ AGGREGATOR_MAX_DELIVERIES: '0' })).toThrow(
      'AGGREGATOR_MAX_DELIVERIES: expected a whole number from 1 to 1000, got 0',
    );
    expect(loadConfig({}).archiver.lingerMs).toBe(500);
    expect(loadConfig({ ARCHIVER_LINGER_MS: '0' }).archiver.lingerMs).toBe(0);
    expect(() => loadConfig({ ARCHIVER_LINGER_MS: '-1' })).toThrow(/ARCHIVER_LINGER_MS/);
  });

  it('uses BigQuery only when BIGQUERY_PROJECT is set; reads the backfill settings', () => {
    const plain = loadConfig({});
    expect(plain.bigquery).toBeUndefined();
    expect(plain.backfill).toEqual({ concurrency: 4, applyTimeoutMs: 300_000 });
    const bq = loadConfig({
      BIGQUERY_PROJECT: 'water-prod',
      BIGQUERY_LOCATION: 'EU',
      BACKFILL_CONCURRENCY: '8',
      BACKFILL_APPLY_TIMEOUT_SECONDS: '30',
    });
    expect(bq.bigquery).toEqual({
      project: 'water-prod',
      dataset: 'streamgauge',
      table: 'readings',
      location: 'EU',
    });
    expect(bq.backfill).toEqual({ concurrency: 8, applyTimeoutMs: 30_000 });
    expect(() => loadConfig({ BACKFILL_CONCURRENCY: '0' })).toThrow(/BACKFILL_CONCURRENCY/);
  });

  it('serves /metrics on a port of its own per service unless METRICS_PORT says otherwise', () => {
    const plain = loadConfig({});
    expect(plain.metrics).toEqual({ host: '0.0.0.0', port: undefined, enabled: true });
    expect(
      (['aggregator', 'archiver', 'backfill'] as const).map((service) => metricsPort(plain, service)),
    ).toEqual([9464, 9465, 9466]);
    const fixed = loadConfig({ METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' });
    expect(fixed.metrics).toEqual({ host: '127.0.0.1', port: 0, enabled: true });
    expect(metricsPort(fixed, 'archiver')).toBe(0);
    const off = loadConfig({ METRICS_PORT: 'OFF' });
    expect(metricsPort(off, 'aggregator')).toBeUndefined();
    expect(() => loadConfig({ METRICS_PORT: '70000' })).toThrow(
      'METRICS_PORT: expected a whole number from 0 to 65535, got 70000',
    );
  });

  it('pulls from Pub/Sub only when PUBSUB_SUBSCRIPTION is set, with bounded flow control', () => {
    expect(loadConfig({}).ingest.pubsub).toBeUndefined();
    // Without a subscription the other PUBSUB_* settings are not read.
    expect(loadConfig({ PUBSUB_MAX_MESSAGES: '0' }).ingest.pubsub).toBeUndefined();
    expect(
      loadConfig({ PUBSUB_SUBSCRIPTION: 'ingest-readings', PUBSUB_DEAD_LETTER_TOPIC: 'readings-dead' }).ingest
        .pubsub,
    ).toEqual({
      subscription: 'ingest-readings',
      deadLetterTopic: 'readings-dead',
      maxMessages: 1000,
      maxBytes: 100 * 1024 * 1024,
      maxStreams: 5,
    });
    expect(
      loadConfig({
        PUBSUB_SUBSCRIPTION: 'projects/water-prod/subscriptions/ingest',
        PUBSUB_DEAD_LETTER_TOPIC: 'projects/water-prod/topics/readings-dead',
        PUBSUB_MAX_MESSAGES: '200',
        PUBSUB_MAX_BYTES: '10485760',
        PUBSUB_MAX_STREAMS: '2',
      }).ingest.pubsub,
    ).toEqual({
      subscription: 'projects/water-prod/subscriptions/ingest',
      deadLetterTopic: 'projects/water-prod/topics/readings-dead',
      maxMessages: 200,
      maxBytes: 10_485_760,
      maxStreams: 2,
    });
  });

  it('leaves the log level to the command unless LOG_LEVEL is set, and refuses an unknown LOG_FORMAT', () => {
    expect(loadConfig({})).toMatchObject({ logLevel: undefined, logFormat: 'auto' });
    expect(loadConfig({ LOG_LEVEL: 'debug', LOG_FORMAT: 'JSON' })).toMatchObject({
      logLevel: 'debug',
      logFormat: 'json',
    });
    expect(() => loadConfig({ LOG_FORMAT: 'xml' })).toThrow(
      'LOG_FORMAT: expected one of auto, json, pretty, got "xml"',
    );
  });

  it('gives every Pub/Sub client the emulator and project the environment names', () => {
    expect(loadConfig({}).pubsubClient).toEqual({});
    expect(
      loadConfig({ PUBSUB_EMULATOR_HOST: ' 127.0.0.1:8085 ', GOOGLE_CLOUD_PROJECT: 'utility' }).pubsubClient,
    ).toEqual({ emulatorHost: '127.0.0.1:8085', projectId: 'utility' });
    // PUBSUB_PROJECT_ID wins over the general Google variable.
    expect(
      loadConfig({ PUBSUB_PROJECT_ID: 'water', GOOGLE_CLOUD_PROJECT: 'utility' }).pubsubClient.projectId,
    ).toBe('water');
  });

  it('names every bad PUBSUB_* value, and requires a dead-letter topic with a subscription', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (error) {
        return (error as ConfigError).problems;
      }
      return [];
    };
    expect(problems({ PUBSUB_SUBSCRIPTION: 'ingest' })).toEqual([
      'PUBSUB_DEAD_LETTER_TOPIC: required when PUBSUB_SUBSCRIPTION is set (messages with rejected readings are published there with the reasons)',
    ]);
    expect(
      problems({
        PUBSUB_SUBSCRIPTION: '1ngest',
        PUBSUB_DEAD_LETTER_TOPIC: 'projects/water-prod/subscriptions/dead',
        PUBSUB_MAX_MESSAGES: '0',
        PUBSUB_MAX_BYTES: '1000',
        PUBSUB_MAX_STREAMS: 'many',
      }),
    ).toEqual([
      'PUBSUB_SUBSCRIPTION: expected a subscription id (3 to 255 letters, digits or . _ ~ + % -, starting with a letter) or projects/<project>/subscriptions/<id>, got "1ngest"',
      'PUBSUB_DEAD_LETTER_TOPIC: expected a topic id (3 to 255 letters, digits or . _ ~ + % -, starting with a letter) or projects/<project>/topics/<id>, got "projects/water-prod/subscriptions/dead"',
      'PUBSUB_MAX_MESSAGES: expected a whole number from 1 to 100000, got 0',
      'PUBSUB_MAX_BYTES: expected a whole number from 1048576 to 4294967296, got 1000',
      'PUBSUB_MAX_STREAMS: expected a whole number from 1 to 32, got "many"',
    ]);
  });

  it('reads when an anomaly opens: confirmation, the unlikely probability, the alarm score', () => {
    const { settings } = loadConfig({
      ANOMALY_CONFIRM_READINGS: '3',
      ANOMALY_UNLIKELY_PROBABILITY: '0.001',
      ANOMALY_ALARM_SCORE: '0.9',
    }).anomalies;
    expect(settings).toMatchObject({ confirmReadings: 3, unlikelyProbability: 0.001, alarmScore: 0.9 });
    expect(loadConfig({}).anomalies.settings).toMatchObject({
      confirmReadings: 2,
      unlikelyProbability: 0.01,
    });
    expect(() => loadConfig({ ANOMALY_CONFIRM_READINGS: '0' })).toThrow(/ANOMALY_CONFIRM_READINGS/);
    expect(() => loadConfig({ ANOMALY_UNLIKELY_PROBABILITY: '2' })).toThrow(/ANOMALY_UNLIKELY_PROBABILITY/);
    expect(() => loadConfig({ ANOMALY_ALARM_SCORE: 'high' })).toThrow(/ANOMALY_ALARM_SCORE/);
  });

  it('reads how often a node’s learning may be checkpointed', () => {
    expect(loadConfig({}).anomalies.settings.checkpointMs).toBe(60_000);
    expect(loadConfig({ ANOMALY_CHECKPOINT_SECONDS: '5' }).anomalies.settings.checkpointMs).toBe(5_000);
    expect(loadConfig({ ANOMALY_CHECKPOINT_SECONDS: '0' }).anomalies.settings.checkpointMs).toBe(0);
    expect(() => loadConfig({ ANOMALY_CHECKPOINT_SECONDS: '-1' })).toThrow(/ANOMALY_CHECKPOINT_SECONDS/);
    expect(() => loadConfig({ ANOMALY_CHECKPOINT_SECONDS: 'often' })).toThrow(/ANOMALY_CHECKPOINT_SECONDS/);
  });

  it("reads ingest's limits and deadlines, names bad ones, and never trusts every proxy", () => {
    const defaults = loadConfig({}).ingest;
    expect({
      requestTimeoutMs: defaults.requestTimeoutMs,
      headersTimeoutMs: defaults.headersTimeoutMs,
      keepAliveMs: defaults.keepAliveMs,
      maxConnections: defaults.maxConnections,
      limits: defaults.limits,
      authFailuresPerMinute: defaults.authFailuresPerMinute,
      newNodesPerHour: defaults.newNodesPerHour,
      trustProxy: defaults.trustProxy,
    }).toEqual({
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
      keepAliveMs: 72_000,
      maxConnections: 4096,
      limits: { readingsPerSecond: 20_000, requestsPerSecond: 100 },
      authFailuresPerMinute: 30,
      newNodesPerHour: 100,
      trustProxy: false,
    });
    const trust = (value: string) => loadConfig({ INGEST_TRUST_PROXY: value }).ingest.trustProxy;
    expect([trust('off'), trust('on'), trust('2'), trust('10.0.0.0/8,192.168.1.5')]).toEqual([
      false,
      1,
      2,
      '10.0.0.0/8,192.168.1.5',
    ]);
    expect(() =>
      loadConfig({
        INGEST_RATE_READINGS: '-1',
        INGEST_NEW_NODES_PER_HOUR: '1.5',
        INGEST_MAX_CONNECTIONS: '0',
      }),
    ).toThrow(
      expect.objectContaining({
        problems: [
          'INGEST_MAX_CONNECTIONS: expected a whole number from 1 to 1000000, got 0',
          'INGEST_RATE_READINGS: expected a number ≥ 0, got -1',
          'INGEST_NEW_NODES_PER_HOUR: expected a whole number ≥ 0, got 1.5',
        ],
      }),
    );
  });

  it('rejects a REDIS_URL that is not a redis URL', () => {
    expect(() => loadConfig({ REDIS_URL: 'localhost:6379' })).toThrow(/REDIS_URL: expected redis:\/\//);
  });

  it('accepts fractional hours and switching authentication off explicitly', () => {
    const config = loadConfig({ CACHE_TTL_HOURS: '2.5', INGEST_AUTH: 'OFF' });
    expect(config.cacheTtlSeconds).toBe(9000);
    // Shorter than the hourly rewrite of slow-changing keys: they could expire.
    expect(() => loadConfig({ CACHE_TTL_HOURS: '1' })).toThrow(
      'CACHE_TTL_HOURS: expected a number ≥ 2, got 1',
    );
    expect(config.ingest.auth).toBe(false);
  });
});

describe('redactUrl', () => {
  it('masks the password and keeps the rest', () => {
    expect(redactUrl('redis://user:s3cret@cache:6379/0')).toBe('redis://user:***@cache:6379/0');
    expect(redactUrl('redis://cache:6379/0')).toBe('redis://cache:6379/0');
  });
});
