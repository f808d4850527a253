import {
  Duration,
  type Message,
  type PubSub,
  type StatusError,
  type Subscription,
  SubscriptionCloseBehaviors,
  type Topic,
} from '@google-cloud/pubsub';
import {
  BatchError,
  type BatchFormat,
  type Clock,
  type DecodedBatch,
  decodeBatch,
  formatOf,
  GATEWAY_NAME,
  type IngestConfig,
  type Item,
  type Rejection,
  withTimeout,
} from '@streamgauge/core';
import { type AppendResult, type ReadingLog, RedisUnavailableError } from '@streamgauge/redis';
import type { Logger } from 'pino';

export type PubSubSourceSettings = NonNullable<IngestConfig['pubsub']>;

export interface PubSubSourceDependencies {
  readonly client: PubSub;
  /** Only `append` is used: a test may wrap the real log to watch it. */
  readonly readingLog: Pick<ReadingLog, 'append'>;
  /** The batch limits (INGEST_MAX_READINGS, INGEST_MAX_FUTURE_SECONDS) and `pubsub`. */
  readonly config: IngestConfig & { readonly pubsub: PubSubSourceSettings };
  readonly clock: Clock;
  readonly logger: Logger;
  /** Also told the readings each message appended, found duplicate and rejected (metrics). */
  readonly counted?: { add(counts: { accepted: number; duplicates: number; rejected: number }): void };
  /** Also told what became of each message and how long it took, seconds (metrics). */
  readonly handled?: { message(outcome: 'acked' | 'nacked' | 'dead_lettered', seconds: number): void };
  /**
   * How long a message whose append or dead-lettering failed is held before
   * it is nacked. Default 1 s: see RETRY_DELAY_MS.
   */
  readonly retryDelayMs?: number;
  /** How long a subscription the client closed after an error waits to reopen. Default 10 s. */
  readonly reopenDelayMs?: number;
}

/** Totals since start; a message delivered twice counts twice in `received`. */
export interface PubSubSourceStats {
  received: number;
  acked: number;
  nacked: number;
  /** Messages published to the dead-letter topic (whole or their rejected readings). */
  deadLettered: number;
  accepted: number;
  duplicates: number;
  rejected: number;
}

/**
 * A failed message is held this long before it is nacked. Redis refuses at
 * once while it is down, and Pub/Sub redelivers a nacked message at once
 * (unless the subscription has a retry policy): without the pause the source
 * would spin through its whole flow-control window. Held messages also keep
 * their flow-control slots, so no new ones are pulled meanwhile.
 */
const RETRY_DELAY_MS = 1_000;

/** How long a stream that stopped (the subscription was missing, a permission was denied) waits to reopen. */
const REOPEN_DELAY_MS = 10_000;

/** close() lets messages in flight finish (append, ack) for this long, then nacks what is left. */
const CLOSE_TIMEOUT = Duration.from({ seconds: 10 });

/** A dead-letter publish that takes longer fails (and the message is nacked): the client's own retries last minutes. */
const PUBLISH_TIMEOUT_MS = 30_000;

/** gRPC's INVALID_ARGUMENT: Pub/Sub refuses the message as it is. */
const INVALID_ARGUMENT = 3;

/** Pub/Sub's limit for one attribute value. */
const ATTRIBUTE_BYTES = 1024;

/** The attributes a dead letter gets from this source (see docs/ingest.md). */
const DEAD_LETTER_ATTRIBUTES = new Set(['error', 'rejected', 'rejected_count', 'message_id', 'subscription']);

/** A message's data read as a batch, or why it cannot be. */
type Checked =
  | { readonly ok: true; readonly format: BatchFormat; readonly batch: DecodedBatch }
  | { readonly ok: false; readonly error: string };

/**
 * Readings from a Pub/Sub subscription (StreamingPull), validated like the
 * HTTP API's and appended to the same log. A message's data is what an HTTP
 * body would be: one reading, an array, `{"readings": [...]}`, or NDJSON
 * when its `content-type` attribute says `application/x-ndjson`.
 *
 * Delivery is at least once; the effect is exactly once because the log
 * drops a reading whose identity it already holds. So a message is acked
 * only after its readings are in Redis (and its rejected readings in the
 * dead-letter topic), and nacked, to come again, when either fails: a
 * redelivery appends what is missing and counts the rest as duplicates.
 */
