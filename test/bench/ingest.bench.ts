import { loadConfig, type Reading, STREAM_BASE, systemClock } from '@streamgauge/core';
import { connectRedis, ReadingLog, whenReady } from '@streamgauge/redis';
import { Pool } from 'undici';
import type { CpuTarget } from './lib/cpu.ts';
import { IngestProcess } from './lib/ingestProcess.ts';
import { measureCase } from './lib/measure.ts';
import { BENCH_DISTRICT, ReadingSource } from './lib/readings.ts';
import { expectLogGrowth, lastEntryId } from './lib/streams.ts';
import type { SuiteContext } from './lib/types.ts';
import { BenchFailure } from './lib/types.ts';

export const SUITE = 'ingest';

/**
 * Batch sizes and how many requests are in flight for each: enough to keep
 * the service busy on 2 cores without queueing for nothing. Override with
 * BENCH_HTTP_CONCURRENCY=<for 1>,<for 100>,<for 1000>.
 */
const HTTP_CASES = httpCases(process.env.BENCH_HTTP_CONCURRENCY, [32, 16, 4]);

function httpCases(
  override: string | undefined,
  defaults: readonly number[],
): { batch: number; concurrency: number }[] {
  const values = override?.trim() ? override.split(',').map(Number) : defaults;
  if (values.length !== 3 || !values.every((v) => Number.isInteger(v) && v > 0)) {
    throw new BenchFailure(`BENCH_HTTP_CONCURRENCY: expected three positive whole numbers, got ${override}`);
  }
  return [1, 100, 1000].map((batch, i) => ({ batch, concurrency: values[i] as number }));
}

/** Per-reading XADD baseline: commands per pipeline, pipelines in flight. */
const RAW_PIPELINE = 1000;
const RAW_PIPELINES_IN_FLIGHT = 2;
/** Batch XADD baseline: readings per entry, XADDs in flight. */
const RAW_BATCH = 1000;
const RAW_BATCH_IN_FLIGHT = 4;

const GATEWAY = 'bench';
const RAW_STREAM = 'bench:raw:xadd';
const RAW_BATCH_STREAM = 'bench:raw:xadd-batch';

interface IngestReplyBody {
  accepted?: unknown;
  duplicates?: unknown;
  rejected?: unknown;
}

/**
 * Ingest throughput: the real service (its own process, HTTP, auth,
 * validation, the dedupe script) at batches of 1, 100 and 1000 readings; the
 * same log append without HTTP; and raw pipelined XADD as the ceiling.
 */
