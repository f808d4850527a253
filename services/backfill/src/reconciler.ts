import { setTimeout as sleep } from 'node:timers/promises';
import {
  allShardKeys,
  BACKFILL_PANE_WIDTH,
  type Clock,
  compareEntryIds,
  type NodeBackfill,
  type NodeMetadata,
  PANE_WIDTH,
  type Reading,
  type ShardKeys,
  shardOf,
} from '@streamgauge/core';
import {
  type CacheStatus,
  type CutMark,
  markCut,
  ReconcileControl,
  type ReconcileOffers,
  type ReconcileScope,
  type RedisClient,
  type ShardReconcileReport,
  streamHistory,
} from '@streamgauge/redis';
import {
  type BackfillStatement,
  backfillStatements,
  type NodeRow,
  nodeOfRow,
  paneOfRow,
  readingOfRow,
  type Warehouse,
} from '@streamgauge/warehouse';
import type { Logger } from 'pino';
import { compareWithPersisted } from './persistedComparison.ts';

export interface ReconcileProgress {
  /** query: warehouse statements done; apply: shards whose aggregator applied the panes. */
  readonly phase: 'query' | 'publish' | 'apply';
  readonly done: number;
  readonly total: number;
}

/** A run's report: written to `reconcile:last` and the log. */
export interface ReconcileReport {
  readonly run: string;
  readonly request?: string;
  /** A rebuild's nodes and start (absent: the whole live state). */
  readonly scope?: ReconcileScope;
  readonly status: 'complete' | 'partial';
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  /** Time spent reading the warehouse. */
  readonly queryMs: number;
  /** Per shard, the stream position the warehouse was read up to (later entries are replayed from the stream). */
  readonly cuts: readonly string[];
  readonly statements: number;
  readonly rows: number;
  readonly nodes: number;
  readonly payloadBytes: number;
  /** Shards whose aggregator applied the panes; pending: no report in time; skipped: refused (see warnings). */
  readonly shards: {
    readonly total: number;
    readonly applied: number;
    readonly pending: readonly number[];
    readonly skipped: readonly number[];
  };
  /** Nodes offered to the aggregators: those whose persisted windows differ from the warehouse's. */
  readonly nodesOffered: number;
  /** Nodes that matched the aggregators' persisted windows: left out of the offer. */
  readonly nodesMatched: number;
  /** Panes compared: by the backfill in the nodes that matched, by the aggregators in those offered. */
  readonly panesCompared: number;
  readonly panesChanged: number;
  readonly nodesCreated: number;
  /** Largest absolute drift found per metric, over every shard. */
  readonly drift: Record<string, number>;
  readonly warnings: readonly string[];
}

export interface ReconcilerOptions {
  readonly shards: number;
  readonly aheadMs: number;
  readonly concurrency: number;
  readonly applyTimeoutMs: number;
  /** How long offers and reports are kept, seconds. */
  readonly ttlSeconds: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** One node's backfill being assembled: panes appended as statements complete. */
class NodeAccumulator {
  panes = new Float64Array(64 * BACKFILL_PANE_WIDTH);
  length = 0;
  node: NodeRow | undefined;
  readonly readings: Reading[] = [];

  push(ring: number, pane: number, content: Float64Array): void {
    if (this.length + BACKFILL_PANE_WIDTH > this.panes.length) {
      const grown = new Float64Array(this.panes.length * 2);
      grown.set(this.panes);
      this.panes = grown;
    }
    this.panes[this.length] = ring;
    this.panes[this.length + 1] = pane;
    this.panes.set(content.subarray(0, PANE_WIDTH), this.length + 2);
    this.length += BACKFILL_PANE_WIDTH;
  }
}

/**
 * One backfill run: reads the panes of the live windows from the warehouse,
 * up to a stream position (the cut) that every archived shard has passed,
 * and offers them to the aggregators, which replay their stream after the
 * cut onto them and replace the live panes that differ (Aggregator.reconcile).
 * So readings arriving meanwhile are neither lost nor counted twice.
 */
export class Reconciler {
  readonly #redis: RedisClient;
  readonly #control: ReconcileControl;
  readonly #warehouse: Warehouse;
  readonly #offers: ReconcileOffers;
  readonly #status: CacheStatus;
  readonly #options: ReconcilerOptions;

