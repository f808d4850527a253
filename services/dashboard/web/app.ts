import { AnomaliesView } from './anomaliesView.ts';
import { Api, HttpError, NetworkError } from './api.ts';
import { fill, h, setOptions } from './dom.ts';
import { TimeFormat } from './format.ts';
import { LiveEvents } from './live.ts';
import { NodesView } from './nodesView.ts';
import { NodeView } from './nodeView.ts';
import { NotFoundView } from './notFoundView.ts';
import { OverviewView } from './overviewView.ts';
import { PipelineView } from './pipelineView.ts';
import { hashFor, type Place, parseHash, type Route, replaceHash, routeKey, routePath } from './router.ts';
import { Coalescer } from './schedule.ts';
import { type DashboardConfig, DEFAULT_RANGE, type LiveEvent, type Overview, RANGES } from './types.ts';
import type { View, ViewContext } from './view.ts';
import { notice } from './widgets.ts';

/** Live refetches are coalesced to one per this interval. */
const LIVE_GAP_MS = 500;
/** Every view is refetched, and the overview (for the staleness banner) checked, this often, events or not. */
const TICK_MS = 20_000;
const CONFIG_RETRY_MS = 2000;
const CONNECTION_LOST = 'Connection lost — reconnecting…';

function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`index.html lacks #${id}`);
  return found;
}

/** Whether the header's range and district apply to the route. */
function usesFilters(route: Route): boolean {
  return route.name === 'overview' || route.name === 'nodes';
}

/**
 * The page: header controls, routing between views, the live event
 * stream, the connection and staleness banners, and the viewer token.
 */
export class App {
  readonly #main = element('main', HTMLElement);
  readonly #rangeSelect = element('range', HTMLSelectElement);
  readonly #districtSelect = element('district', HTMLSelectElement);
  readonly #zone = element('time-zone', HTMLElement);
  readonly #connection = element('connection', HTMLElement);
  readonly #stale = element('stale', HTMLElement);
  readonly #api: Api;
  readonly #live: LiveEvents;
  readonly #refresher: Coalescer;
  readonly #overviewChecker: Coalescer;
  readonly #ctx: ViewContext;

  #config: DashboardConfig | undefined;
  #time = new TimeFormat('UTC');
  #range = DEFAULT_RANGE;
  #district = '';
  #districts: readonly string[] = [];
  #view: View | undefined;
  #viewKey: string | undefined;
  #route: Route = { name: 'overview' };
  #navigated = false;
  #booting = false;
  /** The event stream is broken / a fetch could not reach the server / a token is needed. */
  #streamDown = false;
  #fetchFailed = false;
  #needsToken = false;

