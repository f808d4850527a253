export type { RunningBackfill } from './main.ts';
export { startBackfill } from './main.ts';
export type { ReconcileProgress, ReconcileReport, ReconcilerOptions } from './reconciler.ts';
export { Reconciler } from './reconciler.ts';
export { BackfillBusyError, BackfillScheduler } from './scheduler.ts';