  constructor(
    redis: RedisClient,
    warehouse: Warehouse,
    parts: { offers: ReconcileOffers; status: CacheStatus },
    options: ReconcilerOptions,
  ) {
    this.#redis = redis;
    this.#control = new ReconcileControl(redis);
    this.#warehouse = warehouse;
    this.#offers = parts.offers;
    this.#status = parts.status;
    this.#options = options;
  }

  /**
   * `holding` says whether this process still holds the scheduler's lock:
   * checked before anything is offered, so two runs never offer at once.
   */
  async run(
    options: {
      request?: string;
      /** Only these nodes, only panes from `since` on (`streamgauge rebuild`). */
      scope?: ReconcileScope;
      onProgress?: (progress: ReconcileProgress) => void;
      holding?: () => Promise<boolean>;
      /** Aborted when the process stops: the run ends at its next step rather than waiting out its timeouts. */
      signal?: AbortSignal;
    } = {},
  ): Promise<ReconcileReport> {
    const signal = options.signal;
    const scope = options.scope;
    const wanted = scope?.nodes === undefined ? undefined : new Set(scope.nodes);
    const { clock, logger } = this.#options;
    const started = clock.now();
    const run = `${started}-${Math.random().toString(36).slice(2, 8)}`;
    // Also in Redis, for a `backfill --now` that asked this process for the run.
    const publish = (p: Record<string, unknown>) =>
      this.#control.publishProgress({ run, request: options.request, ...p, at: clock.now() }).catch(() => {});
    let failed = false;
    const progress = (p: ReconcileProgress) => {
      if (failed) return;
      options.onProgress?.(p);
      void publish({ ...p });
    };
    await this.#status.started(run, started);
    try {
      const shards = allShardKeys(this.#options.shards);
      signal?.throwIfAborted();
      const marks = await this.#cuts(shards);
      const cuts = marks.map((m) => m.cut);
      // Rows accepted before the earliest cut are within every shard's cut:
      // summed in SQL. Later ones come back one by one and are kept when
      // within their own shard's cut.
      const cutTime = Math.min(...cuts.map((cut) => Number(cut.slice(0, cut.indexOf('-')))));
      const statements = backfillStatements(this.#warehouse.dialect, this.#warehouse.table, {
        now: started,
        aheadMs: this.#options.aheadMs,
        cutTime,
        ...(scope?.since !== undefined && { since: scope.since }),
      });
      logger.info({ run, cuts, statements: statements.length, scope }, 'backfill started');
      const nodes = new Map<string, NodeAccumulator>();
      let rows = 0;
      let done = 0;
      progress({ phase: 'query', done, total: statements.length });
      await forEachBounded(statements, this.#options.concurrency, async (statement) => {
        const result = await this.#warehouse.select(statement.statement);
        rows += result.length;
        collect(
          nodes,
          statement,
          result,
          (nodeId, entry) => {
            const cut = cuts[shardOf(nodeId, shards.length)] ?? '0-0';
            return compareEntryIds(entry, cut) <= 0;
          },
          wanted,
        );
        progress({ phase: 'query', done: ++done, total: statements.length });
      });
      signal?.throwIfAborted();
      const queryMs = clock.now() - started;
      if (options.holding && !(await options.holding())) {
        throw new Error(
          `backfill ${run}: the scheduler's lock was lost to another process; nothing was offered`,
        );
      }

      const byShard = shards.map(() => [] as NodeBackfill[]);
      for (const [nodeId, acc] of nodes) {
        byShard[shardOf(nodeId, shards.length)]?.push({
          nodeId,
          panes: acc.panes.subarray(0, acc.length),
          metadata: (acc.node?.metadata ?? {}) as NodeMetadata,
          readings: acc.readings,
          ...(acc.node && { latest: acc.node.latest }),
        });
      }
      let payloadBytes = 0;
      const matched = { nodes: 0, panes: 0, offered: 0 };
      for (const [s, shard] of shards.entries()) {
        const mark = marks[s] as CutMark;
        const comparison = await compareWithPersisted(this.#redis, shard, byShard[s] ?? [], {
          cut: mark.cut,
          aheadMs: this.#options.aheadMs,
          now: clock.now(),
          ...(wanted !== undefined && { wanted }),
          ...(scope?.since !== undefined && { since: scope.since }),
        });
        matched.nodes += comparison.matched;
        matched.offered += comparison.differing.length;
        matched.panes += comparison.panesCompared;
        payloadBytes += await this.#offers.publish(
          shard,
          {
            run,
            ...mark,
            at: started,
            nodes: comparison.differing.map((n) => n.nodeId),
            ...(scope !== undefined && { scope }),
            matched: comparison.matched,
          },
          comparison.differing,
          this.#options.ttlSeconds,
        );
        progress({ phase: 'publish', done: s + 1, total: shards.length });
      }

