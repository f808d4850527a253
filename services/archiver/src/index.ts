export type { ArchiveOutcome, ArchiverOptions } from './archiver.ts';
export { Archiver } from './archiver.ts';
export type { ArchiverRuntime, RunningArchiver } from './main.ts';
export { startArchiver } from './main.ts';