export class PubSubSource {
  readonly #stats: PubSubSourceStats = {
    received: 0,
    acked: 0,
    nacked: 0,
    deadLettered: 0,
    accepted: 0,
    duplicates: 0,
    rejected: 0,
  };
  readonly #deps: PubSubSourceDependencies;
  readonly #settings: PubSubSourceSettings;
  readonly #log: Logger;
  readonly #source: string;
  readonly #retryDelayMs: number;
  readonly #reopenDelayMs: number;
  #subscription: Subscription | undefined;
  #deadLetters: Topic | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  /** Wakes messages held before their nack: close() nacks them at once. */
  readonly #held = new Set<() => void>();
  #reopen: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(deps: PubSubSourceDependencies) {
    this.#deps = deps;
    this.#settings = deps.config.pubsub;
    this.#log = deps.logger.child({ subscription: this.#settings.subscription });
    this.#source = `pubsub:${this.#settings.subscription}`;
    this.#retryDelayMs = deps.retryDelayMs ?? RETRY_DELAY_MS;
    this.#reopenDelayMs = deps.reopenDelayMs ?? REOPEN_DELAY_MS;
  }

  /** A copy of the totals so far. */
  get stats(): PubSubSourceStats {
    return { ...this.#stats };
  }

  /** Opens the streams; messages arrive from then on. */
  start(): void {
    if (this.#subscription !== undefined) return;
    const { client } = this.#deps;
    const { subscription: name, deadLetterTopic, maxMessages, maxBytes, maxStreams } = this.#settings;
    this.#deadLetters = client.topic(deadLetterTopic, {
      batching: { maxMessages: 100, maxMilliseconds: 10 },
    });
    const subscription = client.subscription(name, {
      // Held, not pulled-and-buffered: a message counts against the window
      // from its delivery to its ack or nack, including the retry pause.
      flowControl: { maxMessages, maxBytes, allowExcessMessages: false },
      streamingOptions: { maxStreams },
      closeOptions: { behavior: SubscriptionCloseBehaviors.WaitForProcessing, timeout: CLOSE_TIMEOUT },
    });
    subscription.on('message', (message: Message) => {
      const handled = this.#handle(message);
      this.#inFlight.add(handled);
      void handled.finally(() => this.#inFlight.delete(handled));
    });
    subscription.on('error', (error: StatusError) => {
      this.#log.error({ err: error, code: error.code }, 'Pub/Sub subscription failed');
    });
    // The client closes the subscription after an error it does not retry
    // (NOT_FOUND, PERMISSION_DENIED): keep trying, so fixing the cause is enough.
    subscription.on('close', () => {
      if (this.#closing) return;
      this.#log.warn({ retryInMs: this.#reopenDelayMs }, 'Pub/Sub subscription closed; reopening');
      this.#reopen = setTimeout(() => {
        this.#reopen = undefined;
        if (!this.#closing) subscription.open();
      }, this.#reopenDelayMs);
    });
    this.#subscription = subscription;
    this.#log.info({ deadLetterTopic, maxMessages, maxBytes, maxStreams }, 'pulling readings from Pub/Sub');
  }

  /**
   * Stops pulling; messages in flight finish (appended and acked) for up to
   * 10 s, messages waiting for a retry are nacked now. Leaves the client
   * open: whoever made it closes it.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#reopen);
    for (const wake of this.#held) wake();
    await this.#subscription?.close();
    // Bounded: a handler waits at most one publish timeout, but close() must
    // not wait on a handler stuck elsewhere either.
    await Promise.race([
      Promise.allSettled([...this.#inFlight]),
      new Promise((resolve) => setTimeout(resolve, CLOSE_TIMEOUT.totalOf('millisecond')).unref()),
    ]);
    await this.#deadLetters?.flush().catch(() => {});
    this.#subscription?.removeAllListeners();
    this.#log.info(this.stats, 'stopped pulling readings from Pub/Sub');
  }

  async #handle(message: Message): Promise<void> {
    this.#stats.received++;
    const started = performance.now();
    const log = this.#log;
    if (this.#closing) {
      this.#nack(message, started);
      return;
    }
    let deadLettered = false;
    let stage: 'check' | 'append' | 'dead-letter' = 'check';
    try {
      const checked = this.#check(message);
      stage = 'append';
      let appended: AppendResult = { accepted: 0, duplicates: 0 };
      let rejected = 0;
      if (!checked.ok) {
        stage = 'dead-letter';
        await this.#deadLetter(message, message.data, { error: checked.error });
        deadLettered = true;
        log.info({ messageId: message.id, error: checked.error }, 'message dead-lettered');
      } else {
        const { batch, format } = checked;
        const { items } = batch;
        rejected = batch.rejected.length;
        // The rejected readings first: a failure of the append after it then
        // repeats a dead letter (recognisable by `message_id`), where the
        // other order would append the valid readings again on every retry.
        if (rejected > 0) {
          stage = 'dead-letter';
          const first = batch.rejected[0] as Rejection;
          // Every reading rejected: the message as it came; else only the rejected ones.
          const data =
            batch.valid.length === 0
              ? message.data
              : rejectedItems(message.data, format, items, batch.rejected);
          await this.#deadLetter(message, data, {
            error: `${rejected} of ${items.length} readings rejected; the first, index ${first.index}: ${first.error}`,
            rejected: rejectedAttribute(batch.rejected),
            rejected_count: String(rejected),
          });
          deadLettered = true;
          log.info({ messageId: message.id, rejected, first }, 'readings rejected and dead-lettered');
        }
        if (batch.valid.length > 0) {
          stage = 'append';
          appended = await this.#deps.readingLog.append(
            batch.valid.map((v) => v.reading),
            this.#sourceOf(message),
          );
          // Counted as soon as they are in: a later nack does not take them out.
          this.#count(appended.accepted, appended.duplicates, 0);
        }
      }
      message.ack();
      this.#stats.acked++;
      this.#deps.handled?.message(
        deadLettered ? 'dead_lettered' : 'acked',
        (performance.now() - started) / 1000,
      );
      if (rejected > 0) this.#count(0, 0, rejected);
      log.debug({ messageId: message.id, ...appended, rejected }, 'message taken');
    } catch (error) {
      const unavailable = error instanceof RedisUnavailableError;
      log[unavailable ? 'warn' : 'error'](
        {
          err: error,
          messageId: message.id,
          stage,
          ...(unavailable && { stored: error.stored }),
          retryInMs: this.#retryDelayMs,
        },
        `${stage === 'dead-letter' ? 'dead-lettering' : stage === 'append' ? 'appending' : 'checking'} a message failed; it will be nacked for redelivery`,
      );
      await this.#hold(this.#retryDelayMs);
      this.#nack(message, started);
    }
  }

  #check(message: Message): Checked {
    // Attribute names are case-sensitive in Pub/Sub; a header's are not, and publishers write either.
    const declared = Object.entries(message.attributes).find(
      ([name]) => name.toLowerCase() === 'content-type',
    )?.[1];
    const type = formatOf(declared ?? 'application/json');
    if ('unsupported' in type) return { ok: false, error: type.unsupported };
    try {
      const batch = decodeBatch(message.data, type.format, {
        policy: { nowMs: this.#deps.clock.now(), maxFutureMs: this.#deps.config.maxFutureMs },
        maxReadings: this.#deps.config.maxBatchReadings,
        unit: 'message',
      });
      return { ok: true, format: type.format, batch };
    } catch (error) {
      if (!(error instanceof BatchError)) throw error;
      return { ok: false, error: error.message };
    }
  }

  /** The `gateway` attribute when it is a gateway name, else `pubsub:<subscription>`. */
  #sourceOf(message: Message): string {
    const gateway = message.attributes.gateway;
    return gateway !== undefined && GATEWAY_NAME.test(gateway) ? gateway : this.#source;
  }

  /**
   * Publishes to the dead-letter topic: the original attributes, then the
   * reasons and where the message came from. Resolves once Pub/Sub has it.
   */
  async #deadLetter(message: Message, data: Buffer, reasons: Record<string, string>): Promise<void> {
    const topic = this.#deadLetters as Topic;
    const attributes: Record<string, string> = {};
    // A dead letter sent back after a fix may still carry an earlier verdict: only this one's stays.
    for (const [name, value] of Object.entries(message.attributes)) {
      if (!DEAD_LETTER_ATTRIBUTES.has(name)) attributes[name] = value;
    }
    const verdict = {
      ...reasons,
      error: fitBytes(reasons.error ?? '', ATTRIBUTE_BYTES),
      message_id: message.id,
      subscription: this.#settings.subscription,
    };
    try {
      await withTimeout(
        topic.publishMessage({ data, attributes: { ...attributes, ...verdict } }),
        PUBLISH_TIMEOUT_MS,
      );
    } catch (error) {
      // Refused for good (INVALID_ARGUMENT: the original's attributes plus
      // ours are too many, say): retrying would refuse it forever, so the
      // message goes as it came, with the verdict alone.
      if ((error as StatusError).code !== INVALID_ARGUMENT) throw error;
      this.#log.warn(
        { err: error, messageId: message.id },
        'dead letter refused; sending the original with the verdict only',
      );
      await withTimeout(
        topic.publishMessage({ data: message.data, attributes: verdict }),
        PUBLISH_TIMEOUT_MS,
      );
    }
    this.#stats.deadLettered++;
  }

  #count(accepted: number, duplicates: number, rejected: number): void {
    this.#stats.accepted += accepted;
    this.#stats.duplicates += duplicates;
    this.#stats.rejected += rejected;
    this.#deps.counted?.add({ accepted, duplicates, rejected });
  }

  #nack(message: Message, started: number): void {
    message.nack();
    this.#stats.nacked++;
    this.#deps.handled?.message('nacked', (performance.now() - started) / 1000);
  }

  /** Waits, unless close() wakes it first. */
  #hold(ms: number): Promise<void> {
    if (this.#closing) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#held.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#held.add(wake);
    });
  }
}