      const reports = await this.#awaitReports(run, shards.length, progress, signal);
      const report = summarise({
        run,
        ...(options.request && { request: options.request }),
        ...(scope !== undefined && { scope }),
        started,
        finished: clock.now(),
        queryMs,
        cuts,
        statements: statements.length,
        rows,
        nodes: nodes.size,
        payloadBytes,
        matched,
        shards: shards.length,
        reports,
      });
      await this.#control.publishReport(report);
      // A rebuild of some nodes or recent panes is not a refresh of the whole cache.
      if (report.status === 'complete') {
        if (scope === undefined) await this.#status.refreshed(run, clock.now());
      } else
        await this.#status.failed(new Error(incomplete(report, this.#options.applyTimeoutMs)), clock.now());
      logger[report.status === 'complete' ? 'info' : 'warn'](report, 'backfill finished');
      return report;
    } catch (error) {
      failed = true;
      await this.#status.failed(error, clock.now()).catch(() => {});
      await publish({ phase: 'failed', error: (error as Error).message });
      logger.error({ err: error, run }, 'backfill failed');
      throw error;
    }
  }

  /**
   * Per shard, the stream position the warehouse is read up to: every entry
   * up to it is in the warehouse, every one after it is in the stream (or
   * was trimmed, which the aggregator notices). When the archiver has
   * every entry of the shard, that is the present (Redis' clock, read first:
   * an entry appended later is after it), so an idle shard does not hold the
   * cut back; otherwise its archive watermark. A shard with entries the
   * archiver never processed has no safe cut short of its start, which
   * would replay the whole stream: the run fails and says so.
   */
  /** Why a run cannot take its cut yet (a shard holds entries and no archive watermark), or undefined. */
  async waitingFor(): Promise<string | undefined> {
    for (const shard of allShardKeys(this.#options.shards)) {
      const [watermark, { lastGeneratedId }] = await Promise.all([
        this.#redis.get(shard.archive.watermark),
        streamHistory(this.#redis, shard.stream),
      ]);
      if (watermark === null && lastGeneratedId !== '0-0') return unarchived(shard);
    }
    return undefined;
  }

  async #cuts(shards: readonly ShardKeys[]): Promise<CutMark[]> {
    const [seconds, micros] = (await this.#redis.time()) as [string | number, string | number];
    const present = `${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - 1}-0`;
    return Promise.all(
      shards.map(async (shard) => {
        const [watermark, { lastGeneratedId }] = await Promise.all([
          this.#redis.get(shard.archive.watermark),
          streamHistory(this.#redis, shard.stream),
        ]);
        let cut: string;
        if (
          lastGeneratedId === '0-0' ||
          (watermark !== null && compareEntryIds(watermark, lastGeneratedId) >= 0)
        ) {
          cut = present;
        } else if (watermark === null) {
          throw new Error(unarchived(shard));
        } else cut = watermark;
        return markCut(this.#redis, shard, cut);
      }),
    );
  }

  async #awaitReports(
    run: string,
    shards: number,
    progress: (p: ReconcileProgress) => void,
    signal: AbortSignal | undefined,
  ): Promise<ShardReconcileReport[]> {
    const deadline = this.#options.clock.now() + this.#options.applyTimeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      const reports = await this.#offers.reports(run);
      progress({ phase: 'apply', done: reports.length, total: shards });
      if (reports.length >= shards || this.#options.clock.now() >= deadline) return reports;
      // The offers stay in Redis: an aggregator that takes one after an abort applies it as usual.
      await sleep(200, undefined, { signal }).catch(() => {});
    }
  }
}

function collect(
  nodes: Map<string, NodeAccumulator>,
  statement: BackfillStatement,
  rows: readonly Record<string, unknown>[],
  withinCut: (nodeId: string, entry: string) => boolean,
  /** Only these nodes (a rebuild's `--nodes`); absent: all. */
  wanted?: ReadonlySet<string>,
): void {
  const at = (id: string) => {
    let acc = nodes.get(id);
    if (acc === undefined) {
      acc = new NodeAccumulator();
      nodes.set(id, acc);
    }
    return acc;
  };
  if (statement.kind === 'recent') {
    for (const row of rows) {
      const { reading, entry } = readingOfRow(row);
      if (wanted !== undefined && !wanted.has(reading.node_id)) continue;
      if (withinCut(reading.node_id, entry)) at(reading.node_id).readings.push(reading);
    }
    return;
  }
  if (statement.kind === 'nodes') {
    for (const row of rows) {
      const node = nodeOfRow(row);
      if (wanted !== undefined && !wanted.has(node.nodeId)) continue;
      at(node.nodeId).node = node;
    }
    return;
  }
  for (const row of rows) {
    const id = String(row.node_id);
    if (wanted === undefined || wanted.has(id)) at(id).push(statement.ring, Number(row.pane), paneOfRow(row));
  }
}

/** Runs `work` over `items`, at most `limit` at a time; the first failure fails the whole. */
async function forEachBounded<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function summarise(run: {
  run: string;
  request?: string;
  scope?: ReconcileScope;
  started: number;
  finished: number;
  queryMs: number;
  cuts: readonly string[];
  statements: number;
  rows: number;
  nodes: number;
  payloadBytes: number;
  matched: { nodes: number; panes: number; offered: number };
  shards: number;
  reports: readonly ShardReconcileReport[];
}): ReconcileReport {
  const drift: Record<string, number> = {};
  for (const report of run.reports) {
    for (const [metric, value] of Object.entries(report.drift))
      drift[metric] = Math.max(drift[metric] ?? 0, value);
  }
  const applied = new Set(run.reports.filter((r) => r.skipped === undefined).map((r) => r.shard));
  const reported = new Set(run.reports.map((r) => r.shard));
  const pending = Array.from({ length: run.shards }, (_, s) => s).filter((s) => !reported.has(s));
  const skipped = run.reports.filter((r) => r.skipped !== undefined).map((r) => r.shard);
  const sum = (f: (r: ShardReconcileReport) => number) => run.reports.reduce((t, r) => t + f(r), 0);
  return {
    run: run.run,
    ...(run.request && { request: run.request }),
    ...(run.scope !== undefined && { scope: run.scope }),
    status: pending.length === 0 && skipped.length === 0 ? 'complete' : 'partial',
    startedAt: new Date(run.started).toISOString(),
    finishedAt: new Date(run.finished).toISOString(),
    durationMs: run.finished - run.started,
    queryMs: run.queryMs,
    cuts: run.cuts,
    statements: run.statements,
    rows: run.rows,
    nodes: run.nodes,
    payloadBytes: run.payloadBytes,
    shards: { total: run.shards, applied: applied.size, pending, skipped },
    nodesOffered: run.matched.offered,
    nodesMatched: run.matched.nodes,
    panesCompared: run.matched.panes + sum((r) => r.panesCompared),
    panesChanged: sum((r) => r.panesChanged),
    nodesCreated: sum((r) => r.created),
    drift,
    warnings: run.reports.flatMap((r) => (r.skipped ? [`shard ${r.shard}: ${r.skipped}`] : [])),
  };
}

function incomplete(report: ReconcileReport, timeoutMs: number): string {
  const parts: string[] = [];
  if (report.shards.pending.length > 0) {
    parts.push(
      `shards ${report.shards.pending.join(', ')} did not apply the panes within ${timeoutMs} ms (is an aggregator running?)`,
    );
  }
  if (report.shards.skipped.length > 0) parts.push(`refused: ${report.warnings.join('; ')}`);
  return `backfill ${report.run}: ${parts.join('; ')}`;
}

function unarchived(shard: ShardKeys): string {
  return `${shard.stream} holds entries the archiver never processed (no ${shard.archive.watermark}): run \`streamgauge archive\` (or start) first`;
}
