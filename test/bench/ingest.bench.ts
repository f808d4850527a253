import { loadConfig, type Reading, shardKeys, systemClock } from '@streamgauge/core';
import { connectRedis, ReadingLog, whenReady } from '@streamgauge/redis';
import { Pool } from 'undici';
import type { CpuTarget } from './lib/cpu.ts';
import { IngestProcess } from './lib/ingestProcess.ts';
import { measureCase } from './lib/measure.ts';
import { expectAdded, RAW_STREAM, rawXaddPipelineCase } from './lib/rawXadd.ts';
import { BENCH_DISTRICT, ReadingSource } from './lib/readings.ts';
import { countLogEntries, expectLogGrowth, resetLog } from './lib/streams.ts';
import type { SuiteContext } from './lib/types.ts';
import { BenchFailure } from './lib/types.ts';

export const SUITE = 'ingest';

/**
 * Batch sizes and how many requests are in flight for each: enough to keep
 * the service busy on 2 cores without queueing for nothing. Override with
 * BENCH_INGEST_CASES=<batch>:<in flight>,... (e.g. `10000:32` for a stress run).
 */
const DEFAULT_CASES = '1:32,100:16,1000:4';

/** Batch XADD baseline: readings per entry, XADDs in flight. */
const RAW_BATCH = 1000;
const RAW_BATCH_IN_FLIGHT = 4;
/**
 * The raw streams are capped (MAXLEN ~) so Redis memory stays bounded: each
 * batch XADD adds ~125 KB, gigabytes within a window, and the cost of
 * faulting in fresh memory would then be measured instead of XADD.
 */
const RAW_BATCH_MAXLEN = '1000';

/** ioredis sends EVALSHA, and EVAL once per connection to load the script. */
const SCRIPT_COMMANDS = ['evalsha', 'eval'];

const GATEWAY = 'bench';
const DIRECT_SOURCE = 'bench-direct';
const LOG_STREAM = shardKeys(0, 1).stream;
const RAW_BATCH_STREAM = 'bench:raw:xadd-batch';

interface IngestReplyBody {
  accepted?: unknown;
  duplicates?: unknown;
  rejected?: unknown;
}

/**
 * Ingest throughput: the real service (its own process: HTTP, auth,
 * validation, the dedupe script) at batches of 1, 100 and 1000 readings; the
 * same log append without HTTP; and raw pipelined XADD as the ceiling.
 */
export async function ingestBench(context: SuiteContext): Promise<void> {
  const shapes = loadShapes(process.env.BENCH_INGEST_CASES);
  const source = new ReadingSource();
  await httpCasesOf(context, source, shapes);
  await directCases(context, source, shapes);
  await rawCases(context, source);
}

function cpuTargets(context: SuiteContext, ingestPid?: number): CpuTarget[] {
  const targets: CpuTarget[] = [];
  if (ingestPid !== undefined) targets.push({ name: 'ingest', pid: ingestPid });
  if (context.redis.pid !== undefined) targets.push({ name: 'redis', pid: context.redis.pid });
  targets.push({ name: 'bench', pid: 'self' });
  return targets;
}

/** 1. The service over HTTP, in its own process, with a gateway token. */
async function httpCasesOf(
  context: SuiteContext,
  source: ReadingSource,
  shapes: readonly LoadShape[],
): Promise<void> {
  const { redis, options } = context;
  const ingest = await IngestProcess.start({
    redisUrl: redis.url,
    cpuProfDir: options.cpuProfDir,
    onOutput: (line) => context.log(`[ingest] ${line}`),
  });
  let exitCode: number | null = null;
  try {
    const token = await ingest.addGateway(GATEWAY, BENCH_DISTRICT);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    for (const { batch, concurrency } of shapes) {
      const pool = new Pool(ingest.url, {
        connections: concurrency,
        pipelining: 1,
        keepAliveTimeout: 60_000,
      });
      try {
        context.record(
          await measureCase<Buffer>(context, {
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
              if (response.statusCode !== 200) {
                throw new Error(`HTTP ${response.statusCode}: ${text.slice(0, 300)}`);
              }
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
            cpuTargets: cpuTargets(context, ingest.pid),
            redisCommands: SCRIPT_COMMANDS,
            before: () => resetLog(redis.client, LOG_STREAM),
            verify: (requests) =>
              expectLogGrowth(
                redis.client,
                LOG_STREAM,
                undefined,
                GATEWAY,
                { requests, readings: requests * batch },
                `HTTP batch ${batch}`,
              ),
            explainFailure: async ({ succeeded, failed }) => {
              // Scripts whose request timed out may still be queued in Redis: let them finish.
              await new Promise((resolve) => setTimeout(resolve, 2_000));
              const found = await countLogEntries(redis.client, LOG_STREAM, undefined, GATEWAY);
              return (
                `the log holds ${found.entries} entries for ${succeeded} requests answered 200 ` +
                `and ${failed} not (so ${found.entries - succeeded} of those were stored anyway)`
              );
            },
          }),
        );
      } finally {
        await pool.close();
      }
    }
  } finally {
    exitCode = await ingest.stop();
  }
  if (exitCode !== 0) throw new BenchFailure(`the ingest service exited with ${exitCode} on SIGTERM, not 0`);
}

