import type { Socket } from 'node:net';
import {
  type AnomalyRecord,
  allShardKeys,
  anomalyKeys,
  CHANGES_CHANNEL,
  fieldRecord,
  GROUPS,
  RANGES,
  type Range,
  readModelKeys,
} from '@streamgauge/core';
import {
  groupsOf,
  type KeyRead,
  type KeyReply,
  ReadModelReader,
  type RedisClient,
  whenReady,
} from '@streamgauge/redis';
import type { Logger } from 'pino';
import {
  type AnomalyView,
  type Latest,
  type Metrics,
  type NodeMetadata,
  openAnomalyView,
  parseLatest,
  parseMetadata,
  parseMetrics,
  parseSeries,
  parseSystem,
  recentAnomalyView,
  type Series,
  type SystemMetrics,
  sameFields,
} from './model.ts';

/** One node as the view holds it. */
export interface NodeEntry {
  readonly id: string;
  metadata: NodeMetadata;
  latest: Latest | null;
  /** The latest reading's time, ms (NaN: none): parsed once, read by every status and age. */
  latestAt: number;
  metrics: Partial<Record<Range, Metrics | null>>;
  open: AnomalyRecord[];
  /** The 7-day series, read when first asked for and dropped when it changes. */
  series: Series | undefined;
  /** Bumped when the series changes, so a read in flight does not keep an old one. */
  seriesGeneration: number;
}

/** A change the view has taken in: what the page's clients are told. */
export interface ViewChange {
  readonly cause: string;
  readonly keys?: string;
  readonly nodes?: readonly string[];
  readonly ranges?: readonly string[];
  readonly at: string;
}

type Entry = [id: string, fields: string[]];

/** A node's keys to read in a refresh, in the order `#takeNode` takes them. */
interface NodePlan {
  readonly id: string;
  /** Metadata before latest (not read when only latest changed). */
  readonly metadata: boolean;
  /** Metrics and open anomalies too, after metadata and latest. */
  readonly everything: boolean;
  readonly reads: KeyRead[];
}

/** A key's flat reply; a key that could not be read throws what it said. */
function flatOf(reply: KeyReply | undefined): string[] {
  if (reply instanceof Error) throw reply;
  return reply ?? [];
}

/** Whether any range's metrics were read (without allocating a key list, as this runs per notice). */
function hasMetrics(entry: NodeEntry): boolean {
  for (const _ in entry.metrics) return true;
  return false;
}

function dropSeries(entry: NodeEntry): void {
  entry.series = undefined;
  entry.seriesGeneration++;
}

/** The aggregator's notice on `streamgauge:changes` (docs/read-model.md). */
interface ChangeNotice {
  readonly cause: string;
  readonly keys?: 'latest' | 'latest-only' | 'all';
  readonly nodes?: string[];
  readonly ranges?: string[];
  readonly at: string;
}

export interface ViewOptions {
  readonly shards: number;
  readonly logger: Logger;
  /** How often notices are taken in (they are coalesced in between), ms. */
  readonly refreshMs?: number;
  /** How often the anomalies stream and the consumer lag are looked at, ms. */
  readonly pollMs?: number;
  /** How often the node list is read again in full (nodes forgotten, notices lost), ms. */
  readonly resyncMs?: number;
  /** How long one step of a refresh (a chunk of nodes, a command) may wait for Redis, ms. */
  readonly deadlineMs?: number;
}

/** Nodes read at once: while loading, and once clients are served (a chunk of 100 held the event loop 3–7 ms). */
const CHUNK = 100;
const CHUNK_SERVING = 25;
/** How long the aggregator may move on without a notice before the view reads everything again. */
const NOTICE_GRACE_MS = 3_000;
const FALLBACK_EVERY_MS = 30_000;
/** Series kept in memory: a few pages of sparklines and the detail views open (about 6 KB each). */
const SERIES_KEPT = 2_000;

/**
 * Every node's dashboard keys in memory, kept current by the aggregator's
 * change notices, so a request is answered from memory rather than with
 * thousands of HGETALLs. Notices are coalesced: each refresh reads what
 * changed since the last one, then tells `onChange`. Anomalies are followed
 * on their own stream, the consumer lag polled.
 */
