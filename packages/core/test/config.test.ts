import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactUrl } from '../src/index.ts';

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
    expect(config.stream).toEqual({ shards: 1, retentionMs: 48 * 3600_000, dedupeHorizonMs: 48 * 3600_000 });
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

  it('reads the scale-out settings and rejects nonsense', () => {
    const config = loadConfig({
      STREAM_SHARDS: '8',
      AGGREGATOR_LEASE_MS: '2000',
      AGGREGATOR_CLAIM_IDLE_MS: '5000',
      AGGREGATOR_MAX_DELIVERIES: '3',
    });
    expect(config.stream.shards).toBe(8);
    expect(config.aggregator).toMatchObject({ leaseMs: 2000, claimIdleMs: 5000, maxDeliveries: 3 });
    expect(() => loadConfig({ AGGREGATOR_MAX_DELIVERIES: '0' })).toThrow(
      'AGGREGATOR_MAX_DELIVERIES: expected a whole number from 1 to 1000, got 0',
    );
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
