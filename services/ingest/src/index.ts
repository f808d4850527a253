export type { IngestDependencies, IngestReply, Rejection } from './app.ts';
export { buildIngestApp } from './app.ts';
export { Authenticator } from './authenticator.ts';
export type { Item } from './body.ts';
export { BodyError, jsonItems, ndjsonItems } from './body.ts';
export type { RunningIngest } from './main.ts';
export { startIngest } from './main.ts';
export type { BatchRules, CheckedBatch } from './validate.ts';
export { BatchError, checkBatch } from './validate.ts';
