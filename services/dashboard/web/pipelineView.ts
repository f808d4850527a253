import { isHandledGlobally } from './api.ts';
import { fill, h, reconcileRows } from './dom.ts';
import { count, duration, num, parseTime } from './format.ts';
import { LatestOnly } from './schedule.ts';
import type { View, ViewContext } from './view.ts';
import { notice, timeElement } from './widgets.ts';

/**
 * `#/pipeline`: what `streamgauge status --json` prints. That shape
 * belongs to the CLI, not to this page's contract, so it is read
 * defensively: a missing field shows "—", an unknown one is listed as is.
 */

type Json = Record<string, unknown>;

const POLL_MS = 5000;

function record(value: unknown): Json | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function numberOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function text(value: unknown): string {
  if (value === null || value === undefined || value === '') return '—';
  return typeof value === 'string' ? value : String(value);
}

/** A stream id ("1796300000000-42") is a time in ms and a sequence number. */
function streamIdTime(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const match = /^(\d{10,})-\d+$/.exec(id);
  return match ? new Date(Number(match[1])).toISOString() : undefined;
}

export class PipelineView implements View {
  readonly element: HTMLElement;
  readonly title = 'Pipeline';
  readonly #ctx: ViewContext;
  readonly #latest = new LatestOnly();
  readonly #health = h('div', { id: 'pipeline-health', class: 'health' });
  readonly #error = h('div');
  readonly #shards = h('tbody');
  readonly #groups = h('tbody');
  readonly #reconcile = h('div', { id: 'pipeline-reconcile' });
  readonly #cache = h('div', { id: 'pipeline-cache' });
  readonly #other = h('div');
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(ctx: ViewContext) {
    this.#ctx = ctx;
    const head = (...labels: string[]) =>
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          labels.map((l, i) => h('th', { scope: 'col', class: i > 0 ? 'num' : null }, l)),
        ),
      );
    this.element = h(
      'div',
      { class: 'view pipeline' },
      h('h1', { tabindex: -1 }, 'Pipeline'),
      this.#error,
      this.#health,
      h(
        'section',
        { class: 'panel' },
        h(
          'div',
          {
            class: 'table-wrap',
            role: 'region',
            'aria-label': 'Consumer groups (scrolls sideways)',
            tabindex: 0,
          },
          h(
            'table',
            { id: 'pipeline-groups', class: 'data' },
            h('caption', null, 'Consumer groups per stream shard'),
            head(
              'Stream / group',
              'Lag (entries)',
              'Pending (entries)',
              'Oldest pending',
              'Consumers',
              'Delivered up to',
            ),
            this.#groups,
          ),
        ),
      ),
      h(
        'section',
        { class: 'panel' },
        h(
          'div',
          {
            class: 'table-wrap',
            role: 'region',
            'aria-label': 'Stream shards (scrolls sideways)',
            tabindex: 0,
          },
          h(
            'table',
            { id: 'pipeline-shards', class: 'data' },
            h('caption', null, 'Stream shards'),
            head('Stream', 'Entries', 'First entry', 'Last entry', 'Dead letters', 'Archived up to'),
            this.#shards,
          ),
        ),
      ),
      h(
        'div',
        { class: 'columns' },
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'reconcile-heading' },
          h('h2', { id: 'reconcile-heading' }, 'Last reconcile'),
          this.#reconcile,
        ),
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'cache-heading' },
          h('h2', { id: 'cache-heading' }, 'Cache'),
          this.#cache,
        ),
      ),
      this.#other,
    );
    // Lag grows without any change event when a consumer stops: poll as well.
    this.#timer = setInterval(() => void this.refresh(), POLL_MS);
  }

  wants(): boolean {
    return true;
  }

  setQuery(): void {
    void this.refresh();
  }

  dispose(): void {
    clearInterval(this.#timer);
    this.#latest.abort();
  }

  async refresh(): Promise<void> {
    const signal = this.#latest.begin();
    try {
      const status = await this.#ctx.api.pipeline(signal);
      if (signal.aborted) return;
      fill(this.#error);
      this.#render(record(status) ?? {});
    } catch (error) {
      if (signal.aborted || isHandledGlobally(error)) return;
      fill(this.#error, notice(`Could not load the pipeline status: ${(error as Error).message}`, 'error'));
    }
  }

  #time(value: unknown): Node | string {
    return typeof value === 'string' ? timeElement(this.#ctx.time, value) : '—';
  }

  #streamPosition(id: unknown): Node | string {
    const at = streamIdTime(id);
    if (at === undefined)
      return parseTime(typeof id === 'string' ? id : undefined) ? this.#time(id) : text(id);
    return h('span', { title: String(id) }, timeElement(this.#ctx.time, at));
  }

  #render(report: Json): void {
    const problems = list(report.problems).map(text);
    const healthy = typeof report.healthy === 'boolean' ? report.healthy : problems.length === 0;
    this.#health.dataset.healthy = String(healthy);
    fill(
      this.#health,
      h(
        'p',
        { class: 'health-flag' },
        h('span', { 'aria-hidden': 'true' }, healthy ? '✓ ' : '✗ '),
        healthy ? 'Healthy' : `Unhealthy: ${problems.length} problem${problems.length === 1 ? '' : 's'}`,
      ),
      problems.length > 0
        ? h(
            'ul',
            { id: 'pipeline-problems' },
            problems.map((p) => h('li', null, p)),
          )
        : null,
    );

    const shards = list(report.shards).map((s) => record(s) ?? {});
    reconcileRows(
      this.#shards,
      shards.map((s) =>
        h(
          'tr',
          { 'data-stream': text(s.stream) },
          h('th', { scope: 'row' }, text(s.stream)),
          h('td', { class: 'num' }, count(numberOf(s.length))),
          h('td', { class: 'num' }, this.#time(s.firstEntryAt)),
          h('td', { class: 'num' }, this.#time(s.lastEntryAt)),
          h(
            'td',
            { class: 'num', 'data-dead-letters': numberOf(s.deadLetters) ?? '' },
            count(numberOf(s.deadLetters)),
          ),
          h('td', { class: 'num' }, this.#streamPosition(s.archiveWatermark)),
        ),
      ),
      (row) => row.dataset.stream,
    );
    reconcileRows(
      this.#groups,
      shards.flatMap((s) =>
        list(s.groups).map((g) => {
          const group = record(g) ?? {};
          const consumers = list(group.consumers).map((c) => record(c) ?? {});
          const oldest = numberOf(group.oldestPendingAgeMs);
          return h(
            'tr',
            { 'data-stream': text(s.stream), 'data-group': text(group.name) },
            h('th', { scope: 'row' }, `${text(s.stream)} / ${text(group.name)}`),
            h('td', { class: 'num' }, count(numberOf(group.lag))),
            h('td', { class: 'num' }, count(numberOf(group.pending))),
            h('td', { class: 'num' }, oldest === undefined ? '—' : duration(oldest / 1000)),
            h(
              'td',
              { class: 'num' },
              consumers.length === 0
                ? '0'
                : h(
                    'span',
                    {
                      title: consumers
                        .map(
                          (c) =>
                            `${text(c.name)}: pending ${count(numberOf(c.pending))}, idle ${duration((numberOf(c.idleMs) ?? 0) / 1000)}`,
                        )
                        .join('\n'),
                    },
                    count(consumers.length),
                  ),
            ),
            h('td', { class: 'num' }, this.#streamPosition(group.lastDelivered)),
          );
        }),
      ),
      (row) => `${row.dataset.stream}\n${row.dataset.group}`,
    );
    if (shards.length === 0)
      fill(this.#shards, h('tr', null, h('td', { colspan: 6 }, 'No stream shard reported.')));

    this.#renderReconcile(record(report.reconcile));
    this.#renderCache(record(report.cache));
    const known = new Set(['healthy', 'problems', 'shards', 'reconcile', 'cache']);
    const extra = Object.entries(report).filter(([key]) => !known.has(key));
    fill(
      this.#other,
      extra.length === 0
        ? null
        : h('section', { class: 'panel' }, h('h2', null, 'Other'), this.#facts(Object.fromEntries(extra))),
    );
  }

  #renderReconcile(r: Json | undefined): void {
    if (r === undefined) {
      fill(this.#reconcile, h('p', null, 'No reconcile has run.'));
      return;
    }
    const drift = record(r.drift);
    const { drift: _drift, ...rest } = r;
    fill(
      this.#reconcile,
      h(
        'p',
        { 'data-reconcile-status': text(r.status) },
        h('strong', null, text(r.status)),
        ' at ',
        this.#time(r.finishedAt),
        typeof r.durationMs === 'number' ? ` in ${duration(r.durationMs / 1000)}` : '',
        typeof r.panesChanged === 'number' ? `; ${count(r.panesChanged)} panes changed` : '',
      ),
      h('h3', null, 'Drift (largest absolute difference found, per metric)'),
      drift === undefined || Object.keys(drift).length === 0
        ? h('p', null, 'None reported.')
        : h(
            'dl',
            { class: 'facts', id: 'reconcile-drift' },
            Object.entries(drift).map(([metric, value]) => [
              h('dt', null, metric),
              h('dd', null, this.#value(value)),
            ]),
          ),
      h('details', null, h('summary', null, 'All fields'), this.#facts(rest)),
    );
  }

  #renderCache(c: Json | undefined): void {
    if (c === undefined) {
      fill(this.#cache, h('p', null, 'Not reported.'));
      return;
    }
    fill(
      this.#cache,
      h('p', { 'data-cache-status': text(c.status) }, 'Status: ', h('strong', null, text(c.status))),
      this.#facts(
        // The byte count repeats memoryUsed, which says it readably.
        Object.fromEntries(
          Object.entries(c).filter(([key]) => key !== 'status' && key !== 'memoryUsedBytes'),
        ),
        CACHE_LABELS,
      ),
    );
  }

  /** Any object as a definition list: times formatted, nested values summarised; known keys by their label. */
  #facts(object: Json, labels: Readonly<Record<string, string>> = {}): HTMLElement {
    return h(
      'dl',
      { class: 'facts' },
      Object.entries(object).map(([key, value]) => [
        h('dt', null, labels[key] ?? key),
        h('dd', null, this.#value(value)),
      ]),
    );
  }

  #value(value: unknown): Node | string {
    // Drifts are tiny fractions: show enough digits for them to be seen.
    if (typeof value === 'number')
      return num(value, Number.isInteger(value) ? 0 : Math.abs(value) < 0.1 ? 6 : 2);
    if (typeof value === 'boolean') return value ? 'yes' : 'no';
    if (typeof value === 'string') return /^\d{4}-\d{2}-\d{2}T/.test(value) ? this.#time(value) : text(value);
    if (Array.isArray(value))
      return value.length === 0
        ? '—'
        : value.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(', ');
    const object = record(value);
    return object === undefined ? text(value) : this.#facts(object);
  }
}

/** The cache statistics' fields as an operator reads them (`streamgauge cache-stats`). */
const CACHE_LABELS: Readonly<Record<string, string>> = {
  keys: 'Keys in Redis',
  memoryUsed: 'Redis memory used',
  initialized: 'Initialized',
  initializedAt: 'Initialized at',
  lastRefresh: 'Last refresh',
  lastRefreshRun: 'Last refresh run',
  refreshingSince: 'Refreshing since',
  lastError: 'Last error',
  lastErrorAt: 'Last error at',
};
