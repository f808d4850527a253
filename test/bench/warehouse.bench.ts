import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArchiver } from '@streamgauge/archiver';
import { GROUPS, loadConfig, systemClock } from '@streamgauge/core';
import { ReadingLog } from '@streamgauge/redis';
import { waitForDrain } from '@streamgauge/testkit';
import { pino } from 'pino';
import { CpuMeter, type CpuTarget } from './lib/cpu.ts';
import { fillLog } from './lib/streams.ts';
import type { SuiteContext } from './lib/types.ts';

export const SUITE = 'warehouse';

/**
 * The archiver: 200,000 readings of 1000 nodes wait in the stream (entries
 * of 1000 readings, as ingest writes them); the clock runs from the
 * archiver's start until group `archiver` has acknowledged them all, i.e.
 * until they are committed in a fresh DuckDB file.
 */
export async function warehouseBench(context: SuiteContext): Promise<void> {
  await context.redis.flush();
  const total = 200_000;
  const nodes = 1_000;
  const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-bench-warehouse-'));
  try {
    const log = new ReadingLog(context.redis.client, {
      shards: 1,
      retentionMs: 48 * 3_600_000,
      dedupeHorizonMs: 48 * 3_600_000,
      clock: systemClock,
    });
    context.log(`archiver: ${total} readings of ${nodes} nodes into DuckDB`);
    await fillLog(log, { total, nodes, now: Date.now() });
    const targets: CpuTarget[] = [{ name: 'bench', pid: 'self' }];
    if (context.redis.pid !== undefined) targets.push({ name: 'redis', pid: context.redis.pid });
    const cpu = new CpuMeter(targets);
    cpu.start();
    const started = performance.now();
    const archiver = await startArchiver(
      loadConfig({ REDIS_URL: context.redis.url, DATA_DIR: dataDir }),
      pino({ level: 'silent' }),
    );
    try {
      await waitForDrain(context.redis.client, ['readings'], GROUPS.archiver, 600_000);
    } finally {
      await archiver.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    context.record({
      suite: SUITE,
      case: 'archiver: stream → DuckDB (staged insert), 1000 nodes',
      batch: 1000,
      seconds,
      readings: total,
      requests: total / 1000,
      readingsPerSec: Math.round(total / seconds),
      requestsPerSec: total / 1000 / seconds,
      cpu: cpu.stop(),
      notes: ['in-process archiver (its CPU shows as bench); includes opening the DuckDB file'],
    });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
