export type { AggregatorOptions, BatchOutcome } from './aggregator.ts';
export { Aggregator } from './aggregator.ts';
export type { AggregatorRuntime, RunningAggregator } from './main.ts';
export { startAggregator } from './main.ts';
export type { Job, Processed, RunningPipeline } from './pipeline.ts';
export { runPipeline } from './pipeline.ts';
export { paneBoundaries } from './ticks.ts';
