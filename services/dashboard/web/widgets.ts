import { h, svg } from './dom.ts';
import { age, flow, parseTime, type TimeFormat } from './format.ts';

/**
 * Status and severity are told by a symbol and a word as well as by
 * colour, so they read the same in greyscale and to colour-blind eyes.
 */
const STATUS_SYMBOL: Record<string, string> = { ok: '●', stale: '◐', offline: '○', anomaly: '▲' };
const SEVERITY_SYMBOL: Record<string, string> = { critical: '■', warning: '▲', info: '◇' };

export function statusBadge(status: string): HTMLElement {
  return h(
    'span',
    { class: 'badge status', 'data-status': status },
    h('span', { class: 'symbol', 'aria-hidden': 'true' }, STATUS_SYMBOL[status] ?? '?'),
    ` ${status}`,
  );
}

export function severityBadge(severity: string): HTMLElement {
  return h(
    'span',
    { class: 'badge severity', 'data-severity': severity },
    h('span', { class: 'symbol', 'aria-hidden': 'true' }, SEVERITY_SYMBOL[severity] ?? '?'),
    ` ${severity}`,
  );
}

/** A `<time>` in the dashboard's zone; the raw UTC value is in its datetime attribute. */
export function timeElement(format: TimeFormat, iso: string | null | undefined): HTMLElement | string {
  const date = parseTime(iso);
  if (date === undefined) return format.dateTime(iso);
  return h('time', { datetime: date.toISOString() }, format.dateTime(iso));
}

/** An age ("5 min ago") whose tooltip is the time itself. */
export function ageElement(
  format: TimeFormat,
  iso: string | null | undefined,
  seconds: number | null | undefined,
) {
  const date = parseTime(iso);
  return date === undefined
    ? age(seconds)
    : h('time', { datetime: date.toISOString(), title: format.dateTime(iso) }, age(seconds));
}

/** A node id linking to its page. */
export function nodeLink(id: string): HTMLAnchorElement {
  return h('a', { href: `#/nodes/${encodeURIComponent(id)}` }, id);
}

/** A small inline chart of hourly mean flow (L/s), oldest first; its label says what a screen reader cannot see. */
export function sparkline(values: readonly number[] | null | undefined): Element | string {
  const points = (values ?? []).filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (points.length < 2) return '—';
  const width = 96;
  const height = 24;
  const min = Math.min(...points);
  const max = Math.max(...points);
  const span = max - min || 1;
  const step = width / (points.length - 1);
  const coords = points
    .map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - ((v - min) / span) * (height - 4)).toFixed(1)}`)
    .join(' ');
  return svg(
    'svg',
    {
      class: 'sparkline',
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: 'img',
      'aria-label': `Hourly flow, last ${points.length} h: ${flow(min)} to ${flow(max)}, now ${flow(points[points.length - 1])}`,
    },
    svg('polyline', { points: coords, fill: 'none', stroke: 'currentColor', 'stroke-width': 1.5 }),
  );
}

/** A message in place of a view's content (errors other than the connection's). */
export function notice(text: string, kind: 'info' | 'error' = 'info'): HTMLElement {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : null }, text);
}
