import { isHandledGlobally } from './api.ts';
import { fill, h } from './dom.ts';
import { age, count, duration, flow, num, pressure } from './format.ts';
import { hashFor } from './router.ts';
import { LatestOnly } from './schedule.ts';
import { NODE_STATUSES, type Overview, SEVERITIES } from './types.ts';
import type { View, ViewContext } from './view.ts';
import { notice, severityBadge, statusBadge, timeElement } from './widgets.ts';

interface Tile {
  readonly element: HTMLElement;
  readonly value: HTMLElement;
  readonly detail: HTMLElement;
}

function tile(kpi: string, label: string): Tile {
  const value = h('p', { class: 'kpi-value' }, '—');
  const detail = h('div', { class: 'kpi-detail' });
  const element = h(
    'section',
    { class: 'kpi', 'data-kpi': kpi, 'aria-label': label },
    h('h2', null, label),
    value,
    detail,
  );
  return { element, value, detail };
}

/** `#/`: the system's key figures, node states, open anomalies and the pipeline's freshness. */
export class OverviewView implements View {
  readonly element: HTMLElement;
  readonly title = 'Overview';
  readonly #ctx: ViewContext;
  readonly #latest = new LatestOnly();
  readonly #subtitle = h('p', { class: 'subtitle' });
  readonly #error = h('div');
  readonly #tiles = {
    nodes: tile('nodes', 'Nodes'),
    active: tile('active', 'Active nodes'),
    totalFlow: tile('total-flow', 'Total flow'),
    meanPressure: tile('mean-pressure', 'Mean pressure'),
    anomalies: tile('anomalies', 'Open anomalies'),
    freshness: tile('freshness', 'Newest reading'),
  };
  readonly #statusList = h('ul', { class: 'status-counts' });

  constructor(ctx: ViewContext) {
    this.#ctx = ctx;
    const t = this.#tiles;
    this.element = h(
      'div',
      { class: 'view overview' },
      h('h1', { tabindex: -1 }, 'Overview'),
      this.#subtitle,
      this.#error,
      h(
        'div',
        { class: 'kpis' },
        t.nodes.element,
        t.active.element,
        t.totalFlow.element,
        t.meanPressure.element,
        t.anomalies.element,
        t.freshness.element,
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'status-heading' },
        h('h2', { id: 'status-heading' }, 'Node status'),
        this.#statusList,
      ),
    );
  }

  wants(): boolean {
    return true;
  }

  setQuery(): void {
    void this.refresh();
  }

  dispose(): void {
    this.#latest.abort();
  }

  async refresh(): Promise<void> {
    const signal = this.#latest.begin();
    const range = this.#ctx.range();
    const district = this.#ctx.district();
    try {
      const overview = await this.#ctx.api.overview({ range, district }, signal);
      if (signal.aborted) return;
      this.#ctx.overviewFetched(overview);
      fill(this.#error);
      this.#render(overview);
    } catch (error) {
      if (signal.aborted || isHandledGlobally(error)) return;
      fill(this.#error, notice(`Could not load the overview: ${(error as Error).message}`, 'error'));
    }
  }

  #render(o: Overview): void {
    const time = this.#ctx.time;
    const s = o.system ?? {};
    const t = this.#tiles;
    fill(
      this.#subtitle,
      `Range ${o.range} · ${o.district ?? 'All districts'} · figures computed `,
      timeElement(time, s.updated_at ?? o.generatedAt),
    );

    t.nodes.value.textContent = count(s.total_nodes);
    fill(t.nodes.detail, 'known nodes', o.district ? ` in ${o.district}` : '');

    t.active.value.textContent = count(s.active_nodes);
    fill(
      t.active.detail,
      typeof s.total_nodes === 'number' && s.total_nodes > 0 && typeof s.active_nodes === 'number'
        ? `${num(Math.floor((s.active_nodes / s.total_nodes) * 100), 0)} % of ${count(s.total_nodes)} (uptime above 10 % in ${o.range})`
        : `uptime above 10 % in ${o.range}`,
    );

    t.totalFlow.value.textContent = flow(s.total_flow);
    fill(t.totalFlow.detail, `sum of the nodes' mean flow over ${o.range}`);

    t.meanPressure.value.textContent = pressure(s.avg_pressure);
    fill(t.meanPressure.detail, `mean over nodes with pressure data, ${o.range}`);

    t.anomalies.value.textContent = count(o.anomalies?.openTotal);
    fill(
      t.anomalies.detail,
      h(
        'ul',
        { class: 'severity-counts' },
        SEVERITIES.map((severity) =>
          h(
            'li',
            { 'data-severity': severity },
            h(
              'a',
              { class: 'severity-link', href: hashFor('/anomalies', { severity }) },
              severityBadge(severity),
              ': ',
              count(o.anomalies?.open?.[severity] ?? 0),
            ),
          ),
        ),
      ),
    );

    const f = o.freshness;
    t.freshness.value.textContent =
      f?.newestReadingAgeSeconds == null ? 'no readings' : age(f.newestReadingAgeSeconds);
    t.freshness.element.toggleAttribute('data-stale', f?.stale === true);
    const lags = Object.entries(f?.lag ?? {});
    fill(
      t.freshness.detail,
      h(
        'p',
        null,
        f?.newestReadingAt ? ['at ', timeElement(time, f.newestReadingAt)] : 'nothing received yet',
      ),
      f?.stale
        ? h('p', { class: 'warn' }, `stale: older than ${duration(this.#ctx.config.staleAfterSeconds)}`)
        : null,
      h(
        'p',
        null,
        'Consumer lag: ',
        lags.length === 0
          ? '—'
          : lags.map(([group, lag], i) => [
              i > 0 ? ', ' : '',
              h('span', { 'data-lag': group }, `${group} ${count(lag)} entries`),
            ]),
      ),
    );

    fill(
      this.#statusList,
      NODE_STATUSES.map((status) =>
        h(
          'li',
          { 'data-status-count': status },
          h(
            'a',
            {
              class: 'status-link',
              href: hashFor('/nodes', { status, range: o.range, district: o.district ?? undefined }),
            },
            statusBadge(status),
            h('span', { class: 'status-count' }, count(o.status?.[status] ?? 0)),
          ),
        ),
      ),
    );
  }
}
