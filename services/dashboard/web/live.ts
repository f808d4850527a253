import type { ChangeEvent } from './types.ts';

export interface LiveHandlers {
  /** Connected (first time or again): whatever was missed while down should be refetched. */
  onOpen(): void;
  /** The stream broke; the browser reconnects, or (closed: it gave up, after an HTTP error say) we do in 2 s. */
  onDown(closed: boolean): void;
  onChange(change: ChangeEvent): void;
  onAnomalies(): void;
  /** The server could not replay what was missed: fetch everything again. */
  onReset(): void;
}

const RECREATE_AFTER_MS = 2000;

/**
 * The one EventSource on /api/v1/events. The browser reconnects by itself
 * after a network error (sending Last-Event-ID so the server replays what
 * was missed); when it gives up instead (the stream answered an HTTP error,
 * say) the source is CLOSED and a new one is made after 2 s.
 */
export class LiveEvents {
  readonly #url: () => string;
  readonly #handlers: LiveHandlers;
  #source: EventSource | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(url: () => string, handlers: LiveHandlers) {
    this.#url = url;
    this.#handlers = handlers;
  }

  get running(): boolean {
    return this.#source !== undefined;
  }

  start(): void {
    this.stop();
    this.#connect();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#source?.close();
    this.#source = undefined;
  }

  #connect(): void {
    const source = new EventSource(this.#url());
    this.#source = source;
    source.addEventListener('open', () => this.#handlers.onOpen());
    source.addEventListener('error', () => {
      if (this.#source !== source) return;
      const closed = source.readyState === EventSource.CLOSED;
      this.#handlers.onDown(closed);
      if (closed) {
        source.close();
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => {
          if (this.#source === source) this.#connect();
        }, RECREATE_AFTER_MS);
      }
    });
    source.addEventListener('change', (event) => this.#handlers.onChange(parse(event)));
    source.addEventListener('anomalies', () => this.#handlers.onAnomalies());
    source.addEventListener('reset', () => this.#handlers.onReset());
  }
}

function parse(event: Event): ChangeEvent {
  const data = (event as MessageEvent<unknown>).data;
  if (typeof data !== 'string') return {};
  try {
    const parsed: unknown = JSON.parse(data);
    return parsed !== null && typeof parsed === 'object' ? (parsed as ChangeEvent) : {};
  } catch {
    // An event we cannot read still says something changed.
    return {};
  }
}
