import type { Config } from '@streamgauge/core';
import type { SeriesSource } from '@streamgauge/telemetry';

/** What a service's thread is started with. */
export interface ServiceThreadData {
  readonly config: Config;
  /** The log format the main thread chose (its terminal decides `auto`, which a thread cannot see). */
  readonly logFormat: Config['logFormat'];
  /** The `service` label of its series: the process's. */
  readonly service: string;
}

/** What the status line and /metrics read of the aggregator, as of the thread's last report. */
export interface AggregatorSnapshot {
  readonly nodeCount: number;
  readonly keysWritten: number;
  readonly openAnomalies: readonly (readonly [type: string, open: number])[];
}

export type SeriesJson = Awaited<ReturnType<SeriesSource>>;

/** From the main thread to a service's. */
export type ToServiceThread = { readonly kind: 'scrape'; readonly id: number } | { readonly kind: 'stop' };

/** From a service's thread to the main one; `S` is what it reports of itself every second. */
export type FromServiceThread<S> =
  | { readonly kind: 'running'; readonly snapshot: S }
  | { readonly kind: 'snapshot'; readonly snapshot: S }
  | { readonly kind: 'series'; readonly id: number; readonly series: SeriesJson }
  /** The service ended: after a stop, or on an error (`error` says which). */
  | { readonly kind: 'ended'; readonly error?: string };
