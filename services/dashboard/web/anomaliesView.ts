import { AnomalyTable } from './anomalyTable.ts';
import { isHandledGlobally } from './api.ts';
import { fill, h, setOptions } from './dom.ts';
import { LatestOnly } from './schedule.ts';
import { ANOMALY_TYPES, type AnomalyLists, SEVERITIES } from './types.ts';
import type { View, ViewContext } from './view.ts';
import { notice } from './widgets.ts';

interface Filters {
  type: string;
  severity: string;
  district: string;
}

function filtersFrom(query: URLSearchParams): Filters {
  return {
    type: query.get('type') ?? '',
    severity: query.get('severity') ?? '',
    district: query.get('district') ?? '',
  };
}

const label = (type: string) => type.replaceAll('_', ' ');

/** `#/anomalies`: the open anomalies, then the recently opened ones, filtered by type, severity and district. */
export class AnomaliesView implements View {
  readonly element: HTMLElement;
  readonly title = 'Anomalies';
  readonly #ctx: ViewContext;
  readonly #latest = new LatestOnly();
  #filters: Filters;
  readonly #type = h('select', { id: 'anomaly-type', onchange: () => this.#changed() });
  readonly #severity = h('select', { id: 'anomaly-severity', onchange: () => this.#changed() });
  readonly #district = h('select', { id: 'anomaly-district', onchange: () => this.#changed() });
  /** Types seen in answers beyond the documented ones, so the filter can offer them. */
  readonly #seenTypes = new Set<string>();
  readonly #error = h('div');
  readonly #open: AnomalyTable;
  readonly #recent: AnomalyTable;

  constructor(ctx: ViewContext, query: URLSearchParams) {
    this.#ctx = ctx;
    this.#filters = filtersFrom(query);
    this.#open = new AnomalyTable({
      id: 'open-anomalies',
      caption: 'Open anomalies',
      empty: 'No open anomaly.',
      time: ctx.time,
      withNode: true,
    });
    this.#recent = new AnomalyTable({
      id: 'recent-anomalies',
      caption: 'Recently opened (newest first)',
      empty: 'No recent anomaly.',
      time: ctx.time,
      withNode: true,
    });
    this.#renderFilters();
    this.element = h(
      'div',
      { class: 'view anomalies' },
      h('h1', { tabindex: -1 }, 'Anomalies'),
      h(
        'form',
        { class: 'toolbar', 'aria-label': 'Filter anomalies', onsubmit: (e: Event) => e.preventDefault() },
        h('label', { for: 'anomaly-type' }, 'Type'),
        this.#type,
        h('label', { for: 'anomaly-severity' }, 'Severity'),
        this.#severity,
        h('label', { for: 'anomaly-district' }, 'District'),
        this.#district,
      ),
      this.#error,
      h('section', { class: 'panel' }, this.#open.element),
      h('section', { class: 'panel' }, this.#recent.element),
    );
  }

  wants(): boolean {
    // An open anomaly's last values move with the readings, not only on `anomalies` events; the
    // lists are small (at most 100 each), so every event refetches them.
    return true;
  }

  setQuery(query: URLSearchParams): void {
    this.#filters = filtersFrom(query);
    this.#renderFilters();
    void this.refresh();
  }

  districtsChanged(): void {
    this.#renderFilters();
  }

  dispose(): void {
    this.#latest.abort();
  }

  async refresh(): Promise<void> {
    const signal = this.#latest.begin();
    try {
      const lists: AnomalyLists = await this.#ctx.api.anomalies({ ...this.#filters }, signal);
      if (signal.aborted) return;
      fill(this.#error);
      const open = lists.open ?? [];
      const recent = lists.recent ?? [];
      const known = this.#seenTypes.size;
      for (const a of [...open, ...recent]) if (!ANOMALY_TYPES.includes(a.type)) this.#seenTypes.add(a.type);
      if (this.#seenTypes.size !== known) this.#renderFilters();
      this.#open.update(open);
      this.#recent.update(recent);
    } catch (error) {
      if (signal.aborted || isHandledGlobally(error)) return;
      fill(this.#error, notice(`Could not load the anomalies: ${(error as Error).message}`, 'error'));
    }
  }

  #renderFilters(): void {
    const f = this.#filters;
    setOptions(
      this.#type,
      [
        { value: '', label: 'All types' },
        ...[...ANOMALY_TYPES, ...this.#seenTypes].map((t) => ({ value: t, label: label(t) })),
      ],
      f.type,
    );
    setOptions(
      this.#severity,
      [{ value: '', label: 'All severities' }, ...SEVERITIES.map((s) => ({ value: s, label: s }))],
      f.severity,
    );
    setOptions(
      this.#district,
      [{ value: '', label: 'All districts' }, ...this.#ctx.districts().map((d) => ({ value: d, label: d }))],
      f.district,
    );
  }

  #changed(): void {
    this.#filters = {
      type: this.#type.value,
      severity: this.#severity.value,
      district: this.#district.value,
    };
    this.#ctx.setParams({ ...this.#filters });
    void this.refresh();
  }
}