  constructor() {
    this.#api = new Api({
      onNetworkError: () => {
        this.#fetchFailed = true;
        this.#showConnection();
      },
      onReachable: () => {
        if (!this.#fetchFailed) return;
        this.#fetchFailed = false;
        this.#showConnection();
      },
      onUnauthorized: (sentToken, status) => this.#askForToken(sentToken, status),
    });
    this.#live = new LiveEvents(() => this.#api.eventsUrl(), {
      onOpen: () => {
        this.#streamDown = false;
        this.#fetchFailed = false;
        this.#showConnection();
        // Back (or first) on the stream: whatever changed meanwhile is fetched once.
        this.#refreshAll();
      },
      onDown: (closed) => {
        this.#streamDown = true;
        this.#showConnection();
        // A closed stream may mean 401 (a revoked token): a fetch finds out and asks for a new one.
        if (closed) this.#refresher.request();
      },
      onChange: (change) => this.#liveEvent({ kind: 'change', change }),
      onAnomalies: () => this.#liveEvent({ kind: 'anomalies' }),
      onReset: () => this.#refreshAll(),
    });
    this.#refresher = new Coalescer(async () => {
      await this.#view?.refresh();
    }, LIVE_GAP_MS);
    this.#overviewChecker = new Coalescer(() => this.#checkOverview(), 2000);

    const app = this;
    this.#ctx = {
      api: this.#api,
      get config(): DashboardConfig {
        if (app.#config === undefined) throw new Error('views are made once the config is loaded');
        return app.#config;
      },
      get time(): TimeFormat {
        return app.#time;
      },
      range: () => this.#range,
      district: () => this.#district,
      districts: () => this.#districts,
      setParams: (params) => this.#setParams(params),
      overviewFetched: (overview) => this.#overviewFetched(overview),
    };
  }

  start(): void {
    this.#rangeSelect.addEventListener('change', () => {
      this.#range = this.#rangeSelect.value;
      this.#filtersChanged();
    });
    this.#districtSelect.addEventListener('change', () => {
      this.#district = this.#districtSelect.value;
      this.#filtersChanged();
    });
    window.addEventListener('hashchange', () => {
      this.#navigated = true;
      this.#showRoute(false);
    });
    setInterval(() => {
      if (this.#config === undefined || this.#needsToken) return;
      this.#refresher.request();
      if (!(this.#view instanceof OverviewView)) void this.#checkOverview();
    }, TICK_MS);
    void this.#boot();
  }

  /** Loads the config, then shows the route and opens the event stream. Again after a token is given. */
  async #boot(): Promise<void> {
    if (this.#booting) return;
    this.#booting = true;
    let config: DashboardConfig;
    try {
      config = await this.#api.config();
    } catch (error) {
      this.#booting = false;
      if (error instanceof HttpError && (error.status === 401 || error.status === 403)) return; // the token form is up
      if (!(error instanceof NetworkError)) {
        fill(this.#main, notice(`The dashboard could not start: ${(error as Error).message}`, 'error'));
      }
      setTimeout(() => void this.#boot(), CONFIG_RETRY_MS);
      return;
    }
    this.#booting = false;
    this.#config = config;
    this.#time = new TimeFormat(config.timeZone);
    this.#zone.textContent = `Times in ${this.#time.zoneLabel()}`;
    const ranges = Array.isArray(config.ranges) && config.ranges.length > 0 ? config.ranges : RANGES;
    if (!ranges.includes(this.#range))
      this.#range = ranges.includes(DEFAULT_RANGE) ? DEFAULT_RANGE : (ranges[0] ?? DEFAULT_RANGE);
    setOptions(
      this.#rangeSelect,
      ranges.map((r) => ({ value: r, label: r })),
      this.#range,
    );
    this.#showRoute(true);
    this.#live.start();
    if (!(this.#view instanceof OverviewView)) void this.#checkOverview();
  }

  /** Shows the view of the URL's hash: a new one when the route changed, else the same one with the new query. */
  #showRoute(rebuild: boolean): void {
    if (this.#config === undefined || this.#needsToken) return;
    const place = parseHash(location.hash);
    this.#route = place.route;
    if (usesFilters(place.route)) {
      const range = place.query.get('range');
      if (range !== null && this.#rangeValid(range)) this.#range = range;
      const district = place.query.get('district');
      if (district !== null) this.#district = district;
    }
    this.#syncHeader();
    const query = this.#withFilters(place);

    const key = routeKey(place.route);
    if (!rebuild && this.#view !== undefined && key === this.#viewKey) {
      this.#view.setQuery(query);
      return;
    }
    this.#view?.dispose();
    const view = this.#makeView(place.route, query);
    this.#view = view;
    this.#viewKey = key;
    document.title = `${view.title} · streamgauge`;
    fill(this.#main, view.element);
    void view.refresh();
    // Moving focus to the new heading tells keyboard and screen-reader users the page changed (not on load).
    if (this.#navigated) view.element.querySelector<HTMLElement>('h1')?.focus();
  }

  #makeView(route: Route, query: URLSearchParams): View {
    switch (route.name) {
      case 'overview':
        return new OverviewView(this.#ctx);
      case 'nodes':
        return new NodesView(this.#ctx, query);
      case 'node':
        return new NodeView(this.#ctx, route.id);
      case 'anomalies':
        return new AnomaliesView(this.#ctx, query);
      case 'pipeline':
        return new PipelineView(this.#ctx);
      case 'not-found':
        return new NotFoundView(route.path);
    }
  }

  #rangeValid(range: string): boolean {
    return (this.#config?.ranges ?? RANGES).includes(range);
  }

  /** The place's query with the header's filters in it (for the routes they apply to), written back to the URL. */
  #withFilters(place: Place): URLSearchParams {
    if (!usesFilters(place.route)) return place.query;
    const query = new URLSearchParams(place.query);
    if (this.#range === DEFAULT_RANGE) query.delete('range');
    else query.set('range', this.#range);
    if (this.#district === '') query.delete('district');
    else query.set('district', this.#district);
    replaceHash(hashFor(routePath(place.route), Object.fromEntries(query)));
    return query;
  }

  #filtersChanged(): void {
    this.#syncHeader();
    if (!usesFilters(this.#route)) return;
    const place = parseHash(location.hash);
    const base = new URLSearchParams(place.query);
    base.delete('offset'); // another range or district is another list: back to its first page
    const query = this.#withFilters({ route: place.route, query: base });
    this.#view?.setQuery(query);
  }

  #setParams(params: Record<string, string | number | undefined>): void {
    const filters = usesFilters(this.#route)
      ? { range: this.#range === DEFAULT_RANGE ? undefined : this.#range, district: this.#district }
      : {};
    replaceHash(hashFor(routePath(this.#route), { ...filters, ...params }));
  }

  /** Header: the selects show the filters, the nav links carry them and mark the current page. */
  #syncHeader(): void {
    if (this.#rangeSelect.value !== this.#range) this.#rangeSelect.value = this.#range;
    setOptions(
      this.#districtSelect,
      [{ value: '', label: 'All districts' }, ...this.#districts.map((d) => ({ value: d, label: d }))],
      this.#district,
    );
    const filters = {
      range: this.#range === DEFAULT_RANGE ? undefined : this.#range,
      district: this.#district,
    };
    const current = this.#route.name === 'node' ? 'nodes' : this.#route.name;
    for (const link of document.querySelectorAll<HTMLAnchorElement>('a[data-nav]')) {
      const name = link.dataset.nav ?? '';
      if (name === 'overview') link.href = hashFor('/', filters);
      if (name === 'nodes') link.href = hashFor('/nodes', filters);
      if (name === current) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  #liveEvent(event: LiveEvent): void {
    if (this.#view?.wants(event)) this.#refresher.request();
    // Readings flowing again end staleness: re-check soon rather than at the next tick.
    if (!this.#stale.hidden && !(this.#view instanceof OverviewView)) this.#overviewChecker.request();
  }

  #refreshAll(): void {
    if (this.#config === undefined || this.#needsToken) return;
    this.#refresher.request();
    if (!(this.#view instanceof OverviewView)) void this.#checkOverview();
  }

  async #checkOverview(): Promise<void> {
    if (this.#config === undefined || this.#needsToken) return;
    try {
      this.#overviewFetched(await this.#api.overview({ range: this.#range, district: this.#district }));
    } catch {
      // Network and auth failures show their own banners; anything else waits for the next tick.
    }
  }

  #overviewFetched(overview: Overview): void {
    const districts = Array.isArray(overview.districts) ? [...overview.districts].sort() : [];
    if (districts.join('\n') !== this.#districts.join('\n')) {
      this.#districts = districts;
      this.#syncHeader();
      this.#view?.districtsChanged?.();
    }
    const f = overview.freshness;
    if (f?.stale) {
      const ageSeconds = f.newestReadingAgeSeconds;
      const text =
        typeof ageSeconds === 'number'
          ? `Data is stale: newest reading ${Math.round(ageSeconds / 60)} min ago`
          : 'Data is stale: no reading received yet';
      if (this.#stale.textContent !== text) this.#stale.textContent = text;
      this.#stale.hidden = false;
    } else {
      this.#stale.hidden = true;
      this.#stale.textContent = '';
    }
  }

  #showConnection(): void {
    const down = !this.#needsToken && (this.#streamDown || this.#fetchFailed);
    this.#connection.hidden = !down;
    const text = down ? CONNECTION_LOST : '';
    if (this.#connection.textContent !== text) this.#connection.textContent = text;
  }

  /** A 401 or 403: stop everything and ask for a viewer token. */
  #askForToken(sentToken: string | null, status: 401 | 403): void {
    // An answer to a request made with an older token says nothing about the current one.
    if (sentToken !== this.#api.token() || this.#needsToken) return;
    this.#needsToken = true;
    const rejected = sentToken !== null;
    if (rejected) this.#api.setToken(null);
    this.#live.stop();
    this.#view?.dispose();
    this.#view = undefined;
    this.#viewKey = undefined;
    this.#config = undefined;
    this.#stale.hidden = true;
    this.#showConnection();

    const input = h('input', {
      id: 'token',
      name: 'token',
      type: 'password',
      autocomplete: 'off',
      required: true,
    });
    const form = h(
      'form',
      {
        id: 'auth-form',
        class: 'panel auth',
        'aria-labelledby': 'auth-heading',
        onsubmit: (event: Event) => {
          event.preventDefault();
          const token = input.value.trim();
          if (token === '') return;
          this.#api.setToken(token);
          this.#needsToken = false;
          fill(this.#main, notice('Loading…'));
          void this.#boot();
        },
      },
      h('h1', { id: 'auth-heading' }, 'Viewer token needed'),
      h(
        'p',
        null,
        'This dashboard is open only to viewers. Ask an operator for a token (',
        h('code', null, 'streamgauge viewers add NAME'),
        '). It is kept for this browser tab only.',
      ),
      rejected
        ? h(
            'p',
            { class: 'notice error', role: 'alert' },
            status === 403 ? 'That token has been revoked.' : 'That token was not accepted.',
          )
        : null,
      h('label', { for: 'token' }, 'Viewer token'),
      h('div', { class: 'auth-row' }, input, h('button', { type: 'submit' }, 'Open')),
    );
    document.title = 'Viewer token needed · streamgauge';
    fill(this.#main, form);
    input.focus();
  }
}