export class ReadModelView {
  readonly nodes = new Map<string, NodeEntry>();
  readonly system: Partial<Record<Range, SystemMetrics | null>> = {};
  recent: Record<string, unknown>[] = [];
  /** Entries not yet delivered, per consumer group, summed over shards. */
  lag: Record<string, number> = { [GROUPS.aggregator]: 0, [GROUPS.archiver]: 0 };
  /** Bumped by every refresh that changed something: caches key on it. */
  version = 0;
  /** Bumped when a node joins or leaves or its metadata changes (the district list keys on it). */
  membership = 0;

  readonly #redis: RedisClient;
  readonly #keys: ReadModelReader;
  readonly #subscriber: RedisClient;
  readonly #options: Required<ViewOptions>;
  readonly #listeners = new Set<(change: ViewChange) => void>();
  #pending: ChangeNotice[] = [];
  #lastAnomaly = '0-0';
  /** Nodes whose open anomalies were re-read at the last poll: read once more at the next (see #pollAnomalies). */
  #anomalyNodes = new Set<string>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #refreshing: Promise<void> = Promise.resolve();
  #stopped = false;
  #loaded = false;

  constructor(redis: RedisClient, subscriber: RedisClient, options: ViewOptions) {
    this.#redis = redis;
    this.#keys = new ReadModelReader(redis);
    this.#subscriber = subscriber;
    this.#options = { refreshMs: 200, pollMs: 2_000, resyncMs: 300_000, deadlineMs: 10_000, ...options };
    // A standalone connection writes a step's commands at once itself (#read), so it
    // needs no auto-pipelining: with it, the refreshes' commands and replies survived the
    // young-generation collections (about 6 MB a scavenge at 1,000 notices a second,
    // against under 1 MB without; docs/dashboard.md, Performance). A cluster keeps it
    // (it routes each command to its node's connection).
    if (!redis.isCluster) (redis.options as { enableAutoPipelining?: boolean }).enableAutoPipelining = false;
  }

