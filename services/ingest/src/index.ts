export type { IngestDependencies, IngestReply, Rejection } from './app.ts';
export { buildIngestApp } from './app.ts';
export { Authenticator } from './authenticator.ts';
export { Gatekeeper } from './gatekeeper.ts';
export type { RunningIngest } from './main.ts';
export { startIngest } from './main.ts';
export type { PubSubSourceStats } from './pubsubSource.ts';
export { PubSubSource } from './pubsubSource.ts';