/** 2. The same append (validated readings → dedupe script) from this process: no HTTP, no parsing. */
async function directCases(
  context: SuiteContext,
  source: ReadingSource,
  shapes: readonly LoadShape[],
): Promise<void> {
  const { redis } = context;
  const config = loadConfig({ REDIS_URL: redis.url, STREAM_SHARDS: '1' });
  // The service's connection settings, with a longer timeout: this process also generates the load.
  const connection = connectRedis(config.redis, { name: 'bench', failFast: true, commandTimeoutMs: 5_000 });
  connection.on('error', () => {});
  try {
    await whenReady(connection, 5_000);
    const log = new ReadingLog(connection, { ...config.stream, clock: systemClock });
    for (const { batch, concurrency } of shapes) {
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
            const result = await log.append(readings, DIRECT_SOURCE);
            if (result.accepted !== batch || result.duplicates !== 0) {
              throw new Error(`expected ${batch} accepted, got ${JSON.stringify(result)}`);
            }
          },
          cpuTargets: cpuTargets(context),
          redisCommands: SCRIPT_COMMANDS,
          before: () => resetLog(redis.client, LOG_STREAM),
          verify: (calls) =>
            expectLogGrowth(
              redis.client,
              LOG_STREAM,
              undefined,
              DIRECT_SOURCE,
              { requests: calls, readings: calls * batch },
              `append batch ${batch}`,
            ),
        }),
      );
    }
  } finally {
    connection.disconnect();
  }
}

/** 3. Raw XADD baselines from this process: no HTTP, no validation, no dedupe. */
async function rawCases(context: SuiteContext, source: ReadingSource): Promise<void> {
  const client = context.redis.client;
  await resetLog(client, LOG_STREAM);
  // Raw XADD does not deduplicate: a pool of readings' JSON is reused.
  const jsons = Array.from({ length: 10_000 }, () => source.nextJson());
  context.record(await rawXaddPipelineCase(context, SUITE, jsons, cpuTargets(context)));

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
      maxItems: 10_000_000,
      make: () => payloads[next++ % payloads.length] as string,
      call: async (payload) => {
        const id = await client.xadd(
          RAW_BATCH_STREAM,
          'MAXLEN',
          '~',
          RAW_BATCH_MAXLEN,
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
      cpuTargets: cpuTargets(context),
      redisCommands: ['xadd'],
      before: async () => {
        await client.del(RAW_STREAM, RAW_BATCH_STREAM);
      },
      verify: (entries) => expectAdded(client, RAW_BATCH_STREAM, entries),
    }),
  );
  await client.del(RAW_BATCH_STREAM);
}

interface LoadShape {
  readonly batch: number;
  readonly concurrency: number;
}

function loadShapes(spec: string | undefined): LoadShape[] {
  const text = spec?.trim() || DEFAULT_CASES;
  const shapes = text.split(',').map((part) => {
    const [batch, concurrency] = part.split(':').map(Number);
    return { batch: batch ?? Number.NaN, concurrency: concurrency ?? Number.NaN };
  });
  const valid = (n: number) => Number.isInteger(n) && n > 0;
  if (!shapes.every((s) => valid(s.batch) && valid(s.concurrency))) {
    throw new BenchFailure(
      `BENCH_INGEST_CASES: expected <batch>:<in flight>,..., got ${JSON.stringify(text)}`,
    );
  }
  return shapes;
}