  /**
   * One step of a refresh: the commands `issue` sends (synchronously) go out
   * in one write, the standalone connection's socket corked meanwhile (else
   * each is a system call of its own: 10–40 ms of a refresh on the event
   * loop); and a step not answered within `deadlineMs` fails, so a reply
   * that never comes ends in an error and a retry of that refresh, never in
   * a view that stops following. One timer per step, not one per command
   * (with ioredis' commandTimeout about three times as much survived the
   * young-generation collections).
   */
  #read<T>(issue: () => Promise<T>): Promise<T> {
    const socket = this.#redis.isCluster ? undefined : (this.#redis as { stream?: Socket }).stream;
    let pending: Promise<T>;
    if (socket === undefined || socket.destroyed) pending = issue();
    else {
      socket.cork();
      try {
        pending = issue();
      } finally {
        socket.uncork();
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no reply from Redis within ${this.#options.deadlineMs} ms`)),
        this.#options.deadlineMs,
      );
    });
    return Promise.race([pending, late]).finally(() => clearTimeout(timer));
  }

  /** Whether the first load of every node is done (requests are answered from it). */
  get loaded(): boolean {
    return this.#loaded;
  }

  onChange(listener: (change: ViewChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Subscribes first (nothing is missed between the load and the notices), then reads everything. */
  async start(): Promise<void> {
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel !== CHANGES_CHANNEL) return;
      try {
        this.#pending.push(JSON.parse(message) as ChangeNotice);
        this.#lastNoticeAt = Date.now();
      } catch {
        this.#options.logger.warn({ message }, 'unreadable change notice');
      }
    });
    // Subscribed only once the connection is ready: ioredis lets SUBSCRIBE through while it
    // is still setting the connection up, its ready check (INFO) then fails in subscriber
    // mode, and the reconnection that follows has forgotten the subscription, though
    // subscribe() resolved (3 starts in 20 never heard a notice).
    await whenReady(this.#subscriber, 30_000);
    // After a reconnection, notices sent meanwhile are lost: read everything again. And
    // subscribe again, whatever ioredis restores by itself (a second SUBSCRIBE is harmless).
    // A reconnection during the first load is covered by the load itself.
    this.#subscriber.on('ready', () => {
      void this.#subscriber.subscribe(CHANGES_CHANNEL).catch(() => {});
      if (this.#loaded) this.#pending.push({ cause: 'resync', keys: 'all', at: new Date().toISOString() });
    });
    await this.#subscriber.subscribe(CHANGES_CHANNEL);
    // The anomalies stream's position first: events written during the load are taken at the first poll.
    await this.#pollAnomalies(true);
    await this.#resync();
    await this.#pollLag();
    this.#loaded = true;
    this.version++;
    const every = (ms: number, work: () => Promise<void>) => {
      const tick = async () => {
        this.#timers.delete(timer);
        if (this.#stopped) return;
        await work().catch((error: unknown) =>
          this.#options.logger.warn({ err: error }, 'dashboard view: refresh failed'),
        );
        if (!this.#stopped) {
          timer = setTimeout(tick, ms);
          this.#timers.add(timer);
        }
      };
      let timer = setTimeout(tick, ms);
      this.#timers.add(timer);
    };
    every(this.#options.refreshMs, () => this.#serial(() => this.#takeNotices(), 'notices'));
    every(this.#options.pollMs, () =>
      this.#serial(async () => {
        await this.#pollAnomalies(false);
        // The aggregator writes system:metrics after announcing a round: read them here too.
        await this.#readSystem();
        await this.#pollLag();
      }, 'poll'),
    );
    every(this.#options.resyncMs, () =>
      this.#serial(() =>
        this.#resync().then(() =>
          this.#changed([{ cause: 'resync', keys: 'all', at: new Date().toISOString() }]),
        ),
      ),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await this.#refreshing.catch(() => {});
  }

  /** The node's 7-day series, read once and kept until the node's keys change. */
  async series(node: NodeEntry, reads: RedisClient = this.#redis): Promise<Series> {
    if (node.series !== undefined) return node.series;
    const generation = node.seriesGeneration;
    const series = parseSeries(await reads.get(readModelKeys.nodeTimeseries7d(node.id)));
    // Changed while it was read: answer it, keep nothing (the next ask reads the new one).
    if (node.seriesGeneration !== generation || node.series !== undefined) return series;
    const oldest = this.#seriesHeld.length >= SERIES_KEPT ? this.#seriesHeld.shift() : undefined;
    if (oldest !== undefined) oldest.series = undefined;
    node.series = series;
    this.#seriesHeld.push(node);
    return series;
  }

  readonly #seriesHeld: NodeEntry[] = [];
  #sorted: NodeEntry[] | undefined;

  /** Every node by id: the default order of the list, kept in order as nodes come and go. */
  byId(): readonly NodeEntry[] {
    this.#sorted ??= [...this.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return this.#sorted;
  }

  /** Where `id` is, or would go, in the sorted list (binary search). */
  #sortedIndex(id: string): number {
    const sorted = this.#sorted ?? [];
    let low = 0;
    let high = sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((sorted[middle] as NodeEntry).id < id) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** How the view is keeping up: notices waiting, and the refresh in hand (for the log and for tests). */
  state(): {
    pending: number;
    busy: string | undefined;
    lastRefreshAt: number;
    lastNoticeAt: number;
    lastFallbackAt: number;
    timers: number;
  } {
    return {
      pending: this.#pending.length,
      busy: this.#busy,
      lastRefreshAt: this.#lastRefreshAt,
      lastNoticeAt: this.#lastNoticeAt,
      lastFallbackAt: this.#lastFallbackAt,
      timers: this.#timers.size,
    };
  }

  #busy: string | undefined;
  #lastRefreshAt = 0;
  /** When the last change notice arrived; what the aggregator had delivered at the last poll; since when it moved unannounced. */
  #lastNoticeAt = 0;
  #delivered: string | undefined;
  #movedSince: number | undefined;
  #lastFallbackAt = Number.NEGATIVE_INFINITY;

  /** Refreshes one after another: a slow one never overlaps the next. */
  #serial(work: () => Promise<void>, name = work.name): Promise<void> {
    const run = async () => {
      this.#busy = name;
      try {
        await work();
      } finally {
        this.#busy = undefined;
        this.#lastRefreshAt = Date.now();
      }
    };
    this.#refreshing = this.#refreshing.then(run, run);
    return this.#refreshing;
  }

  async #takeNotices(): Promise<void> {
    if (this.#pending.length === 0) return;
    const notices = this.#pending;
    this.#pending = [];
    const latestOnly = new Set<string>();
    const latest = new Set<string>();
    const all = new Set<string>();
    const ranges = new Set<Range>();
    let everything = false;
    for (const notice of notices) {
      if (notice.cause === 'resync') everything = true;
      else if (notice.cause === 'clock') for (const r of notice.ranges ?? []) ranges.add(r as Range);
      else {
        // Any other `keys` (a newer aggregator's) is read as `latest`: metadata and latest.
        const to = notice.keys === 'all' ? all : notice.keys === 'latest-only' ? latestOnly : latest;
        for (const id of notice.nodes ?? []) to.add(id);
      }
    }
    try {
      if (everything) await this.#resync();
      else {
        for (const id of all) latest.delete(id);
        for (const id of latestOnly) if (all.has(id) || latest.has(id)) latestOnly.delete(id);
        await this.#readNodes([...all], 'all');
        await this.#readNodes([...latest], 'latest');
        await this.#readNodes([...latestOnly], 'latest-only');
        if (ranges.size > 0) await this.#readRanges([...this.nodes.keys()], [...ranges]);
        if (all.size > 0 || ranges.size > 0) await this.#readSystem();
      }
    } catch (error) {
      // Taken again at the next refresh: a notice is never dropped for a failed read.
      this.#pending = notices.concat(this.#pending);
      throw error;
    }
    this.#changed(notices);
  }

  /** One version per refresh, however many notices it took in; each is announced. */
  #changed(changes: readonly ViewChange[]): void {
    this.version++;
    for (const change of changes) for (const listener of this.#listeners) listener(change);
  }

  /** The node list and every key, from scratch: at start, after a lost subscription, and now and then. */
  async #resync(): Promise<void> {
    const ids = await this.#read(() => this.#redis.lrange(readModelKeys.nodesAll, 0, -1));
    const listed = new Set(ids);
    for (const id of this.nodes.keys()) {
      if (!listed.has(id)) {
        this.nodes.delete(id);
        this.membership++;
        this.#sorted?.splice(this.#sortedIndex(id), 1);
      }
    }
    await this.#readNodes(ids, 'all');
    await this.#readSystem();
  }

  async #readNodes(ids: readonly string[], what: 'latest-only' | 'latest' | 'all'): Promise<void> {
    // Smaller chunks once clients are served: each is one turn of the event loop.
    const size = this.#loaded ? CHUNK_SERVING : CHUNK;
    for (let i = 0; i < ids.length; i += size) {
      const chunk = ids.slice(i, i + size);
      const plans = chunk.map((id) => this.#plan(id, what));
      const replies = await this.#read(() => this.#keys.read(plans.flatMap((p) => p.reads)));
      let at = 0;
      for (const plan of plans) {
        this.#takeNode(plan, replies.slice(at, at + plan.reads.length));
        at += plan.reads.length;
      }
    }
  }

  /**
   * Which of a node's keys a refresh reads: metadata (unless only latest
   * changed) and latest, and the rest when asked or not yet held.
   */
  #plan(id: string, what: 'latest-only' | 'latest' | 'all'): NodePlan {
    const held = this.nodes.get(id);
    const everything = what === 'all' || !this.#loaded || held === undefined || !hasMetrics(held);
    const metadata = everything || what !== 'latest-only';
    const reads: KeyRead[] = [];
    if (metadata) reads.push({ key: readModelKeys.nodeMetadata(id), what: 'hash' });
    reads.push({ key: readModelKeys.nodeLatest(id), what: 'hash' });
    if (everything) {
      for (const r of RANGES) reads.push({ key: readModelKeys.nodeMetrics(id, r), what: 'hash' });
      reads.push({ key: anomalyKeys.open(id), what: 'values' });
    }
    return { id, metadata, everything, reads };
  }

  /**
   * Takes in one node's keys. A key this cannot read (a wrong type left by
   * an older writer, an unreadable anomaly) is logged and the rest of the
   * node skipped, so one bad key never stops the others from loading;
   * metadata and latest are taken in even when a metrics or anomalies key
   * cannot be read.
   */
  #takeNode(plan: NodePlan, replies: readonly KeyReply[]): void {
    const { id } = plan;
    try {
      const first = plan.metadata ? 1 : 0;
      const latest = flatOf(replies[first]);
      const entry = this.#entry(id);
      // What did not change stays the object already held (see sameFields).
      if (plan.metadata) {
        const parsedMetadata = parseMetadata(id, fieldRecord(flatOf(replies[0])));
        if (!sameFields(entry.metadata, parsedMetadata)) {
          entry.metadata = parsedMetadata;
          this.membership++;
        }
      }
      const parsedLatest = parseLatest(fieldRecord(latest));
      if (!sameFields(entry.latest, parsedLatest)) {
        entry.latest = parsedLatest;
        entry.latestAt = parsedLatest === null ? Number.NaN : Date.parse(parsedLatest.timestamp);
      }
      if (!plan.everything) return;
      const metrics = RANGES.map((_, k) => fieldRecord(flatOf(replies[2 + k])));
      const open = flatOf(replies[2 + RANGES.length]).map((json) => JSON.parse(json) as AnomalyRecord);
      RANGES.forEach((r, k) => {
        const parsed = parseMetrics(metrics[k] ?? {});
        if (!sameFields(entry.metrics[r], parsed)) entry.metrics[r] = parsed;
      });
      entry.open = open;
      dropSeries(entry);
    } catch (error) {
      this.#options.logger.warn(
        { err: error, node: id },
        'dashboard view: a key of this node cannot be read',
      );
    }
  }

  async #readRanges(ids: readonly string[], ranges: readonly Range[]): Promise<void> {
    const size = this.#loaded ? CHUNK_SERVING : CHUNK;
    for (let i = 0; i < ids.length; i += size) {
      const chunk = ids.slice(i, i + size);
      const reads = chunk.flatMap((id) =>
        ranges.map((r): KeyRead => ({ key: readModelKeys.nodeMetrics(id, r), what: 'hash' })),
      );
      const replies = await this.#read(() => this.#keys.read(reads));
      chunk.forEach((id, n) => {
        const entry = this.nodes.get(id);
        if (entry === undefined) return;
        ranges.forEach((r, k) => {
          const reply = replies[n * ranges.length + k];
          if (reply instanceof Error) {
            this.#options.logger.warn(
              { err: reply, node: id },
              'dashboard view: a key of this node cannot be read',
            );
            return;
          }
          const parsed = parseMetrics(fieldRecord(reply ?? []));
          if (!sameFields(entry.metrics[r], parsed)) entry.metrics[r] = parsed;
          if (r === '7d') dropSeries(entry);
        });
      });
    }
  }

  async #readSystem(): Promise<void> {
    const hashes = await this.#read(() =>
      Promise.all(RANGES.map((r) => this.#redis.hgetall(readModelKeys.systemMetrics(r)))),
    );
    RANGES.forEach((r, k) => {
      this.system[r] = parseSystem(hashes[k] ?? {});
    });
  }

  #entry(id: string): NodeEntry {
    let entry = this.nodes.get(id);
    if (entry === undefined) {
      entry = {
        id,
        metadata: parseMetadata(id, {}),
        latest: null,
        latestAt: Number.NaN,
        metrics: {},
        open: [],
        series: undefined,
        seriesGeneration: 0,
      };
      this.nodes.set(id, entry);
      this.membership++;
      // Kept in order as nodes join (a re-sort of 100,000 took 175 ms).
      this.#sorted?.splice(this.#sortedIndex(id), 0, entry);
    }
    return entry;
  }

  /**
   * Anomalies change apart from the notices (the aggregator's copy loop
   * writes them): the `anomalies` stream says which nodes' open ones did.
   */
  async #pollAnomalies(first: boolean): Promise<void> {
    if (first) {
      const newest = (await this.#read(() =>
        this.#redis.xrevrange(anomalyKeys.stream, '+', '-', 'COUNT', 1),
      )) as Entry[];
      this.#lastAnomaly = newest[0]?.[0] ?? '0-0';
      this.recent = await this.#readRecent();
      return;
    }
    const entries = (await this.#read(() =>
      this.#redis.xrange(anomalyKeys.stream, `(${this.#lastAnomaly}`, '+', 'COUNT', 10_000),
    )) as Entry[];
    // The sink appends an event before it updates the node's open anomalies:
    // nodes named at the last poll are read once more, so none is left behind.
    const nodes = new Set<string>(this.#anomalyNodes);
    for (const [, fields] of entries) {
      const json = fields[fields.indexOf('event') + 1];
      if (json === undefined) continue;
      const nodeId = (JSON.parse(json) as { node_id?: string }).node_id;
      if (nodeId !== undefined) nodes.add(nodeId);
    }
    if (nodes.size === 0) return;
    await this.#read(() =>
      Promise.all(
        [...nodes].map(async (id) => {
          const open = await this.#redis.hvals(anomalyKeys.open(id));
          const entry = this.nodes.get(id);
          if (entry !== undefined) entry.open = open.map((json) => JSON.parse(json) as AnomalyRecord);
        }),
      ),
    );
    this.recent = await this.#readRecent();
    this.#lastAnomaly = entries.at(-1)?.[0] ?? this.#lastAnomaly;
    this.#anomalyNodes = new Set(entries.length === 0 ? [] : nodes);
    this.#changed([{ cause: 'anomalies', nodes: [...nodes], at: new Date().toISOString() }]);
  }

  async #readRecent(): Promise<Record<string, unknown>[]> {
    const list = await this.#read(() => this.#redis.lrange(anomalyKeys.recent, 0, -1));
    return list.map((json) => JSON.parse(json) as Record<string, unknown>);
  }

  async #pollLag(): Promise<void> {
    const lag: Record<string, number> = { [GROUPS.aggregator]: 0, [GROUPS.archiver]: 0 };
    let delivered = '';
    for (const shard of allShardKeys(this.#options.shards)) {
      for (const group of await this.#read(() => groupsOf(this.#redis, shard.stream))) {
        if (group.name in lag) lag[group.name] = (lag[group.name] ?? 0) + (group.lag ?? 0);
        if (group.name === GROUPS.aggregator) delivered += `${group.lastDelivered},`;
      }
    }
    this.lag = lag;
    this.#checkNotices(delivered);
  }

  /**
   * Notices are hints (docs/read-model.md): one can be lost. When the
   * aggregator has taken new entries but no notice came for a while, the
   * view reads everything again (and subscribes again), at most every 30 s.
   */
  #checkNotices(delivered: string): void {
    const now = Date.now();
    const moved = this.#delivered !== undefined && delivered !== this.#delivered;
    this.#delivered = delivered;
    if (moved) this.#movedSince ??= now;
    const silent = this.#movedSince !== undefined && this.#lastNoticeAt < this.#movedSince;
    if (!silent || now - (this.#movedSince ?? now) < NOTICE_GRACE_MS) return;
    this.#movedSince = undefined;
    if (now - this.#lastFallbackAt < FALLBACK_EVERY_MS) return;
    this.#lastFallbackAt = now;
    this.#options.logger.warn(
      { silentMs: now - this.#lastNoticeAt },
      'dashboard view: the aggregator moved on but no change notice came; reading everything again',
    );
    void this.#subscriber.subscribe(CHANGES_CHANNEL).catch(() => {});
    this.#pending.push({ cause: 'resync', keys: 'all', at: new Date(now).toISOString() });
  }

  /** Open anomalies of every node, as the API shows them. */
  openAnomalies(): AnomalyView[] {
    const all: AnomalyView[] = [];
    for (const node of this.nodes.values()) {
      for (const record of node.open) all.push(openAnomalyView(record, node.metadata.district_id));
    }
    return all;
  }

  recentAnomalies(): AnomalyView[] {
    return this.recent.map((entry) =>
      recentAnomalyView(entry, this.nodes.get(String(entry.node_id))?.metadata.district_id ?? ''),
    );
  }
}
