import { AnomalyTable } from './anomalyTable.ts';
import { HttpError, isHandledGlobally } from './api.ts';
import { FlowPressureChart } from './chart.ts';
import { fill, fillIfChanged, h, reconcileRows } from './dom.ts';
import { count, flow, percent, pressure, temperature, volume } from './format.ts';
import { hashFor } from './router.ts';
import { LatestOnly } from './schedule.ts';
import { type LiveEvent, type Metrics, type MinimumNightFlow, type NodeDetail, RANGES } from './types.ts';
import type { View, ViewContext } from './view.ts';
import { ageElement, notice, statusBadge, timeElement } from './widgets.ts';

function pair(term: string, ...value: (Node | string)[]): HTMLElement[] {
  return [h('dt', null, term), h('dd', null, ...value)];
}

function hourLabel(hour: number | undefined): string {
  return typeof hour === 'number' ? `${String(hour).padStart(2, '0')}:00` : '?';
}

/** `#/nodes/<id>`: one node's state, metrics per range, night flow, anomalies and 7-day chart. */
export class NodeView implements View {
  readonly element: HTMLElement;
  readonly title: string;
  readonly #ctx: ViewContext;
  readonly #id: string;
  readonly #latest = new LatestOnly();
  readonly #heading: HTMLElement;
  readonly #error = h('div');
  readonly #content = h('div');
  readonly #detail: HTMLElement;
  readonly #summary = h('dl', { id: 'node-summary', class: 'facts' });
  readonly #latestValues = h('dl', { id: 'node-latest', class: 'facts' });
  readonly #chartBox = h('div', { id: 'node-chart' });
  readonly #chartNote = h('figcaption', { class: 'muted' });
  readonly #chart: FlowPressureChart;
  readonly #metricsBody = h('tbody');
  readonly #nightFlow = h('div', { id: 'node-night-flow' });
  readonly #open: AnomalyTable;
  readonly #recent: AnomalyTable;

