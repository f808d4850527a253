import { h, reconcileRows } from './dom.ts';
import { measurement, signedMeasurement, type TimeFormat } from './format.ts';
import type { Anomaly } from './types.ts';
import { nodeLink, severityBadge, timeElement } from './widgets.ts';

function expected(a: Anomaly): string {
  const low = a.expected_low;
  const high = a.expected_high;
  const hasLow = typeof low === 'number';
  const hasHigh = typeof high === 'number';
  if (hasLow && hasHigh) return `${measurement(low, null)}–${measurement(high, a.unit)}`;
  if (hasLow) return `≥ ${measurement(low, a.unit)}`;
  if (hasHigh) return `≤ ${measurement(high, a.unit)}`;
  return '—';
}

function deviation(a: Anomaly): HTMLElement | string {
  const d = a.deviation;
  if (typeof d !== 'number') return '—';
  const where = d < 0 ? 'below expected' : d > 0 ? 'above expected' : 'within expected range';
  return h(
    'span',
    { title: where },
    d === 0 ? '0' : signedMeasurement(d, a.unit),
    h('span', { class: 'muted' }, d === 0 ? '' : d < 0 ? ' below' : ' above'),
  );
}

/**
 * A table of anomalies, one `<tr data-anomaly-id>` each, updated in place.
 * The node page leaves out the node and district columns (they are its own).
 */
export class AnomalyTable {
  readonly element: HTMLElement;
  readonly #body = h('tbody');
  readonly #count = h('span');
  readonly #time: TimeFormat;
  readonly #withNode: boolean;
  readonly #empty: string;
  readonly #columns: number;

  constructor(options: { id: string; caption: string; empty: string; time: TimeFormat; withNode: boolean }) {
    this.#time = options.time;
    this.#withNode = options.withNode;
    this.#empty = options.empty;
    const headers = [
      'Severity',
      'Type',
      ...(options.withNode ? ['Node', 'District'] : []),
      'Opened',
      'Last seen',
      'Value',
      'Expected',
      'Deviation',
    ];
    this.#columns = headers.length;
    this.element = h(
      'div',
      {
        class: 'table-wrap',
        role: 'region',
        'aria-label': `${options.caption} (scrolls sideways)`,
        tabindex: 0,
      },
      h(
        'table',
        { id: options.id, class: 'data anomalies' },
        h('caption', null, options.caption, ' ', this.#count),
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            headers.map((label) =>
              h(
                'th',
                { scope: 'col', class: ['Value', 'Expected', 'Deviation'].includes(label) ? 'num' : null },
                label,
              ),
            ),
          ),
        ),
        this.#body,
      ),
    );
  }

  update(anomalies: readonly Anomaly[]): void {
    this.#count.textContent = `(${anomalies.length})`;
    const time = this.#time;
    const rows = anomalies.map((a) =>
      h(
        'tr',
        { 'data-anomaly-id': a.id, 'data-severity': a.severity },
        h('td', null, severityBadge(a.severity)),
        h('td', null, a.type.replaceAll('_', ' ')),
        this.#withNode ? [h('td', null, nodeLink(a.node_id)), h('td', null, a.district_id || '—')] : null,
        h('td', null, timeElement(time, a.opened_at)),
        h('td', null, timeElement(time, a.last_at)),
        h('td', { class: 'num' }, measurement(a.value, a.unit)),
        h('td', { class: 'num' }, expected(a)),
        h('td', { class: 'num' }, deviation(a)),
      ),
    );
    if (rows.length === 0)
      rows.push(h('tr', { class: 'empty' }, h('td', { colspan: this.#columns }, this.#empty)));
    reconcileRows(
      this.#body,
      rows,
      (row) => row.dataset.anomalyId ?? (row.classList.contains('empty') ? 'empty' : undefined),
    );
  }
}
