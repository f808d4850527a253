import type { Redis } from 'ioredis';
import type { CpuTarget } from './cpu.ts';
import { measureCase } from './measure.ts';
import { entriesAdded } from './streams.ts';
import type { CaseResult, SuiteContext } from './types.ts';
import { BenchFailure } from './types.ts';

/** Per-reading XADD baseline: commands per pipeline, pipelines in flight. */
export const RAW_PIPELINE = 1000;
export const RAW_PIPELINES_IN_FLIGHT = 2;
/**
 * The raw stream is capped (MAXLEN ~) so Redis memory stays bounded, and the
 * cost of faulting in fresh memory is not measured instead of XADD.
 */
const RAW_MAXLEN = '100000';
export const RAW_STREAM = 'bench:raw:xadd';

/**
 * The ceiling for "one stream entry per reading": `XADD bench:raw:xadd MAXLEN ~
 * 100000 * n 1 src bench readings [<one reading>]` from this process, in
 * pipelines of 1000 commands, 2 pipelines in flight. No HTTP, no validation,
 * no dedupe. `jsons` is a pool of readings' JSON, reused (raw XADD does not
 * deduplicate). Used by the ingest suite and, as the baseline of the same
 * run, by the scale suite.
 */
export function rawXaddPipelineCase(
  context: SuiteContext,
  suite: string,
  jsons: readonly string[],
  cpuTargets: readonly CpuTarget[],
): Promise<CaseResult> {
  const client = context.redis.client;
  let cursor = 0;
  return measureCase<number>(context, {
    suite,
    name: `raw XADD, 1 reading per entry, pipelines of ${RAW_PIPELINE}`,
    batch: 1,
    concurrency: RAW_PIPELINES_IN_FLIGHT,
    readingsPerItem: RAW_PIPELINE,
    requestsPerItem: RAW_PIPELINE,
    maxItems: 1_000_000,
    make: () => {
      const first = cursor;
      cursor = (cursor + RAW_PIPELINE) % jsons.length;
      return first;
    },
    call: async (first) => {
      const pipeline = client.pipeline();
      for (let i = 0; i < RAW_PIPELINE; i++) {
        const json = jsons[(first + i) % jsons.length] as string;
        pipeline.xadd(
          RAW_STREAM,
          'MAXLEN',
          '~',
          RAW_MAXLEN,
          '*',
          'n',
          '1',
          'src',
          'bench',
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
    cpuTargets,
    redisCommands: ['xadd'],
    before: async () => {
      await client.del(RAW_STREAM);
    },
    verify: (pipelines) => expectAdded(client, RAW_STREAM, pipelines * RAW_PIPELINE),
  });
}

/** Fails unless XINFO STREAM `entries-added` is `expected` (skipped before Redis 7.0). */
export async function expectAdded(client: Redis, stream: string, expected: number): Promise<void> {
  const added = await entriesAdded(client, stream);
  // Before Redis 7.0 there is no entries-added; every reply was checked already.
  if (added !== undefined && added !== expected) {
    throw new BenchFailure(`${stream}: ${added} entries were added, expected ${expected}`);
  }
}
