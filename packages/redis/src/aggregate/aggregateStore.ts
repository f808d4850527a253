import {
  type AnomalyEvent,
  type Clock,
  type DetectorCheckpoint,
  decodeEncodedState,
  decodeNodeHead,
  decodePanes,
  encodeNodeHead,
  encodePanes,
  fieldMap,
  firstPaneOf,
  type GrowingArena,
  type LatestValues,
  NO_PANE,
  type NodeMetadata,
  NodeWindows,
  type PaneRing,
  type PersistedDetectorState,
  type ShardKeys,
  VALUE_SCORE_BYTES,
} from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';
import { type GroupCommit, type GroupCommitKeys, lastErrors, prepareCommit } from '../log/groupCommit.ts';
import { PackedHashWrites } from '../log/packedHashWrites.ts';
import { SpareArenas } from '../log/spareArenas.ts';
import { type CutMark, lostSince } from '../log/streamPosition.ts';
import { StreamTail } from '../log/streamTail.ts';
import type { CommitConnection } from '../log/watchedCommit.ts';
import { runScript } from '../scripts.ts';
import { migrateLegacyPanes } from './legacyPanes.ts';

/**
 * Where the aggregator's state lives between batches and across restarts:
 * per node, a hash of its panes (per ring, `r<ring>`: see encodeChanges;
 * core's paneCodec), its head (`h`: the rings' newest panes, latest values
 * and metadata; core's nodeHead) and its detectors' state.
 *
 * Exactly-once effect: a batch's state changes and the XACK of its entries
 * go together on keys of one slot (the shard's hash tag): one transaction,
 * the state as commands and the rest as the commit script (CommitConnection,
 * on a standalone Redis), or one script call (a Cluster). Either both
 * happen or neither does; an unacknowledged entry is re-delivered and
 * re-applied to state that does not contain it. A commit goes through only
 * for the holder of the shard's lease, so a replica that lost the shard
 * (paused past its lease) cannot overwrite what its successor committed.
 */
export interface ShardCommit extends Omit<GroupCommit, 'writes' | 'removed' | 'events'> {
  /** Nodes whose panes, latest values or metadata changed. */
  readonly changed: Iterable<NodeWindows>;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Nodes whose detector state is due to be persisted, with it (and whether with its scores). */
  readonly detectors?: ReadonlyMap<string, DetectorCheckpoint>;
  /** The anomalies the batch opened or closed (to the shard's outbox, with the state). */
  readonly events?: readonly AnomalyEvent[];
}

/** A node as persisted: its windows, and its detectors' state (absent before any). */
export interface LoadedNode {
  readonly windows: NodeWindows;
  readonly detector?: PersistedDetectorState;
}

export class AggregateStore {
  readonly #redis: RedisClient;
  readonly #shard: ShardKeys;
  readonly #ttlSeconds: number;
  /** This replica's lease token: commits are refused unless it holds the shard's lease. */
  readonly #token: string;
  /** The aggregator's clock: only panes still in reach are persisted. */
  readonly #clock: Clock | undefined;
  /** Where commits go as transactions (see CommitConnection); without it, as script calls. */
  readonly #connection: CommitConnection | undefined;

  /**
   * A shard has two commits on their way at most (one running, the next
   * prepared) while a third is encoded: three arenas. With two kept, the
   * third was fresh memory every time both were on their way, grown from
   * the estimate by doubling: 0.4–1.2 s of the loop for a 50–87 MB commit
   * during a catch-up, against 0.1–0.3 s into a spare (docs/benchmarks.md,
   * "Live entries ahead of a chunk").
   */
  readonly #spares = new SpareArenas(3);

  constructor(
    redis: RedisClient,
    shard: ShardKeys,
    options: { ttlSeconds: number; token: string; clock?: Clock; connection?: CommitConnection },
  ) {
    this.#redis = redis;
    this.#shard = shard;
    this.#ttlSeconds = options.ttlSeconds;
    this.#token = options.token;
    this.#clock = options.clock;
    this.#connection = options.connection;
  }

  get shard(): ShardKeys {
    return this.#shard;
  }

  async load(aheadMs: number): Promise<Map<string, LoadedNode>> {
    const ids = await this.#redis.smembers(this.#shard.aggregateNodes);
    const nodes = new Map<string, LoadedNode>();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const pipeline = this.#redis.pipeline();
      for (const id of chunk) pipeline.hgetallBuffer(this.#shard.aggregateNode(id));
      const replies = (await pipeline.exec()) ?? [];
      chunk.forEach((id, j) => {
        const [error, hash] = replies[j] as [Error | null, Record<string, Buffer>];
        if (error) throw error;
        const node = decodeNode(id, hash, aheadMs);
        if (node !== undefined) nodes.set(id, node);
      });
    }
    return nodes;
  }