  constructor(ctx: ViewContext, id: string) {
    this.#ctx = ctx;
    this.#id = id;
    this.title = `Node ${id}`;
    this.#heading = h('h1', { tabindex: -1 }, `Node ${id}`);
    this.#chart = new FlowPressureChart(this.#chartBox, ctx.time);
    this.#open = new AnomalyTable({
      id: 'node-open-anomalies',
      caption: 'Open anomalies',
      empty: 'No open anomaly.',
      time: ctx.time,
      withNode: false,
    });
    this.#recent = new AnomalyTable({
      id: 'node-recent-anomalies',
      caption: 'Recent anomalies',
      empty: 'No recent anomaly.',
      time: ctx.time,
      withNode: false,
    });
    const metricHeaders = [
      'Range',
      'Readings',
      'Avg flow',
      'Min flow',
      'Max flow',
      'Std dev flow',
      'Avg pressure',
      'Min pressure',
      'Max pressure',
      'Uptime',
      'Avg temperature',
      'Volume used',
      'Window',
    ];
    this.#detail = h(
      'div',
      { class: 'node-detail' },
      h(
        'div',
        { class: 'columns' },
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'node-about' },
          h('h2', { id: 'node-about' }, 'Node'),
          this.#summary,
        ),
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'node-now' },
          h('h2', { id: 'node-now' }, 'Latest reading'),
          this.#latestValues,
        ),
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'node-chart-heading' },
        h('h2', { id: 'node-chart-heading' }, 'Last 7 days, hourly means'),
        h('figure', { class: 'chart' }, this.#chartBox, this.#chartNote),
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'node-metrics-heading' },
        h('h2', { id: 'node-metrics-heading' }, 'Metrics by range'),
        h(
          'div',
          {
            class: 'table-wrap',
            role: 'region',
            'aria-label': 'Metrics by range (scrolls sideways)',
            tabindex: 0,
          },
          h(
            'table',
            { id: 'node-metrics', class: 'data' },
            h('caption', { class: 'visually-hidden' }, 'Metrics of the node for every range'),
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                metricHeaders.map((label, i) =>
                  h('th', { scope: 'col', class: i > 0 && i < 12 ? 'num' : null }, label),
                ),
              ),
            ),
            this.#metricsBody,
          ),
        ),
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'node-night-heading' },
        h('h2', { id: 'node-night-heading' }, 'Minimum night flow'),
        this.#nightFlow,
      ),
      h('section', { class: 'panel' }, this.#open.element),
      h('section', { class: 'panel' }, this.#recent.element),
    );
    fill(this.#content, notice('Loading…'));
    this.element = h(
      'div',
      { class: 'view node' },
      h('p', { class: 'breadcrumb' }, h('a', { href: '#/nodes' }, '← Nodes')),
      this.#heading,
      this.#error,
      this.#content,
    );
  }

  wants(event: LiveEvent): boolean {
    // A change that names its nodes concerns this page only when it names this node.
    if (event.kind === 'change' && Array.isArray(event.change.nodes))
      return event.change.nodes.includes(this.#id);
    return true;
  }

  setQuery(): void {
    void this.refresh();
  }

  dispose(): void {
    this.#latest.abort();
    this.#chart.dispose();
  }

  async refresh(): Promise<void> {
    const signal = this.#latest.begin();
    try {
      const node = await this.#ctx.api.node(this.#id, signal);
      if (signal.aborted) return;
      fill(this.#error);
      this.#render(node);
    } catch (error) {
      if (signal.aborted || isHandledGlobally(error)) return;
      if (error instanceof HttpError && error.status === 404) {
        this.#heading.textContent = 'Unknown node';
        fill(
          this.#content,
          h(
            'div',
            { id: 'node-not-found', class: 'notice error', role: 'alert', 'data-error': 'unknown-node' },
            h('p', null, `Unknown node: there is no node “${this.#id}”.`),
            h(
              'p',
              null,
              'It may never have reported, or it has been silent for more than 30 days. ',
              h('a', { href: '#/nodes' }, 'Back to the node list'),
            ),
          ),
        );
        return;
      }
      fill(this.#error, notice(`Could not load node ${this.#id}: ${(error as Error).message}`, 'error'));
    }
  }

  #render(node: NodeDetail): void {
    const time = this.#ctx.time;
    this.#heading.textContent =
      node.node_name && node.node_name !== node.node_id
        ? `${node.node_name} (${node.node_id})`
        : `Node ${node.node_id}`;
    if (this.#content.firstChild !== this.#detail) fill(this.#content, this.#detail);
    const open = node.anomalies?.open ?? [];
    const recent = node.anomalies?.recent ?? [];

    fillIfChanged(
      this.#summary,
      pair('ID', node.node_id),
      pair('Name', node.node_name || '—'),
      pair('Type', node.node_type || '—'),
      pair(
        'District',
        node.district_id
          ? h('a', { href: hashFor('/nodes', { district: node.district_id }) }, node.district_id)
          : '—',
      ),
      pair('Status', statusBadge(node.status)),
      pair('Open anomalies', count(open.length)),
    );

    const l = node.latest;
    fillIfChanged(
      this.#latestValues,
      pair('Flow', flow(l?.flow_rate)),
      pair('Pressure', pressure(l?.pressure)),
      pair('Temperature', temperature(l?.temperature)),
      pair('Volume (counter)', volume(l?.volume)),
      pair('Time', l ? timeElement(time, l.timestamp) : '—'),
      pair('Age', l ? ageElement(time, l.timestamp, l.age_seconds) : 'no reading'),
    );

    const series = node.series;
    const points = series?.timestamps.length ?? 0;
    if (series && points > 0) {
      this.#chartBox.hidden = false;
      this.#chart.update(series);
      this.#chartNote.textContent = `Flow (L/s, solid, left axis) and pressure (bar, dashed, right axis): ${count(points)} hourly points, ${time.dateTime(series.timestamps[0])} to ${time.dateTime(series.timestamps[points - 1])} (${time.timeZone}). Drag to zoom, double-click to reset.`;
    } else {
      this.#chartBox.hidden = true;
      this.#chartNote.textContent = 'No readings in the last 7 days.';
    }

    const ranges = [...RANGES, ...Object.keys(node.metrics ?? {}).filter((r) => !RANGES.includes(r))];
    reconcileRows(
      this.#metricsBody,
      ranges.map((range) => this.#metricsRow(range, node.metrics?.[range] ?? null)),
      (row) => row.dataset.range,
    );

    this.#renderNightFlow(node.minimumNightFlow);
    this.#open.update(open);
    this.#recent.update(recent);
  }

  #metricsRow(range: string, m: Metrics | null): HTMLTableRowElement {
    const time = this.#ctx.time;
    const empty = m === null || Object.keys(m).length === 0;
    return h(
      'tr',
      { 'data-range': range },
      h('th', { scope: 'row' }, range),
      h('td', { class: 'num' }, count(m?.reading_count)),
      h('td', { class: 'num' }, flow(m?.avg_flow)),
      h('td', { class: 'num' }, flow(m?.min_flow)),
      h('td', { class: 'num' }, flow(m?.max_flow)),
      h('td', { class: 'num' }, flow(m?.stddev_flow)),
      h('td', { class: 'num' }, pressure(m?.avg_pressure)),
      h('td', { class: 'num' }, pressure(m?.min_pressure)),
      h('td', { class: 'num' }, pressure(m?.max_pressure)),
      h('td', { class: 'num' }, percent(m?.uptime_percentage)),
      h('td', { class: 'num' }, temperature(m?.avg_temperature)),
      h('td', { class: 'num' }, volume(m?.volume_delta)),
      h(
        'td',
        { class: 'wrap' },
        empty || !m?.window_start
          ? '—'
          : [timeElement(time, m.window_start), ' to ', timeElement(time, m.window_end)],
      ),
    );
  }

  #renderNightFlow(mnf: MinimumNightFlow | null): void {
    if (!mnf) {
      fillIfChanged(this.#nightFlow, h('p', null, 'Not available.'));
      return;
    }
    const nights = mnf.nights ?? [];
    const hours = mnf.hours ?? [];
    fillIfChanged(
      this.#nightFlow,
      h(
        'p',
        null,
        'Last night: ',
        h('strong', { 'data-night-flow': 'last' }, flow(mnf.last)),
        ` (lowest hourly mean between ${hourLabel(hours[0])} and ${hourLabel(hours[1])} UTC; a rising night flow is a leak sign).`,
      ),
      nights.length === 0
        ? null
        : h(
            'table',
            { class: 'data compact', 'aria-label': 'Minimum night flow per night' },
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                h('th', { scope: 'col' }, 'Night of (UTC)'),
                h('th', { scope: 'col', class: 'num' }, 'Minimum flow'),
              ),
            ),
            h(
              'tbody',
              null,
              [...nights]
                .reverse()
                .map((n) =>
                  h('tr', null, h('th', { scope: 'row' }, n.date), h('td', { class: 'num' }, flow(n.flow))),
                ),
            ),
          ),
    );
  }
}