export async function ingestBench(context: SuiteContext): Promise<void> {
  const { redis, options } = context;
  const source = new ReadingSource();
  const redisTarget: CpuTarget[] = redis.pid === undefined ? [] : [{ name: 'redis', pid: redis.pid }];
  const self: CpuTarget = { name: 'bench', pid: 'self' };

  // 1. The service over HTTP.
  const ingest = await IngestProcess.start({
    redisUrl: redis.url,
    cpuProfDir: options.cpuProfDir,
    onOutput: (line) => context.log(`[ingest] ${line}`),
  });
  let stopped = false;
  try {
    const token = await ingest.addGateway(GATEWAY, BENCH_DISTRICT);
    const cpuTargets: CpuTarget[] = [{ name: 'ingest', pid: ingest.pid }, ...redisTarget, self];
    for (const { batch, concurrency } of HTTP_CASES) {
      const pool = new Pool(ingest.url, {
        connections: concurrency,
        pipelining: 1,
        keepAliveTimeout: 60_000,
      });
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      let afterId: string | undefined;
      try {
        context.record(
          await measureCase(context, {
            suite: SUITE,
            name: `HTTP POST /v1/readings, batch ${batch}`,
            batch,
            concurrency,
            readingsPerItem: batch,
            requestsPerItem: 1,
            make: () => source.nextBody(batch),
            call: async (body) => {
              const response = await pool.request({ path: '/v1/readings', method: 'POST', headers, body });
              const text = await response.body.text();
              if (response.statusCode !== 200)
                throw new Error(`HTTP ${response.statusCode}: ${text.slice(0, 300)}`);
              const reply = JSON.parse(text) as IngestReplyBody;
              if (
                reply.accepted !== batch ||
                reply.duplicates !== 0 ||
                !Array.isArray(reply.rejected) ||
                reply.rejected.length !== 0
              ) {
                throw new Error(`expected ${batch} accepted, got ${text.slice(0, 300)}`);
              }
            },
            cpuTargets,
            before: async () => {
              afterId = await lastEntryId(redis.client, STREAM_BASE);
            },
            verify: (requests) =>
              expectLogGrowth(
                redis.client,
                STREAM_BASE,
                afterId,
                GATEWAY,
                { requests, readings: requests * batch },
                `HTTP batch ${batch}`,
              ),
          }),
        );
      } finally {
        await pool.close();
      }
    }
  } finally {
    const code = await ingest.stop();
    stopped = code === 0;
    if (!stopped) context.log(`ingest service exited with code ${code} after SIGTERM`);
  }
  if (!stopped) throw new BenchFailure('the ingest service did not stop cleanly on SIGTERM');

  // 2. The same append (validated readings → dedupe script) from this process, without HTTP.
  const config = loadConfig({ REDIS_URL: redis.url, STREAM_SHARDS: '1' });
  const connection = connectRedis(config.redis, { name: 'bench', failFast: true, commandTimeoutMs: 5_000 });
  connection.on('error', () => {});
  const log = new ReadingLog(connection, { ...config.stream, clock: systemClock });
  const appendSource = 'bench-direct';
  try {
    await whenReady(connection, 5_000);
    for (const { batch, concurrency } of HTTP_CASES) {
      let afterId: string | undefined;
      context.record(
        await measureCase<Reading[]>(context, {
          suite: SUITE,
          name: `ReadingLog.append in-process, batch ${batch}`,
          batch,
          concurrency,
          readingsPerItem: batch,
          requestsPerItem: 1,
          make: () => source.nextReadings(batch),
          call: async (readings) => {
            const result = await log.append(readings, appendSource);
            if (result.accepted !== batch || result.duplicates !== 0) {
              throw new Error(`expected ${batch} accepted, got ${JSON.stringify(result)}`);
            }
          },
          cpuTargets: [...redisTarget, self],
          before: async () => {
            afterId = await lastEntryId(redis.client, STREAM_BASE);
          },
          verify: (calls) =>
            expectLogGrowth(
              redis.client,
              STREAM_BASE,
              afterId,
              appendSource,
              { requests: calls, readings: calls * batch },
              `append batch ${batch}`,
            ),
        }),
      );
    }
  } finally {
    connection.disconnect();
  }

  // 3. Raw XADD baselines: no HTTP, no validation, no dedupe.
  const jsons = Array.from({ length: 10_000 }, () => source.nextJson());
  const minId = () => String(Date.now() - config.stream.retentionMs);
  let cursor = 0;
  const client = redis.client;

  context.record(
    await measureCase<number>(context, {
      suite: SUITE,
      name: `raw XADD, 1 reading per entry, pipelines of ${RAW_PIPELINE}`,
      batch: 1,
      concurrency: RAW_PIPELINES_IN_FLIGHT,
      readingsPerItem: RAW_PIPELINE,
      requestsPerItem: RAW_PIPELINE,
      make: () => {
        const first = cursor;
        cursor = (cursor + RAW_PIPELINE) % jsons.length;
        return first;
      },
      call: async (first) => {
        const pipeline = client.pipeline();
        const trim = minId();
        for (let i = 0; i < RAW_PIPELINE; i++) {
          const json = jsons[(first + i) % jsons.length] as string;
          pipeline.xadd(
            RAW_STREAM,
            'MINID',
            '~',
            trim,
            '*',
            'n',
            '1',
            'src',
            GATEWAY,
            'readings',
            `[${json}]`,
          );
        }
        const replies = await pipeline.exec();
        const failed = replies?.find(([error]) => error !== null);
        if (replies === null || replies.length !== RAW_PIPELINE || failed !== undefined) {
          throw new Error(`pipeline failed: ${failed?.[0]?.message ?? 'no replies'}`);
        }
      },
      cpuTargets: [...redisTarget, self],
      verify: async (pipelines) => {
        const length = await client.xlen(RAW_STREAM);
        if (length !== pipelines * RAW_PIPELINE) {
          throw new BenchFailure(
            `raw XADD: stream holds ${length} entries, expected ${pipelines * RAW_PIPELINE}`,
          );
        }
        await client.unlink(RAW_STREAM);
      },
    }),
  );

  const payloads = Array.from({ length: 10 }, (_, k) => {
    const parts: string[] = [];
    for (let i = 0; i < RAW_BATCH; i++) parts.push(jsons[(k * RAW_BATCH + i) % jsons.length] as string);
    return `[${parts.join(',')}]`;
  });
  let next = 0;
  context.record(
    await measureCase<string>(context, {
      suite: SUITE,
      name: `raw XADD, ${RAW_BATCH} readings per entry`,
      batch: RAW_BATCH,
      concurrency: RAW_BATCH_IN_FLIGHT,
      readingsPerItem: RAW_BATCH,
      requestsPerItem: 1,
      make: () => payloads[next++ % payloads.length] as string,
      call: async (payload) => {
        const id = await client.xadd(
          RAW_BATCH_STREAM,
          'MINID',
          '~',
          minId(),
          '*',
          'n',
          String(RAW_BATCH),
          'src',
          GATEWAY,
          'readings',
          payload,
        );
        if (id === null) throw new Error('XADD returned no id');
      },
      cpuTargets: [...redisTarget, self],
      verify: async (entries) => {
        const found = await client.xlen(RAW_BATCH_STREAM);
        if (found !== entries)
          throw new BenchFailure(`raw batch XADD: ${found} entries, expected ${entries}`);
        await client.unlink(RAW_BATCH_STREAM);
      },
    }),
  );
}
