import type { AnomalyLists, DashboardConfig, NodeDetail, NodePage, Overview } from './types.ts';

/** The server answered, but not with what was asked for. */
export class HttpError extends Error {
  readonly status: number;
  readonly parameter: string | undefined;

  constructor(status: number, message: string, parameter?: string) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.parameter = parameter;
  }
}

/** The server could not be reached (or a proxy in front of it says so). */
export class NetworkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetworkError';
  }
}

/**
 * Errors the app already handles globally (the connection banner, the
 * token form) or that mean "nobody wants this answer any more": a view
 * shows nothing of its own for them and keeps its last data.
 */
export function isHandledGlobally(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  if (error instanceof HttpError && (error.status === 401 || error.status === 403)) return true;
  return error instanceof DOMException && error.name === 'AbortError';
}

export interface ApiHooks {
  /** A request failed to reach the server. */
  onNetworkError(): void;
  /** A request got an answer (any status but a proxy's 502–504). */
  onReachable(): void;
  /**
   * A request answered 401 (a viewer token is needed, or `sentToken`, the
   * one it carried, is not one) or 403 (that token was revoked).
   */
  onUnauthorized(sentToken: string | null, status: 401 | 403): void;
}

type Params = Record<string, string | number | null | undefined>;

const TOKEN_KEY = 'streamgauge.viewerToken';

/** The read API of docs/dashboard.md, with the viewer token kept in session storage. */
export class Api {
  readonly #hooks: ApiHooks;

  constructor(hooks: ApiHooks) {
    this.#hooks = hooks;
  }

  token(): string | null {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      // Storage can be disabled by the browser's privacy settings: act as if no token was stored.
      return null;
    }
  }

  setToken(token: string | null): void {
    try {
      if (token === null || token === '') sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      // See token(): without storage the token lasts no longer than this page.
    }
  }

  config(signal?: AbortSignal): Promise<DashboardConfig> {
    return this.#get('/api/v1/config', {}, signal);
  }

  overview(params: { range: string; district: string }, signal?: AbortSignal): Promise<Overview> {
    return this.#get('/api/v1/overview', params, signal);
  }

  nodes(
    params: {
      range: string;
      district: string;
      status: string;
      q: string;
      sort: string;
      order: string;
      offset: number;
      limit: number;
    },
    signal?: AbortSignal,
  ): Promise<NodePage> {
    return this.#get('/api/v1/nodes', params, signal);
  }

  node(id: string, signal?: AbortSignal): Promise<NodeDetail> {
    return this.#get(`/api/v1/nodes/${encodeURIComponent(id)}`, {}, signal);
  }

  anomalies(
    params: { type: string; severity: string; district: string; node?: string; limit?: number },
    signal?: AbortSignal,
  ): Promise<AnomalyLists> {
    return this.#get('/api/v1/anomalies', params, signal);
  }

  /** What `streamgauge status --json` prints; its shape is read defensively by the pipeline view. */
  pipeline(signal?: AbortSignal): Promise<unknown> {
    return this.#get('/api/v1/pipeline', {}, signal);
  }

  /** The event stream's URL: EventSource cannot send headers, so the token goes in the query. */
  eventsUrl(): string {
    const token = this.token();
    return token ? `/api/v1/events?access_token=${encodeURIComponent(token)}` : '/api/v1/events';
  }

  async #get<T>(path: string, params: Params, signal?: AbortSignal): Promise<T> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      // Empty means "not filtered": leave it to the server's default.
      if (value !== undefined && value !== null && value !== '') query.set(key, String(value));
    }
    const search = query.toString();
    const url = search === '' ? path : `${path}?${search}`;
    const headers: Record<string, string> = { Accept: 'application/json' };
    const token = this.token();
    if (token) headers.Authorization = `Bearer ${token}`;

    let response: Response;
    try {
      response = await fetch(url, { headers, signal: signal ?? null, cache: 'no-store' });
    } catch (error) {
      if (error instanceof DOMException && error.name === 'AbortError') throw error;
      this.#hooks.onNetworkError();
      throw new NetworkError(error instanceof Error ? error.message : String(error));
    }
    // A reverse proxy answers these when the dashboard process is down: the same as no connection.
    if (response.status >= 502 && response.status <= 504) {
      this.#hooks.onNetworkError();
      throw new NetworkError(`${response.status} ${response.statusText}`);
    }
    this.#hooks.onReachable();
    if (response.status === 401 || response.status === 403) {
      this.#hooks.onUnauthorized(token, response.status);
      throw new HttpError(response.status, 'a valid viewer token is required');
    }

    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      if (error instanceof DOMException && error.name === 'AbortError') throw error;
      throw new HttpError(response.status, `${response.status}: the answer is not JSON`);
    }
    if (!response.ok) {
      const detail = body as { error?: unknown; parameter?: unknown } | null;
      const message =
        typeof detail?.error === 'string' ? detail.error : `${response.status} ${response.statusText}`;
      throw new HttpError(
        response.status,
        message,
        typeof detail?.parameter === 'string' ? detail.parameter : undefined,
      );
    }
    return body as T;
  }
}
