import type { ReadingIdentity } from './identity.ts';
import type { Range } from './ranges.ts';
import { nodeHash } from './shard.ts';

/**
 * Every Redis key streamgauge reads or writes, in one place.
 *
 * The read-model keys are a contract with an existing dashboard
 * (DATA_MODEL.md): their names and types must not change.
 *
 * Pipeline keys are grouped per stream shard with a Redis Cluster hash tag,
 * so one shard's stream and its dedupe sets live in one slot and a script can
 * touch them atomically. With one shard the stream keeps its plain name
 * `readings`; the other keys of that shard carry the tag `{readings}`, which
 * hashes to the same slot as the untagged name.
 */
export const readModelKeys = {
  nodesAll: 'nodes:all',
  nodeMetadata: (nodeId: string) => `node:${nodeId}:metadata`,
  nodeLatest: (nodeId: string) => `node:${nodeId}:latest`,
  nodeMetrics: (nodeId: string, range: Range) => `node:${nodeId}:metrics:${range}`,
  nodeTimeseries7d: (nodeId: string) => `node:${nodeId}:timeseries:7d`,
  systemMetrics: (range: Range) => `system:metrics:${range}`,
  anomaliesRecent: 'anomalies:recent',
} as const;

export const STREAM_BASE = 'readings';

export interface ShardKeys {
  readonly shard: number;
  /** The stream that holds this shard's readings. */
  readonly stream: string;
  /**
   * The shard's catch-up lanes, CATCHUP.lanes streams without consumer
   * groups where ingest puts readings that arrive late while the
   * aggregator is behind (a gateway sending an outage's backlog), each
   * node's in one (catchupLaneOf). The aggregator moves them into `stream`
   * a chunk of one lane at a time whenever it has (nearly) caught up with
   * it, so newer readings never queue behind an hour of old ones (see
   * CATCHUP). The first is the one lane of the versions before.
   */
  readonly catchupLanes: readonly string[];
  /**
   * The nodes with readings in a catch-up lane (a hash: node id → the last
   * lane entry holding its readings): their readings follow them into the
   * lane, so a node's readings keep their order.
   */
  readonly catchupNodes: string;
  /** Entries that could not be processed, with the reason. */
  readonly deadLetters: string;
  /** What each redriven dead letter became (`streamgauge dlq redrive`): a hash, dead-letter id → outcome. */
  readonly deadLettersRedriven: string;
  /**
   * How many entries were deleted from the stream on purpose (a redrive
   * replaces its original): so a deletion is not taken for trimming.
   */
  readonly streamRemoved: string;
  /** The last processing error of each entry still pending (a hash: entry id → error). */
  readonly errors: string;
  /** Which aggregator replica owns the shard (a string with a TTL): only it may commit. */
  readonly lease: string;
  /**
   * The identities accepted in one dedupe slot (`slot`, its number: see
   * `identitySlotOf`) on this shard: a hash, node id → the readings'
   * offsets in the slot, packed.
   */
  seen(slot: number): string;
  /**
   * Where the hour layout (the dedupe layout before the slots) kept an
   * event-time hour (`bucket`, epoch ms): a hash, node id → offsets in the
   * hour. Still read while such hashes may live (see DedupeSets).
   */
  seenHour(bucket: number): string;
  /** Until when (epoch ms) hashes of the hour layout may hold identities: a string. */
  readonly seenHoursUntil: string;
  /**
   * Where the layout before 2026-12-05 kept one node's hour: a set of
   * offsets. Still read while such sets may live (see DedupeSets).
   */
  seenBefore(identity: ReadingIdentity): string;
  /** Until when (epoch ms) sets of the layout before 2026-12-05 may hold identities: a string. */
  readonly seenBeforeUntil: string;
  /** The aggregator's node ids of this shard (a set). */
  readonly aggregateNodes: string;
  /** The aggregator's counters for this shard (a hash). */
  readonly aggregateStats: string;
  /** The aggregator's watermark: the last entry whose effects are in every dashboard key. */
  readonly aggregateWritten: string;
  /** The id of the aggregator's last state commit, so a retried commit is not applied twice. */
  readonly aggregateCommit: string;
  /** The highest entry the aggregator's state holds: one delivered again at or below it is not applied twice. */
  readonly aggregateApplied: string;
  /** The aggregator's persisted state of one node: panes, latest, metadata (a hash). */
  aggregateNode(nodeId: string): string;
  /** The archiver's keys of this shard (group `archiver`). */
  readonly archive: {
    /** Id of its last commit (a retried commit is not applied twice). */
    readonly commit: string;
    /** Its counters (a hash). */
    readonly stats: string;
    /** The last processing error of each entry still pending for it. */
    readonly errors: string;
    /** The archive watermark: every entry up to this id is in the warehouse. */
    readonly watermark: string;
  };
  /**
   * Anomaly events of this shard's nodes: an outbox stream written in the
   * same script as the state that produced them (so each is written once),
   * and how far the publishers have copied it (entry ids).
   */
  readonly anomalies: {
    readonly outbox: string;
    readonly published: string;
    readonly pubsub: string;
  };
  /** A backfill's panes for this shard, waiting for the aggregator that holds it. */
  readonly reconcile: {
    /** The offer: run id, cut, when it was computed, its node ids (a hash). */
    readonly offer: string;
    /** The run's panes, latest values and metadata: node id → encoded (a hash). */
    payload(run: string): string;
  };
}

