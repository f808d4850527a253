import { aggregatorBench } from './aggregator.bench.ts';
import { anomalyBench } from './anomaly.bench.ts';
import { dashboardBench } from './dashboard.bench.ts';
import { ingestBench } from './ingest.bench.ts';
import type { Suite } from './lib/types.ts';
import { scaleBench } from './scale.bench.ts';
import { scalingBench } from './scaling.bench.ts';
import { warehouseBench } from './warehouse.bench.ts';

/** Every benchmark suite, in the order `pnpm bench` runs them. Add new suites here. */
export const SUITES: readonly Suite[] = [
  {
    name: 'ingest',
    description: 'HTTP ingest at batches of 1, 100, 1000 readings; ReadingLog.append; raw XADD baselines',
    run: ingestBench,
  },
  {
    name: 'aggregator',
    description:
      'end to end (HTTP → keys) with 1k and 10k nodes; freshness at 20k readings/s; overview read; aggregator alone',
    run: aggregatorBench,
  },
  {
    name: 'anomaly',
    description:
      'the anomaly detectors without Redis: µs per reading of the calibrated score and of a node, state bytes',
    run: anomalyBench,
  },
  {
    name: 'scaling',
    description:
      'aggregator throughput with 1, 2 and 4 shards and replicas; Redis bytes per node for 30 days of 1/min',
    run: scalingBench,
  },
  {
    name: 'warehouse',
    description:
      'the archiver: 200k readings from the stream into DuckDB; the backfill: 30 days × 1000 nodes × 1/min',
    run: warehouseBench,
  },
  {
    name: 'dashboard',
    description:
      'the read API at 1k and 10k nodes: 100 clients polling overview and nodes; 500 SSE clients; page load in Chromium; page size',
    run: dashboardBench,
  },
  {
    name: 'scale',
    description:
      'issue 16 scale: drain 100k nodes × 10; bytes per node at 30 days; e2e 10k nodes vs raw XADD; freshness at 50k/s; catch-up (BENCH_SCALE_CASES)',
    run: scaleBench,
  },
];
