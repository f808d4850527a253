import { Counter, Histogram, type Registry } from 'prom-client';
import { PlainHistogram } from './plainHistogram.ts';

/**
 * Every series streamgauge records as it works (the ones read from Redis
 * when scraped are in redisGauges.ts). Names follow OpenTelemetry's
 * messaging semantic conventions where one applies, translated the way its
 * Prometheus exporter does (dots to underscores, the unit as a suffix,
 * `_total` on counters); the rest are streamgauge's own, prefixed
 * `streamgauge_`. docs/metrics.md lists them all.
 *
 * Hot paths record once per request or batch, with label children created
 * once: a reading costs nothing here.
 */

/** OTel `messaging.system`: Redis Streams is not among its well-known values, so the product name. */
export const MESSAGING_SYSTEM = 'redis';

/** Label names shared with OTel's messaging attributes, so series join on them. */
export const GROUP = 'messaging_consumer_group_name';
export const DESTINATION = 'messaging_destination_name';

/** Where readings came in. */
export type ReadingSource = 'http' | 'pubsub';

export interface ReadingCounts {
  /** Appended to the log (new identities). */
  readonly accepted: number;
  /** Refused: invalid, out of the gateway's scope. */
  readonly rejected: number;
  /** Valid, but already in the log (a retry, a replay): nothing changed. */
  readonly duplicates: number;
}

/** What a source of readings records once per request (HTTP) or message (Pub/Sub). */
export interface ReadingCounter {
  add(counts: ReadingCounts): void;
}

export class IngestSeries {
  readonly #readings: Counter<'source' | 'outcome'>;
  readonly #sent: Counter<string>;
  readonly #requests: Histogram<'http_request_method' | 'http_route' | 'http_response_status_code'>;
  readonly #counters = new Map<ReadingSource, ReadingCounter>();
  readonly #sentTo = new Map<string, Counter.Internal>();

  constructor(registry: Registry) {
    this.#readings = new Counter({
      name: 'streamgauge_readings_total',
      help: 'Readings received by ingest, by source and outcome (accepted: appended; rejected: invalid or out of scope; duplicate: already in the log).',
      labelNames: ['source', 'outcome'],
      registers: [registry],
    });
    this.#sent = new Counter({
      name: 'messaging_client_sent_messages_total',
      help: 'Stream entries appended by ingest (each holds one request’s new readings for one shard).',
      labelNames: ['messaging_system', 'messaging_operation_name', DESTINATION],
      registers: [registry],
    });
    // OpenTelemetry's HTTP server semantic conventions, as its Prometheus exporter names them.
    this.#requests = new Histogram({
      name: 'http_server_request_duration_seconds',
      help: 'HTTP requests answered, from their arrival to the answer, by method, route (the matched pattern; "unmatched" for none) and status code.',
      labelNames: ['http_request_method', 'http_route', 'http_response_status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10],
      registers: [registry],
    });
  }

  /** One HTTP request answered. */
  request(method: string, route: string, status: number, seconds: number): void {
    this.#requests.labels(method, route, String(status)).observe(seconds);
  }

  /** The counter of one source; its series exist (at 0) from this call on. */
  readings(source: ReadingSource): ReadingCounter {
    let counter = this.#counters.get(source);
    if (counter === undefined) {
      const accepted = this.#readings.labels(source, 'accepted');
      const rejected = this.#readings.labels(source, 'rejected');
      const duplicate = this.#readings.labels(source, 'duplicate');
      accepted.inc(0);
      rejected.inc(0);
      duplicate.inc(0);
      counter = {
        add(counts) {
          if (counts.accepted > 0) accepted.inc(counts.accepted);
          if (counts.rejected > 0) rejected.inc(counts.rejected);
          if (counts.duplicates > 0) duplicate.inc(counts.duplicates);
        },
      };
      this.#counters.set(source, counter);
    }
    return counter;
  }

  /** One entry appended to `stream` (ReadingLog's `onAppend`). */
  readonly sent = (stream: string): void => {
    let child = this.#sentTo.get(stream);
    if (child === undefined) {
      child = this.#sent.labels(MESSAGING_SYSTEM, 'send', stream);
      this.#sentTo.set(stream, child);
    }
    child.inc();
  };
}

/** What became of one Pub/Sub message: acked (taken), nacked (to be delivered again), dead_lettered (then acked). */
export type PubSubOutcome = 'acked' | 'nacked' | 'dead_lettered';

