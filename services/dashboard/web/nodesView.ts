import { isHandledGlobally } from './api.ts';
import { fill, h, reconcileRows, setOptions } from './dom.ts';
import { count, flow, percent, pressure } from './format.ts';
import { debounce, LatestOnly } from './schedule.ts';
import { NODE_STATUSES, type NodePage, type NodeSummary } from './types.ts';
import type { View, ViewContext } from './view.ts';
import { ageElement, nodeLink, notice, sparkline, statusBadge } from './widgets.ts';

const PAGE_SIZE = 50;

interface Column {
  /** The API's sort key; none: not sortable. */
  readonly sort?: string;
  readonly label: (range: string) => string;
  readonly numeric?: boolean;
  readonly cell: (node: NodeSummary, view: NodesView) => Node | string;
}

const COLUMNS: readonly Column[] = [
  { sort: 'node_id', label: () => 'ID', cell: (n) => nodeLink(n.node_id) },
  { sort: 'node_name', label: () => 'Name', cell: (n) => n.node_name },
  { sort: 'district_id', label: () => 'District', cell: (n) => n.district_id || '—' },
  { sort: 'status', label: () => 'Status', cell: (n) => statusBadge(n.status) },
  { sort: 'flow_rate', label: () => 'Flow', numeric: true, cell: (n) => flow(n.latest?.flow_rate) },
  { sort: 'pressure', label: () => 'Pressure', numeric: true, cell: (n) => pressure(n.latest?.pressure) },
  {
    sort: 'age',
    label: () => 'Last reading',
    numeric: true,
    cell: (n, v) => ageElement(v.time, n.latest?.timestamp, n.latest?.age_seconds),
  },
  {
    sort: 'avg_flow',
    label: (r) => `Avg flow (${r})`,
    numeric: true,
    cell: (n) => flow(n.metrics?.avg_flow),
  },
  {
    sort: 'avg_pressure',
    label: (r) => `Avg pressure (${r})`,
    numeric: true,
    cell: (n) => pressure(n.metrics?.avg_pressure),
  },
  {
    sort: 'uptime_percentage',
    label: (r) => `Uptime (${r})`,
    numeric: true,
    cell: (n) => percent(n.metrics?.uptime_percentage),
  },
  {
    sort: 'reading_count',
    label: (r) => `Readings (${r})`,
    numeric: true,
    cell: (n) => count(n.metrics?.reading_count),
  },
  {
    sort: 'open_anomalies',
    label: () => 'Open anomalies',
    numeric: true,
    cell: (n) => count(n.open_anomalies),
  },
  { label: () => 'Flow, last 24 h', cell: (n) => sparkline(n.sparkline) },
];

const SORT_KEYS = new Set(COLUMNS.flatMap((c) => (c.sort ? [c.sort] : [])));

interface State {
  q: string;
  status: string;
  sort: string;
  order: 'asc' | 'desc';
  offset: number;
}

function stateFrom(query: URLSearchParams): State {
  const status = query.get('status') ?? '';
  const sort = query.get('sort') ?? 'node_id';
  const offset = Number(query.get('offset') ?? 0);
  return {
    q: query.get('q') ?? '',
    status: (NODE_STATUSES as readonly string[]).includes(status) ? status : '',
    sort: SORT_KEYS.has(sort) ? sort : 'node_id',
    order: query.get('order') === 'desc' ? 'desc' : 'asc',
    offset: Number.isInteger(offset) && offset > 0 ? offset : 0,
  };
}

/**
 * `#/nodes`: one page (50) of the node list, searched, filtered, sorted
 * and paged by the server, so it works the same for 12 nodes or 10,000.
 */
export class NodesView implements View {
  readonly element: HTMLElement;
  readonly title = 'Nodes';
  readonly #ctx: ViewContext;
  readonly #latest = new LatestOnly();
  #state: State;
  readonly #search: HTMLInputElement;
  readonly #statusFilter: HTMLSelectElement;
  readonly #headers: { column: Column; th: HTMLTableCellElement; label: HTMLElement }[] = [];
  readonly #body = h('tbody');
  readonly #caption = h('caption');
  readonly #pageInfo = h('span', { id: 'nodes-page-info', 'aria-live': 'polite' }, '…');
  readonly #previous: HTMLButtonElement;
  readonly #next: HTMLButtonElement;
  readonly #error = h('div');
  readonly #searchLater = debounce(() => this.#searchNow(), 250);
  #total = 0;

