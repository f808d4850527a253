export type { LoadedNode, ShardCommit } from './aggregate/aggregateStore.ts';
export { AggregateStore, aggregateCommitKeys } from './aggregate/aggregateStore.ts';
export type { OutboxEvent } from './aggregate/anomalySink.ts';
export { AnomalySink, recentRecord } from './aggregate/anomalySink.ts';
export { PERSISTED_CHUNK, PersistedWindows } from './aggregate/persistedWindows.ts';
export type { KeyRead, KeyReply } from './aggregate/readModelReader.ts';
export { ReadModelReader } from './aggregate/readModelReader.ts';
export type { ChangeNotice, NodeKeys } from './aggregate/readModelWriter.ts';
export { ReadModelWriter } from './aggregate/readModelWriter.ts';
export type { Offer, ReconcileScope, ShardReconcileReport } from './aggregate/reconcileOffers.ts';
export { PayloadGoneError, ReconcileOffers } from './aggregate/reconcileOffers.ts';
export { heldShards, ShardLeases } from './aggregate/shardLeases.ts';
export { ArchiveLog } from './archive/archiveLog.ts';
export type { ConnectionLogger, ConnectionOptions, RedisClient } from './connection.ts';
export { connectRedis, whenReady } from './connection.ts';
export type { Authentication, IssuedGateway } from './control/gatewayRegistry.ts';
export { GatewayRegistry } from './control/gatewayRegistry.ts';
export type { NodeClaim, OwnedNode } from './control/nodeOwners.ts';
export { NodeOwners } from './control/nodeOwners.ts';
export type { Rate } from './control/rateLimits.ts';
export { RateLimits } from './control/rateLimits.ts';
export type { LeaseMode } from './control/reconcileControl.ts';
export { ReconcileControl } from './control/reconcileControl.ts';
export type { RegistryChange } from './control/registryChanges.ts';
export { publishRegistryChange, RegistryChanges } from './control/registryChanges.ts';
export { hashToken } from './control/tokenRecords.ts';
export type { ViewerAuthentication, ViewerRecord } from './control/viewerRegistry.ts';
export { ViewerRegistry } from './control/viewerRegistry.ts';
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
export { type CatchupBacklog, catchupBacklog } from './log/catchupBacklog.ts';
export { DedupeSets } from './log/dedupeSets.ts';
export type { DeadLetter, GroupCommit, GroupCommitKeys } from './log/groupCommit.ts';
export { lastErrors, prepareCommit } from './log/groupCommit.ts';
export { PackedHashWrites } from './log/packedHashWrites.ts';
export type { AppendResult, ReadingLogOptions } from './log/readingLog.ts';
export { ReadingLog } from './log/readingLog.ts';
export type { ShardPull } from './log/shardReader.ts';
export { ShardReader } from './log/shardReader.ts';
export type { DeliveredBatch, DeliveredEntry, StreamConsumerOptions } from './log/streamConsumer.ts';
export { blockingConnections, StreamConsumer } from './log/streamConsumer.ts';
export type { CutMark, StreamHistory } from './log/streamPosition.ts';
export { countAfter, lostSince, markCut, streamHistory } from './log/streamPosition.ts';
export { StreamTail } from './log/streamTail.ts';
export type { ReadableEntry, Triage } from './log/triage.ts';
export { exhausted, triage } from './log/triage.ts';
export type { WatchedCommit } from './log/watchedCommit.ts';
export { CommitConnection } from './log/watchedCommit.ts';
export type { CacheState, CacheStats } from './ops/cacheStatus.ts';
export { CacheStatus } from './ops/cacheStatus.ts';
export type {
  DeadLetterPage,
  DeadLetterRecord,
  DropOutcome,
  ListOptions,
  RedriveOptions,
  RedriveOutcome,
} from './ops/deadLetters.ts';
export { DeadLetterHandleError, DeadLetters, IDEMPOTENT_GROUPS } from './ops/deadLetters.ts';
export type { OpsAction, OpsRecord } from './ops/opsLog.ts';
export { OpsLog } from './ops/opsLog.ts';
export type {
  ConsumerStatus,
  GroupCounts,
  GroupStatus,
  HealthLimits,
  LastReconcile,
  PipelineReport,
  ShardStatus,
} from './ops/pipelineStatus.ts';
export {
  DEFAULT_HEALTH_LIMITS,
  EXPECTED_GROUPS,
  groupsOf,
  pipelineReport,
  shardStatus,
} from './ops/pipelineStatus.ts';
export type { ReplayCounts, ReplayRange, ShardReplay } from './ops/streamReplay.ts';
export {
  REPLAY_CONSUMER_PREFIX,
  ReplayGroupMissingError,
  replayTotals,
  StreamReplay,
} from './ops/streamReplay.ts';
export type { ScriptRefusalCode } from './scripts.ts';
export { loadScripts, ScriptRefusal, scriptNamesBySha } from './scripts.ts';