/** What the Pub/Sub source records once per message. */
export interface PubSubMessageRecorder {
  message(outcome: PubSubOutcome, seconds: number): void;
}

/**
 * The Pub/Sub ingest source's messages by outcome and their processing
 * time (from delivery to ack or nack), per subscription. streamgauge's own
 * names: OTel's messaging series here are the consumer groups', with labels
 * a subscription does not have.
 */
export class PubSubSeries {
  readonly #messages: Counter<'subscription' | 'outcome'>;
  readonly #duration: Histogram<'subscription'>;

  constructor(registry: Registry) {
    this.#messages = new Counter({
      name: 'streamgauge_pubsub_messages_total',
      help: 'Pub/Sub messages the ingest source handled, by outcome (acked; nacked: to be delivered again; dead_lettered: published to the dead-letter topic, then acked).',
      labelNames: ['subscription', 'outcome'],
      registers: [registry],
    });
    this.#duration = new Histogram({
      name: 'streamgauge_pubsub_process_duration_seconds',
      help: 'Time from a message’s delivery to its ack or nack (validation, append, dead-lettering; a nack includes its 1 s hold).',
      labelNames: ['subscription'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
  }

  /** The recorder of one subscription; its series exist (at 0) from this call on. */
  subscription(name: string): PubSubMessageRecorder {
    const outcomes = new Map<PubSubOutcome, Counter.Internal>();
    for (const outcome of ['acked', 'nacked', 'dead_lettered'] as const) {
      const child = this.#messages.labels(name, outcome);
      child.inc(0);
      outcomes.set(outcome, child);
    }
    const duration = this.#duration.labels(name);
    return {
      message(outcome, seconds) {
        outcomes.get(outcome)?.inc();
        duration.observe(seconds);
      },
    };
  }
}

/** The series both consumer groups record, one family each, labelled by group. */
export class ConsumerFamilies {
  readonly consumed: Counter<string>;
  readonly duration: Histogram<string>;
  readonly failed: Counter<string>;

  constructor(registry: Registry) {
    this.consumed = new Counter({
      name: 'messaging_client_consumed_messages_total',
      help: 'Stream entries delivered to a consumer group and processed in a batch (redeliveries included).',
      labelNames: ['messaging_system', 'messaging_operation_name', GROUP, DESTINATION],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'messaging_process_duration_seconds',
      help: 'Time to process one batch of stream entries, from delivery to acknowledgement.',
      labelNames: ['messaging_system', 'messaging_operation_name', GROUP],
      // OTel's advice for messaging.process.duration, then 30 s and 60 s: a
      // full batch (500 entries of 1000 readings) takes seconds.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60],
      registers: [registry],
    });
    this.failed = new Counter({
      name: 'streamgauge_failed_entries_total',
      help: 'Stream entries a consumer group could not process: retried (left pending, delivered again) or dead_lettered.',
      labelNames: [GROUP, 'outcome'],
      registers: [registry],
    });
  }
}

export interface ConsumedBatch {
  readonly entries: number;
  /** Entries left pending with their error, to be delivered again. */
  readonly failed: number;
  /** Entries moved to the dead-letter stream. */
  readonly dead: number;
}

/** One consumer group's records: one call per batch. */
export class ConsumerSeries {
  readonly #families: ConsumerFamilies;
  readonly #group: string;
  readonly #consumedFrom = new Map<string, Counter.Internal>();
  readonly #duration: Histogram.Internal<string>;
  readonly #retried: Counter.Internal;
  readonly #deadLettered: Counter.Internal;

  constructor(families: ConsumerFamilies, group: string) {
    this.#families = families;
    this.#group = group;
    this.#duration = families.duration.labels(MESSAGING_SYSTEM, 'process', group);
    this.#retried = families.failed.labels(group, 'retried');
    this.#deadLettered = families.failed.labels(group, 'dead_lettered');
    this.#retried.inc(0);
    this.#deadLettered.inc(0);
  }