  constructor(ctx: ViewContext, query: URLSearchParams) {
    this.#ctx = ctx;
    this.#state = stateFrom(query);

    this.#search = h('input', {
      id: 'node-search',
      type: 'search',
      placeholder: 'ID or name',
      autocomplete: 'off',
      spellcheck: 'false',
      oninput: () => this.#searchLater(),
    });
    this.#search.value = this.#state.q;
    this.#statusFilter = h('select', { id: 'status-filter', onchange: () => this.#filterStatus() });
    setOptions(
      this.#statusFilter,
      [{ value: '', label: 'All statuses' }, ...NODE_STATUSES.map((s) => ({ value: s, label: s }))],
      this.#state.status,
    );
    this.#previous = h(
      'button',
      { type: 'button', id: 'nodes-prev', onclick: () => this.#page(-1) },
      'Previous',
    );
    this.#next = h('button', { type: 'button', id: 'nodes-next', onclick: () => this.#page(1) }, 'Next');

    const headRow = h('tr');
    for (const column of COLUMNS) {
      const label = h('span', null, column.label(ctx.range()));
      const th = h('th', { scope: 'col', class: column.numeric ? 'num' : null });
      if (column.sort) {
        const key = column.sort;
        th.dataset.sort = key;
        th.append(
          h(
            'button',
            { type: 'button', class: 'sort', onclick: () => this.#sortBy(key) },
            label,
            h('span', { class: 'sort-mark', 'aria-hidden': 'true' }),
          ),
        );
      } else {
        th.append(label);
      }
      headRow.append(th);
      this.#headers.push({ column, th, label });
    }

    this.element = h(
      'div',
      { class: 'view nodes' },
      h('h1', { tabindex: -1 }, 'Nodes'),
      h(
        'form',
        { class: 'toolbar', role: 'search', onsubmit: (e: Event) => this.#submit(e) },
        h('label', { for: 'node-search' }, 'Search'),
        this.#search,
        h('label', { for: 'status-filter' }, 'Status'),
        this.#statusFilter,
      ),
      this.#error,
      h(
        'div',
        { class: 'table-wrap', role: 'region', 'aria-label': 'Node list (scrolls sideways)', tabindex: 0 },
        h(
          'table',
          { id: 'nodes-table', class: 'data' },
          this.#caption,
          h('thead', null, headRow),
          this.#body,
        ),
      ),
      h(
        'nav',
        { class: 'pager', 'aria-label': 'Pages of the node list' },
        this.#previous,
        this.#pageInfo,
        this.#next,
      ),
    );
    this.#renderHeaders();
  }

  get time() {
    return this.#ctx.time;
  }

  wants(): boolean {
    return true;
  }

  setQuery(query: URLSearchParams): void {
    this.#state = stateFrom(query);
    if (this.#search.value !== this.#state.q) this.#search.value = this.#state.q;
    this.#statusFilter.value = this.#state.status;
    void this.refresh();
  }

  dispose(): void {
    this.#searchLater.cancel();
    this.#latest.abort();
  }

  async refresh(): Promise<void> {
    const signal = this.#latest.begin();
    const s = this.#state;
    const range = this.#ctx.range();
    const district = this.#ctx.district();
    this.element.setAttribute('aria-busy', 'true');
    try {
      const page = await this.#ctx.api.nodes(
        {
          range,
          district,
          status: s.status,
          q: s.q,
          sort: s.sort,
          order: s.order,
          offset: s.offset,
          limit: PAGE_SIZE,
        },
        signal,
      );
      if (signal.aborted) return;
      // The list shrank under the page we were on (nodes forgotten, a filter): go to its last page.
      if (page.items.length === 0 && page.total > 0 && s.offset > 0) {
        this.#state.offset = Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE;
        this.#publish();
        void this.refresh();
        return;
      }
      fill(this.#error);
      this.#render(page, range, district);
    } catch (error) {
      if (signal.aborted || isHandledGlobally(error)) return;
      fill(this.#error, notice(`Could not load the nodes: ${(error as Error).message}`, 'error'));
    } finally {
      if (!signal.aborted) this.element.removeAttribute('aria-busy');
    }
  }

  #render(page: NodePage, range: string, district: string): void {
    this.#total = page.total;
    this.#renderHeaders(range);
    const filters = [
      district && `district ${district}`,
      this.#state.status && `status ${this.#state.status}`,
      this.#state.q && `matching “${this.#state.q}”`,
    ].filter(Boolean);
    this.#caption.textContent = `Nodes${filters.length > 0 ? `, ${filters.join(', ')}` : ''} (averages over ${range})`;

    const rows = page.items.map((node) =>
      h(
        'tr',
        { 'data-node-id': node.node_id, 'data-status': node.status },
        COLUMNS.map((column) =>
          column.sort === 'node_id'
            ? h('th', { scope: 'row' }, column.cell(node, this))
            : h('td', { class: column.numeric ? 'num' : null }, column.cell(node, this)),
        ),
      ),
    );
    if (rows.length === 0) {
      rows.push(h('tr', { class: 'empty' }, h('td', { colspan: COLUMNS.length }, 'No nodes match.')));
    }
    reconcileRows(
      this.#body,
      rows,
      (row) => row.dataset.nodeId ?? (row.classList.contains('empty') ? 'empty' : undefined),
    );

    const first = page.total === 0 ? 0 : page.offset + 1;
    const last = Math.min(page.offset + page.items.length, page.total);
    this.#pageInfo.textContent = `${count(first)}–${count(last)} of ${count(page.total)}`;
    this.#previous.disabled = page.offset <= 0;
    this.#next.disabled = page.offset + page.items.length >= page.total;
  }

  #renderHeaders(range = this.#ctx.range()): void {
    for (const { column, th, label } of this.#headers) {
      const text = column.label(range);
      if (label.textContent !== text) label.textContent = text;
      if (!column.sort) continue;
      const sorted = column.sort === this.#state.sort;
      th.setAttribute(
        'aria-sort',
        sorted ? (this.#state.order === 'asc' ? 'ascending' : 'descending') : 'none',
      );
      const mark = th.querySelector('.sort-mark');
      if (mark) mark.textContent = sorted ? (this.#state.order === 'asc' ? ' ▲' : ' ▼') : '';
    }
  }

  /** Writes the state to the URL and fetches it now (user actions are not coalesced). */
  #apply(): void {
    this.#publish();
    this.#renderHeaders();
    void this.refresh();
  }

  #publish(): void {
    const s = this.#state;
    this.#ctx.setParams({
      q: s.q,
      status: s.status,
      sort: s.sort === 'node_id' ? undefined : s.sort,
      order: s.order === 'asc' ? undefined : s.order,
      offset: s.offset === 0 ? undefined : s.offset,
    });
  }

  #searchNow(): void {
    const q = this.#search.value.trim();
    if (q === this.#state.q) return;
    this.#state.q = q;
    this.#state.offset = 0;
    this.#apply();
  }

  #submit(event: Event): void {
    event.preventDefault();
    this.#searchLater.cancel();
    this.#searchNow();
  }

  #filterStatus(): void {
    this.#state.status = this.#statusFilter.value;
    this.#state.offset = 0;
    this.#apply();
  }

  #sortBy(key: string): void {
    if (this.#state.sort === key) this.#state.order = this.#state.order === 'asc' ? 'desc' : 'asc';
    else {
      this.#state.sort = key;
      this.#state.order = 'asc';
    }
    this.#state.offset = 0;
    this.#apply();
  }

  #page(direction: 1 | -1): void {
    const offset = this.#state.offset + direction * PAGE_SIZE;
    if (offset < 0 || (direction > 0 && offset >= this.#total)) return;
    this.#state.offset = offset;
    this.#apply();
  }
}
