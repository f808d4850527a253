import type { Api } from './api.ts';
import type { TimeFormat } from './format.ts';
import type { DashboardConfig, LiveEvent, Overview } from './types.ts';

/** What the app gives a view. */
export interface ViewContext {
  readonly api: Api;
  readonly config: DashboardConfig;
  readonly time: TimeFormat;
  /** The header's range and district (they apply to the overview and the node list). */
  range(): string;
  district(): string;
  /** The districts known from the last overview. */
  districts(): readonly string[];
  /** The view's own filters changed: they go to the URL's query (no history entry). */
  setParams(params: Record<string, string | number | undefined>): void;
  /** Hands a freshly fetched overview to the app (district list, staleness banner). */
  overviewFetched(overview: Overview): void;
}

/**
 * A page of the dashboard. It builds its element once and updates it in
 * place on every refresh, so the controls a user is working with (the
 * search box, a sort button) keep their state and focus during live updates.
 */
export interface View {
  readonly element: HTMLElement;
  readonly title: string;
  /** Fetches and re-renders; handles its own errors (never rejects). */
  refresh(): Promise<void>;
  /** Whether a live event can change what the view shows. */
  wants(event: LiveEvent): boolean;
  /** The URL's query changed under the view (back/forward, the header's filters). */
  setQuery(query: URLSearchParams): void;
  /** The district list changed. */
  districtsChanged?(): void;
  dispose(): void;
}