  /** A batch of `stream` processed in `seconds`. */
  batch(stream: string, batch: ConsumedBatch, seconds: number): void {
    let consumed = this.#consumedFrom.get(stream);
    if (consumed === undefined) {
      consumed = this.#families.consumed.labels(MESSAGING_SYSTEM, 'receive', this.#group, stream);
      this.#consumedFrom.set(stream, consumed);
    }
    consumed.inc(batch.entries);
    this.#duration.observe(seconds);
    if (batch.failed > 0) this.#retried.inc(batch.failed);
    if (batch.dead > 0) this.#deadLettered.inc(batch.dead);
  }
}

export interface AppliedReadings {
  readonly applied: number;
  readonly tooLate: number;
  readonly tooEarly: number;
}

/**
 * Event age, seconds: late data is normal (gateways buffer through outages,
 * ops replay days), so the buckets reach from 50 ms to the 30-day horizon.
 */
const EVENT_AGE_BUCKETS = [
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
  900,
  3600,
  6 * 3600,
  86_400,
  3 * 86_400,
  7 * 86_400,
  30 * 86_400,
];

export class AggregatorSeries {
  readonly #applied: Counter.Internal;
  readonly #tooLate: Counter.Internal;
  readonly #tooEarly: Counter.Internal;
  readonly #eventAge: PlainHistogram;

  constructor(registry: Registry) {
    const readings = new Counter({
      name: 'streamgauge_aggregator_readings_total',
      help: 'Readings the aggregator took from the stream: applied to the live windows, or outside them (too_late: before the 30-day horizon; too_early: ahead of the clock).',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.#applied = readings.labels('applied');
    this.#tooLate = readings.labels('too_late');
    this.#tooEarly = readings.labels('too_early');
    for (const child of [this.#applied, this.#tooLate, this.#tooEarly]) child.inc(0);
    this.#eventAge = new PlainHistogram({
      name: 'streamgauge_reading_event_age_seconds',
      help: 'How old the data in a node’s latest key is when the aggregator writes it: now minus the event time of its latest reading, once per node written per batch.',
      buckets: EVENT_AGE_BUCKETS,
      registers: [registry],
    });
  }

  readings(batch: AppliedReadings): void {
    if (batch.applied > 0) this.#applied.inc(batch.applied);
    if (batch.tooLate > 0) this.#tooLate.inc(batch.tooLate);
    if (batch.tooEarly > 0) this.#tooEarly.inc(batch.tooEarly);
  }

  /**
   * One observation per node whose `latest` was just written. A reading
   * stamped ahead of the clock (allowed within INGEST_MAX_FUTURE_SECONDS)
   * counts as age 0.
   */
  latestWritten(nodes: Iterable<string>, eventTime: (node: string) => number | undefined, now: number): void {
    for (const node of nodes) {
      const at = eventTime(node);
      if (at !== undefined) this.#eventAge.observe(Math.max(0, now - at) / 1000);
    }
  }
}

export class ArchiverSeries {
  readonly #inserted: Counter.Internal;
  readonly #duplicate: Counter.Internal;

  constructor(registry: Registry) {
    const rows = new Counter({
      name: 'streamgauge_archiver_rows_total',
      help: 'Readings the archiver wrote to the warehouse: inserted, or duplicate (the warehouse held the identity already: a redelivery or a replay).',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.#inserted = rows.labels('inserted');
    this.#duplicate = rows.labels('duplicate');
    this.#inserted.inc(0);
    this.#duplicate.inc(0);
  }

  rows(inserted: number, duplicates: number): void {
    if (inserted > 0) this.#inserted.inc(inserted);
    if (duplicates > 0) this.#duplicate.inc(duplicates);
  }
}

export type ReconcileStatus = 'complete' | 'partial' | 'failed';

export class BackfillSeries {
  readonly #runs: Counter<'status'>;
  readonly #duration: Histogram<string>;

  constructor(registry: Registry) {
    this.#runs = new Counter({
      name: 'streamgauge_reconcile_runs_total',
      help: 'Backfill runs by status (complete; partial: some shards did not apply the panes; failed: the run threw).',
      labelNames: ['status'],
      registers: [registry],
    });
    for (const status of ['complete', 'partial', 'failed']) this.#runs.labels(status).inc(0);
    this.#duration = new Histogram({
      name: 'streamgauge_reconcile_duration_seconds',
      help: 'Duration of a backfill run: warehouse queries, the aggregators applying the panes, the report.',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
      registers: [registry],
    });
  }

  run(status: ReconcileStatus, seconds: number): void {
    this.#runs.labels(status).inc();
    this.#duration.observe(seconds);
  }
}