  /**
   * Encodes the commit once (clearing the nodes' change marks) and returns a
   * function that runs it (see prepareCommit) and resolves to the applied
   * mark after it; throws LeaseLostError when another acquisition holds the shard.
   */
  prepare(commit: ShardCommit): () => Promise<string | undefined> {
    const shard = this.#shard;
    const writes = nodeWrites(shard, commit, this.#clock?.now(), this.#spares.take());
    return prepareCommit(
      this.#redis,
      aggregateCommitKeys(shard),
      {
        ...commit,
        writes,
        events: (commit.events ?? []).map((e) => JSON.stringify(e)),
        removed: commit.removed.map((id) => ({ id, key: shard.aggregateNode(id) })),
      },
      {
        token: this.#token,
        ttlSeconds: this.#ttlSeconds,
        onCommitted: () => this.#spares.give(writes.arena),
        ...(this.#connection !== undefined && { connection: this.#connection }),
      },
    );
  }

  /**
   * The highest entry id the persisted state holds (absent: none, or the
   * state was wiped): an entry at or below it that is delivered again
   * (`streamgauge replay`) is already applied.
   */
  async appliedThrough(): Promise<string | undefined> {
    return (await this.#redis.get(this.#shard.aggregateApplied)) ?? undefined;
  }

  /** The group's last delivered entry on this shard's stream, if the group exists. */
  async lastDelivered(group: string): Promise<string | undefined> {
    const groups = (await this.#redis.xinfo('GROUPS', this.#shard.stream).catch(() => [])) as unknown[][];
    for (const flat of groups) {
      const info = fieldMap(flat);
      if (info.get('name') === group) return String(info.get('last-delivered-id'));
    }
    return undefined;
  }

  /** Records that every key reflects the stream up to `id` (only while holding the lease). */
  async markWritten(id: string): Promise<void> {
    await runScript(
      this.#redis,
      'markWritten',
      [this.#shard.lease, this.#shard.aggregateWritten],
      [this.#token, id],
    );
  }

  /** The shard's readings after `cut`, to be read as far as the caller asks. */
  tailAfter(cut: string): StreamTail {
    return new StreamTail(this.#redis, this.#shard.stream, cut);
  }

  /** Whether the shard's stream holds an entry after `after`, up to `upTo` (inclusive). */
  async hasEntriesBetween(after: string, upTo: string): Promise<boolean> {
    const rows = (await this.#redis.xrange(this.#shard.stream, `(${after}`, upTo, 'COUNT', 1)) as unknown[];
    return rows.length > 0;
  }

  /** Whether entries after a cut have gone from the shard's stream (trimmed) since it was marked. */
  lostSince(mark: CutMark): Promise<boolean> {
    return lostSince(this.#redis, this.#shard, mark);
  }

  /** The last error of each given entry that failed before (entries that never failed are absent). */
  lastErrors(ids: readonly string[]): Promise<Map<string, string>> {
    return lastErrors(this.#redis, this.#shard.errors, ids);
  }

  async counters(): Promise<Record<string, number>> {
    const raw = await this.#redis.hgetall(this.#shard.aggregateStats);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }
}

/** The keys the aggregator's commit on a shard touches. */
export function aggregateCommitKeys(shard: ShardKeys): GroupCommitKeys {
  return {
    lease: shard.lease,
    commit: shard.aggregateCommit,
    stream: shard.stream,
    nodes: shard.aggregateNodes,
    stats: shard.aggregateStats,
    deadLetters: shard.deadLetters,
    errors: shard.errors,
    applied: shard.aggregateApplied,
    outbox: shard.anomalies.outbox,
  };
}

/** Per node, the fields of its changed panes, latest values, metadata and detector state. */
function nodeWrites(
  shard: ShardKeys,
  commit: ShardCommit,
  now: number | undefined,
  arena: GrowingArena | undefined,
): PackedHashWrites {
  const detectors = commit.detectors ?? new Map<string, DetectorCheckpoint>();
  const changed = [...commit.changed];
  // Sized for a head and a few panes a node, and each detector's state (and
  // scores) as due: growing is a copy of everything so far.
  let expected = changed.length * NODE_BYTES;
  for (const { part, scores } of detectors.values())
    expected +=
      part === 'lifecycle' ? LIFECYCLE_BYTES : scores ? DETECTOR_BYTES + SCORES_BYTES : DETECTOR_BYTES;
  const writes = new PackedHashWrites(expected, { arena });
  const written = new Set<string>();
  for (const node of changed) {
    if (written.has(node.nodeId)) continue;
    written.add(node.nodeId);
    writes.hash(shard.aggregateNode(node.nodeId));
    encodeChanges(node, now, writes);
    const detector = detectors.get(node.nodeId);
    if (detector !== undefined) writeDetector(detector, writes);
  }
  for (const [id, detector] of detectors) {
    if (written.has(id)) continue;
    writes.hash(shard.aggregateNode(id));
    writeDetector(detector, writes);
  }
  return writes;
}

const SCORED = ['flow_rate', 'pressure'] as const;

/**
 * About what a node's changed fields take (a head is ~550 bytes), a
 * detector's state (~2.3 KB), its lifecycle part alone and its scores (two
 * series' ValueScore and their fields' framing).
 */
const NODE_BYTES = 768;
const DETECTOR_BYTES = 2560;
const LIFECYCLE_BYTES = 512;
const SCORES_BYTES = SCORED.length * (VALUE_SCORE_BYTES + 32);

function writeDetector(checkpoint: DetectorCheckpoint, writes: PackedHashWrites): void {
  if (checkpoint.part === 'lifecycle') {
    writes.setEncoded(LIFECYCLE_FIELD, (arena) => checkpoint.encodeLifecycle(arena));
    return;
  }
  // `[json length u32][json][doubles, little-endian]` (core's NodeDetector.encodeState).
  writes.setEncoded(STATE_FIELD, (arena) => checkpoint.encode(arena));
  if (checkpoint.replacesLifecycle) writes.delete(LIFECYCLE_FIELD);
  if (!checkpoint.scores) return;
  for (const m of SCORED) {
    const score = checkpoint.scoreBytes(m);
    if (score) writes.set(SCORE_FIELD[m], score);
  }
}

/**
 * The hash fields of a node's changed state; clears its change marks. Per
 * ring, the newest panes of every ring go with the latest values and the
 * metadata in the node's head (`h`: core's nodeHead), the one field an
 * in-order reading changes. The others: the recent ones, from the first
 * pane that closed since the ring's older panes were last written, in a
 * field of their own (`t<ring>`), rewritten when a pane closes; the older
 * ones in one field (`r<ring>`), rewritten (and `t<ring>` deleted) only
 * when a reading lands in one of them or more than RECENT_PANES are recent.
 * So a node reading in order rewrites a few panes a minute, not its hour.
 */
function encodeChanges(node: NodeWindows, now: number | undefined, writes: PackedHashWrites): void {
  let headChanged = node.latestChanged;
  node.rings.forEach((ring, r) => {
    if (!ring.changed) return;
    headChanged = true;
    if (!ring.changedOnly(ring.persistedNewest)) {
      const held = now === undefined ? ring.panes() : ring.livePanes(now);
      const newest = held.pop();
      // Recent since the last write of the older panes: from the newest then on.
      const from = ring.persistedFrom === NO_PANE ? ring.persistedNewest : ring.persistedFrom;
      // Once `from` has left the ring's reach, a full write drops what left with it.
      const apart =
        from !== NO_PANE && from <= ring.lowestChanged && (now === undefined || ring.reaches(from, now));
      const firstRecent = apart ? held.findIndex((pane) => pane >= from) : -1;
      if (firstRecent >= 0 && held.length - firstRecent <= RECENT_PANES) {
        const recent = held.slice(firstRecent);
        writes.setEncoded(`t${r}`, (arena) => encodePanes(ring, recent, arena));
        ring.persistedFrom = from;
      } else {
        // No pane held: no bytes, and the field goes.
        writes.setEncoded(`r${r}`, (arena) => encodePanes(ring, held, arena));
        writes.delete(`t${r}`);
        ring.persistedFrom = NO_PANE;
      }
      ring.persistedNewest = newest ?? NO_PANE;
    }
    ring.clearChanges();
  });
  const retiring = retired.get(node);
  // The fields of an earlier format go only with a head that replaces them.
  if (headChanged || retiring !== undefined) {
    writes.setEncoded(HEAD_FIELD, (arena) => encodeNodeHead(node, arena));
    node.latestChanged = false;
  }
  for (const field of retiring ?? []) writes.delete(field);
  retired.delete(node);
}

const HEAD_FIELD = 'h';

/**
 * Recent panes a ring keeps apart before its older panes are rewritten
 * with them: a pane closing rewrites about half this many on average, and
 * the ring's older panes (60 to 168) once every this many, near the least
 * bytes for the 1-hour ring's 60.
 */
const RECENT_PANES = 12;

/**
 * A detector's state, and its lifecycle part when persisted apart since
 * (newer than the state's own; NodeDetector.checkpoint).
 */
const STATE_FIELD = 'anom';
const LIFECYCLE_FIELD = 'anom:life';
/** A measurement's score state: its bytes, in a field of its own. */
const SCORE_FIELD = { flow_rate: 'score:flow_rate', pressure: 'score:pressure' } as const;

/** Fields of an earlier format, deleted by the node's next commit. */
const retired = new WeakMap<NodeWindows, string[]>();

/**
 * A node's persisted hash as the aggregator loads it (undefined: nothing
 * persisted). Earlier formats are read too, and their fields retired by the
 * node's next commit: format 1's `p<ring>.<slot>` panes (legacyPanes), and
 * format 2's newest panes (`c<ring>`), `latest` and `meta` (JSON), now in the head.
 */
export function decodeNode(
  nodeId: string,
  hash: Record<string, Buffer>,
  aheadMs: number,
): LoadedNode | undefined {
  const fields = Object.entries(hash);
  if (fields.length === 0) return undefined;
  const node = new NodeWindows(nodeId, aheadMs);
  let state: Buffer | undefined;
  let lifecycle: Buffer | undefined;
  let head: Buffer | undefined;
  const legacy: [string, Buffer][] = [];
  const recent: [string, Buffer][] = [];
  /** Per ring, the newest of its older panes (`r<ring>`). */
  const olderUpTo = new Map<PaneRing, number>();
  const earlier: string[] = [];
  const scores: PersistedDetectorState['scores'] = {};
  for (const [field, value] of fields) {
    if (field === HEAD_FIELD) {
      head = value;
    } else if (field === STATE_FIELD) {
      state = value;
    } else if (field === LIFECYCLE_FIELD) {
      lifecycle = value;
    } else if (field === SCORE_FIELD.flow_rate || field === SCORE_FIELD.pressure) {
      scores[field === SCORE_FIELD.flow_rate ? 'flow_rate' : 'pressure'] = Uint8Array.from(value);
    } else if (field === 'latest') {
      node.latest = (JSON.parse(value.toString('utf8')) ?? undefined) as LatestValues | undefined;
      earlier.push(field);
    } else if (field === 'meta') {
      node.metadata = JSON.parse(value.toString('utf8')) as NodeMetadata;
      earlier.push(field);
    } else if (field[0] === 't') {
      recent.push([field, value]);
    } else if (field[0] === 'r' || field[0] === 'c') {
      const ring = node.rings[Number(field.slice(1))];
      if (ring === undefined) continue;
      const read = decodePanes(ring, value);
      if (field[0] === 'r') olderUpTo.set(ring, read[read.length - 1] ?? Number.NEGATIVE_INFINITY);
      if (field[0] === 'c') {
        ring.persistedNewest = read[0] ?? NO_PANE;
        earlier.push(field);
      }
    } else if (field[0] === 'p') {
      legacy.push([field, value]);
      earlier.push(field);
    }
  }
  // Newer than the older panes, so after them: a ring full to its reach
  // keeps the newer of two panes that meet in a slot (the older one has
  // left every window, but a rewrite of the older panes may still hold it).
  for (const [field, value] of recent) {
    const ring = node.rings[Number(field.slice(1))];
    if (ring === undefined) continue;
    // Every recent pane is newer than the older ones; recent panes that are
    // not were left by an aggregator that knew no recent panes (a rollback)
    // and rewrote the older ones since: stale, ignored (the ring's next
    // write is a full one, which deletes them).
    const first = firstPaneOf(value);
    if (first === undefined || first <= (olderUpTo.get(ring) ?? Number.NEGATIVE_INFINITY)) continue;
    ring.persistedFrom = decodePanes(ring, value)[0] ?? NO_PANE;
  }
  // After the fields it replaces, whatever order the hash gave them in.
  if (head !== undefined) decodeNodeHead(node, head);
  if (legacy.length > 0) migrateLegacyPanes(node, legacy);
  if (earlier.length > 0) retired.set(node, earlier);
  const detector = decodeEncodedState(state, lifecycle);
  if (detector === undefined) return { windows: node };
  // Scores persisted apart win over any inline ones of an earlier format.
  return { windows: node, detector: { ...detector, scores: { ...detector.scores, ...scores } } };
}
