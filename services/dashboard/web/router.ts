/**
 * Hash routes: `#/`, `#/nodes`, `#/nodes/<id>`, `#/anomalies`,
 * `#/pipeline`, each with an optional query (`#/nodes?range=1h&q=via`)
 * holding the view's filters, so that a view can be bookmarked and shared.
 */

export type Route =
  | { readonly name: 'overview' }
  | { readonly name: 'nodes' }
  | { readonly name: 'node'; readonly id: string }
  | { readonly name: 'anomalies' }
  | { readonly name: 'pipeline' }
  | { readonly name: 'not-found'; readonly path: string };

export interface Place {
  readonly route: Route;
  readonly query: URLSearchParams;
}

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

export function parseHash(hash: string): Place {
  const raw = hash.replace(/^#/, '');
  const mark = raw.indexOf('?');
  const path = (mark < 0 ? raw : raw.slice(0, mark)).replace(/\/+$/, '') || '/';
  const query = new URLSearchParams(mark < 0 ? '' : raw.slice(mark + 1));
  const segments = path.split('/').filter((s) => s !== '');
  let route: Route = { name: 'not-found', path };
  if (segments.length === 0) route = { name: 'overview' };
  else if (segments.length === 1 && segments[0] === 'nodes') route = { name: 'nodes' };
  else if (segments.length === 1 && segments[0] === 'anomalies') route = { name: 'anomalies' };
  else if (segments.length === 1 && segments[0] === 'pipeline') route = { name: 'pipeline' };
  else if (segments.length === 2 && segments[0] === 'nodes') {
    const id = decode(segments[1] ?? '');
    if (id !== undefined && id !== '') route = { name: 'node', id };
  }
  return { route, query };
}

export function routePath(route: Route): string {
  switch (route.name) {
    case 'overview':
      return '/';
    case 'nodes':
      return '/nodes';
    case 'node':
      return `/nodes/${encodeURIComponent(route.id)}`;
    case 'anomalies':
      return '/anomalies';
    case 'pipeline':
      return '/pipeline';
    case 'not-found':
      return route.path;
  }
}

/** Identifies a view instance: the same key means "update the query", not "build a new view". */
export function routeKey(route: Route): string {
  return route.name === 'node' ? `node:${route.id}` : route.name;
}

/** `#/path?query`, leaving out empty values. */
export function hashFor(path: string, params: Record<string, string | number | undefined> = {}): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') query.set(key, String(value));
  }
  const search = query.toString();
  return search === '' ? `#${path}` : `#${path}?${search}`;
}

/** Rewrites the hash without a history entry and without a hashchange (the view already shows it). */
export function replaceHash(hash: string): void {
  if (location.hash !== hash) history.replaceState(history.state, '', hash);
}
