export type { LoadedNode, ShardCommit } from './aggregateStore.ts';
export { AggregateStore } from './aggregateStore.ts';
export type { OutboxEvent } from './anomalySink.ts';
export { AnomalySink, recentRecord } from './anomalySink.ts';
export { ArchiveLog } from './archiveLog.ts';
export type { CacheState, CacheStats } from './cacheStatus.ts';
export { CacheStatus } from './cacheStatus.ts';
export type { ConnectionOptions, RedisClient } from './connection.ts';
export { connectRedis, whenReady } from './connection.ts';
export type {
  DeadLetterPage,
  DeadLetterRecord,
  DropOutcome,
  ListOptions,
  RedriveOptions,
  RedriveOutcome,
} from './deadLetters.ts';
export { DeadLetters, IDEMPOTENT_GROUPS } from './deadLetters.ts';
export type { RedriveLink } from './errors/DeadLetterGoneError.ts';
export { DeadLetterGoneError } from './errors/DeadLetterGoneError.ts';
export { LeaseLostError } from './errors/LeaseLostError.ts';
export { NameTakenError } from './errors/NameTakenError.ts';
export { NodeOwnedError } from './errors/NodeOwnedError.ts';
export type { StoredOutcome } from './errors/RedisUnavailableError.ts';
export { isUnavailable, RedisUnavailableError } from './errors/RedisUnavailableError.ts';
export type { RedriveRefusal } from './errors/RedriveRefusedError.ts';
export { RedriveRefusedError } from './errors/RedriveRefusedError.ts';
export { StreamFullError } from './errors/StreamFullError.ts';
export { UnknownNameError } from './errors/UnknownNameError.ts';
export type { Authentication, IssuedGateway } from './gatewayRegistry.ts';
export { GatewayRegistry, hashToken } from './gatewayRegistry.ts';
export type { DeadLetter, GroupCommit, GroupCommitKeys } from './groupCommit.ts';
export { lastErrors, prepareCommit } from './groupCommit.ts';
export type { NodeClaim, OwnedNode } from './nodeOwners.ts';
export { NodeOwners } from './nodeOwners.ts';
export type { OpsAction, OpsRecord } from './opsLog.ts';
export { OpsLog } from './opsLog.ts';
export type {
  ConsumerStatus,
  GroupCounts,
  GroupStatus,
  HealthLimits,
  LastReconcile,
  PipelineReport,
  ShardStatus,
} from './pipelineStatus.ts';
export {
  DEFAULT_HEALTH_LIMITS,
  EXPECTED_GROUPS,
  groupsOf,
  pipelineReport,
  shardStatus,
} from './pipelineStatus.ts';
export type { Rate } from './rateLimits.ts';
export { RateLimits } from './rateLimits.ts';
export type { AppendResult, ReadingLogOptions } from './readingLog.ts';
export { ReadingLog } from './readingLog.ts';
export type { ChangeNotice, NodeKeys } from './readModelWriter.ts';
export { ReadModelWriter } from './readModelWriter.ts';
export type { LeaseMode } from './reconcileControl.ts';
export { ReconcileControl } from './reconcileControl.ts';
export type { NodeBackfill, Offer, ReconcileScope, ShardReconcileReport } from './reconcileOffers.ts';
export { PayloadGoneError, ReconcileOffers } from './reconcileOffers.ts';
export type { RegistryChange } from './registryChanges.ts';
export { publishRegistryChange, RegistryChanges } from './registryChanges.ts';
export type { ScriptRefusalCode } from './scripts.ts';
export { loadScripts, ScriptRefusal } from './scripts.ts';
export { heldShards, ShardLeases } from './shardLeases.ts';
export type { ShardPull } from './shardReader.ts';
export { ShardReader } from './shardReader.ts';
export type { DeliveredBatch, DeliveredEntry, StreamConsumerOptions } from './streamConsumer.ts';
export { StreamConsumer } from './streamConsumer.ts';
export type { CutMark, StreamHistory } from './streamPosition.ts';
export { countAfter, lostSince, markCut, streamHistory } from './streamPosition.ts';
export type { ReplayRange, ShardReplay } from './streamReplay.ts';
export { REPLAY_CONSUMER_PREFIX, ReplayGroupMissingError, StreamReplay } from './streamReplay.ts';
export type { ReadableEntry, Triage } from './triage.ts';
export { exhausted, triage } from './triage.ts';
export type { ViewerAuthentication, ViewerRecord } from './viewerRegistry.ts';
export { ViewerRegistry } from './viewerRegistry.ts';