export function shardKeys(shard: number, shards: number): ShardKeys {
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shards must be ≥ 1, got ${shards}`);
  if (!Number.isInteger(shard) || shard < 0 || shard >= shards) {
    throw new RangeError(`shard must be in 0..${shards - 1}, got ${shard}`);
  }
  const tag = shards === 1 ? STREAM_BASE : String(shard);
  const stream = shards === 1 ? STREAM_BASE : `${STREAM_BASE}:{${tag}}`;
  const seenPrefix = `seen:{${tag}}:`;
  const aggregatePrefix = `agg:{${tag}}:`;
  return {
    shard,
    stream,
    catchupLanes: catchupLanesOf(stream),
    catchupNodes: `${catchupOf(stream)}:nodes`,
    deadLetters: `{${tag}}:dead`,
    deadLettersRedriven: `{${tag}}:dead:redriven`,
    streamRemoved: `{${tag}}:removed`,
    errors: `{${tag}}:errors`,
    lease: `{${tag}}:lease`,
    seen: (slot) => `${seenPrefix}s${slot}`,
    seenHour: (bucket) => `${seenPrefix}${bucket / 3_600_000}`,
    seenHoursUntil: `${seenPrefix}hours`,
    seenBefore: (id) => `${seenPrefix}${id.nodeId}:${id.bucket / 3_600_000}`,
    seenBeforeUntil: `${seenPrefix}before`,
    aggregateNodes: `${aggregatePrefix}nodes`,
    aggregateStats: `${aggregatePrefix}stats`,
    aggregateWritten: `${aggregatePrefix}written`,
    aggregateCommit: `${aggregatePrefix}commit`,
    aggregateApplied: `${aggregatePrefix}applied`,
    aggregateNode: (nodeId) => `${aggregatePrefix}node:${nodeId}`,
    archive: {
      commit: `arch:{${tag}}:commit`,
      stats: `arch:{${tag}}:stats`,
      errors: `arch:{${tag}}:errors`,
      watermark: `arch:{${tag}}:archived`,
    },
    anomalies: {
      outbox: `{${tag}}:anomaly-events`,
      published: `{${tag}}:anomaly-published`,
      pubsub: `{${tag}}:anomaly-pubsub`,
    },
    reconcile: {
      offer: `rec:{${tag}}:offer`,
      payload: (run) => `rec:{${tag}}:payload:${run}`,
    },
  };
}

/** The first catch-up lane of the shard whose stream is `stream`. */
function catchupOf(stream: string): string {
  if (stream === STREAM_BASE) return `{${STREAM_BASE}}:catchup`;
  const tag = /^readings:\{([^}]+)\}$/.exec(stream)?.[1];
  if (tag === undefined) throw new RangeError(`not a readings stream: ${stream}`);
  return `{${tag}}:catchup`;
}

/** The catch-up lanes of the shard whose stream is `stream` (ShardKeys.catchupLanes). */
export function catchupLanesOf(stream: string): string[] {
  const first = catchupOf(stream);
  return Array.from({ length: CATCHUP.lanes }, (_, lane) => (lane === 0 ? first : `${first}:${lane}`));
}

/**
 * The catch-up lane's rules, shared by ingest (which routes) and the
 * aggregator (which moves the lane into the stream):
 *
 * - `lateMs` is the default of how late a reading must arrive (its event
 *   time that far before ingest's clock) to be eligible for the lane
 *   (CATCHUP_AFTER_MINUTES).
 * - Ingest sends a node's readings to the lane when the node has readings
 *   there already, or when one of them is eligible while the lane holds
 *   anything or the aggregator's group has `gateEntries` or more entries of
 *   the stream not yet read; otherwise straight to the stream, as any
 *   other reading. So each node's readings keep their order, and the nodes
 *   that are not catching up (no late reading) are not held up by those
 *   that are.
 * - The aggregator moves entries (whole, in order) before each read while
 *   its group has fewer entries left to read than the read takes: so a new
 *   reading finds at most a read's worth and one chunk of old readings
 *   (AGGREGATOR_CATCHUP_READINGS) ahead of it.
 * - The stream and its lane share one bound in bytes (STREAM_MAX_MB).
 * - The lane is `lanes` lanes, each node's readings in one of them
 *   (catchupLaneOf), and a move takes a chunk from one lane: an outage's
 *   backlog comes round by round (every node's reading of an instant,
 *   then the next), so a chunk of one lane holds `lanes` times as many
 *   readings of each of its nodes, and each node's fixed costs (its
 *   `latest`, its head in the commit) are shared by as many readings.
 */
export const CATCHUP = {
  lateMs: 5 * 60_000,
  gateEntries: 20,
  lanes: 8,
} as const;

/**
 * The catch-up lane (0 .. CATCHUP.lanes − 1) of a node: its hash (as
 * `shardOf` takes it) mixed by MurmurHash3's finalizer, so that the nodes of
 * one shard spread over every lane and ids that differ in their last
 * character only (N1, N2, …), whose FNV-1a hashes share most bits, do too.
 */
export function catchupLaneOf(nodeId: string): number {
  let h = nodeHash(nodeId);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % CATCHUP.lanes;
}

export function allShardKeys(shards: number): ShardKeys[] {
  return Array.from({ length: shards }, (_, i) => shardKeys(i, shards));
}

/**
 * `nodes:all` must list each node once. Its members are mirrored in a set
 * whose hash tag puts it in the list's slot, so one script keeps both.
 */
export const NODES_ALL_MEMBERS = '{nodes:all}:members';

/**
 * System metrics are sums over every node, and each replica knows only its
 * shards' nodes: each writes its shards' partial sums into one hash, and
 * whoever writes `system:metrics:{range}` stamps it with the hash's version
 * in a key of the same slot, so an older sum never overwrites a newer one.
 */
export const systemKeys = {
  partials: '{system}:partials',
  version: (range: Range) => `{${readModelKeys.systemMetrics(range)}}:version`,
} as const;

/** The live aggregator replicas (a sorted set: replica token → expiry, ms). */
export const AGGREGATOR_REPLICAS = '{aggregator}:replicas';

/**
 * The backfill's keys: a lock so one scheduler runs at a time, on-demand
 * requests, the progress of the run in hand, each shard's report of a run,
 * the last run's report, and the cache's status (the old system's
 * `get_cache_stats`, honest: the time of the last refresh that completed,
 * the last error, when the cache was first filled).
 */
export const reconcileKeys = {
  lock: '{reconcile}:lock',
  request: '{reconcile}:request',
  progress: '{reconcile}:progress',
  reports: (run: string) => `{reconcile}:reports:${run}`,
  last: 'reconcile:last',
  cacheStatus: 'cache:status',
} as const;

/**
 * Where anomalies are shown: the `anomalies` stream of open and close
 * events, `anomalies:recent` (DATA_MODEL.md), each node's open anomalies;
 * with, in their slots, the ids already written (a republished event is
 * recognised).
 */
/**
 * What ops did to the pipeline (replay, rebuild, dead-letter redrive and
 * drop): a capped stream, one entry per action, who ran it and what it touched.
 */
export const opsKeys = {
  log: 'ops:log',
} as const;

export const anomalyKeys = {
  stream: 'anomalies',
  streamIds: '{anomalies}:ids',
  recent: readModelKeys.anomaliesRecent,
  recentIds: `{${readModelKeys.anomaliesRecent}}:ids`,
  open: (nodeId: string) => `node:${nodeId}:anomalies`,
} as const;

/** Channel on which the aggregator announces which nodes' keys changed. */
export const CHANGES_CHANNEL = 'streamgauge:changes';

/** Consumer group names. */
export const GROUPS = { aggregator: 'aggregator', archiver: 'archiver' } as const;

/** Gateway registry: records by name and by token hash, in one slot. */
export const gatewayKeys = {
  byName: '{gateways}:by-name',
  byTokenHash: '{gateways}:by-token',
  /** node id → district: the first district that sends the node (within the join cap), or an operator's choice. */
  nodeDistrict: '{gateways}:node-district',
  /** node id → the node-scoped gateway that names it. */
  nodeGateway: '{gateways}:node-gateway',
  /** How many nodes a gateway bound to its district, per hour (the join cap's counters: `<this>:<hour>`, Redis' clock). */
  joined: (gateway: string) => `{gateways}:joined:${gateway}`,
  /** Channel announcing registry changes (revocations, node moves), so every ingest drops what it remembers. */
  changes: 'streamgauge:gateways',
} as const;

/** Dashboard viewers: records by name and by token hash, in one slot, apart from the gateways'. */
export const viewerKeys = {
  byName: '{viewers}:by-name',
  byTokenHash: '{viewers}:by-token',
} as const;

/**
 * Rate-limit buckets, shared by every ingest replica. Each is one key, so
 * they spread over a Redis Cluster's slots.
 */
export const rateKeys = {
  requests: (gateway: string) => `rate:gateway:${gateway}:requests`,
  readings: (gateway: string) => `rate:gateway:${gateway}:readings`,
  authFailures: (address: string) => `rate:address:${address}:auth-failures`,
} as const;

/**
 * Whether `key` is one of the keys above (any shard, node or run): what
 * `streamgauge start` checks before it writes into a Redis it did not start,
 * so that it never mixes its keys into another application's database.
 * The first part of every name is one of these; hash-tagged names (`{…}`)
 * are all streamgauge's.
 */
export function isStreamgaugeKey(key: string): boolean {
  if (key.startsWith('{')) return true;
  const colon = key.indexOf(':');
  const head = colon < 0 ? key : key.slice(0, colon);
  return colon < 0 ? WHOLE_NAMES.has(head) : PREFIXES.has(head);
}

const PREFIXES = new Set([
  'node',
  'nodes',
  'system',
  'anomalies',
  STREAM_BASE,
  'seen',
  'agg',
  'arch',
  'rec',
  'reconcile',
  'cache',
  'ops',
  'rate',
  'streamgauge',
]);
const WHOLE_NAMES = new Set([STREAM_BASE, 'anomalies']);