/**
 * The rejected items in the message's own format, in the order of
 * `rejected`: NDJSON as their original lines, JSON as an array of the items
 * as parsed (re-serialized: a number beyond the float range shows as null).
 */
function rejectedItems(
  data: Buffer,
  format: BatchFormat,
  items: readonly Item[],
  rejected: readonly Rejection[],
): Buffer {
  if (format === 'ndjson') {
    // The same lines ndjsonItems numbers: an item's index counts the non-blank lines before it.
    const lines = data
      .toString('utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
    return Buffer.from(`${rejected.map((r) => lines[r.index]).join('\n')}\n`);
  }
  try {
    return Buffer.from(JSON.stringify(rejected.map((r) => (items[r.index] as { raw: unknown }).raw)));
  } catch {
    // Nested too deep to serialise again: the message as it came, whole.
    return data;
  }
}

/** `rejected` as JSON, cut to the leading entries that fit one attribute (`rejected_count` has the total). */
function rejectedAttribute(rejected: readonly Rejection[]): string {
  const parts: string[] = [];
  let bytes = 2;
  for (const rejection of rejected) {
    const part = JSON.stringify({ index: rejection.index, error: rejection.error });
    const size = Buffer.byteLength(part) + (parts.length > 0 ? 1 : 0);
    if (bytes + size > ATTRIBUTE_BYTES) break;
    parts.push(part);
    bytes += size;
  }
  return `[${parts.join(',')}]`;
}

/** The text cut to at most `max` UTF-8 bytes, on a character boundary, marked with … when cut. */
function fitBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = '';
  let bytes = 3; // the ellipsis
  for (const char of text) {
    const size = Buffer.byteLength(char);
    if (bytes + size > max) break;
    out += char;
    bytes += size;
  }
  return `${out}…`;
}
