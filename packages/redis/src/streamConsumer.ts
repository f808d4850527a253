import { decodeEntry, type Reading, type ShardKeys } from '@streamgauge/core';
import type { Redis } from 'ioredis';

export type DeliveredEntry =
  | { readonly id: string; readonly readings: Reading[] }
  | { readonly id: string; readonly error: string };

export interface DeliveredBatch {
  readonly shard: ShardKeys;
  readonly entries: DeliveredEntry[];
}

export interface StreamConsumerOptions {
  readonly shards: readonly ShardKeys[];
  readonly group: string;
  readonly consumer: string;
  /** Entries per stream per read. */
  readonly count: number;
  /** Longest a read blocks, ms: bounded so a stop or a dead connection is noticed. */
  readonly blockMs: number;
}

type XReadGroupReply = [stream: string, entries: [id: string, fields: string[] | null][]][] | null;

/**
 * A consumer in a group over the readings streams, on its own connection
 * (a blocking read holds the connection). It first re-reads the entries
 * delivered to it earlier and never acknowledged (what a restart must finish),
 * then reads new ones.
 */
export class StreamConsumer {
  readonly #redis: Redis;
  readonly #options: StreamConsumerOptions;
  readonly #byStream: Map<string, ShardKeys>;
  #pendingDone = false;

  constructor(blocking: Redis, options: StreamConsumerOptions) {
    this.#redis = blocking;
    this.#options = options;
    this.#byStream = new Map(options.shards.map((s) => [s.stream, s]));
    // A read whose reply was lost to a dropped connection still delivered its
    // entries: they sit in this consumer's pending list. After every
    // (re)connection, read that list first.
    blocking.on('ready', () => {
      this.#pendingDone = false;
    });
  }

  get consumer(): string {
    return this.#options.consumer;
  }

  /** Creates the group on every stream (from the stream's start) where it is missing. */
  async ensureGroups(): Promise<void> {
    for (const shard of this.#options.shards) {
      try {
        await this.#redis.xgroup('CREATE', shard.stream, this.#options.group, '0', 'MKSTREAM');
      } catch (error) {
        if (!(error as Error).message.startsWith('BUSYGROUP')) throw error;
      }
    }
  }

  /** The next batches, one per shard with entries; none after a block with nothing new. */
  async read(): Promise<DeliveredBatch[]> {
    if (!this.#pendingDone) {
      // ID 0: this consumer's entries delivered before and never acknowledged.
      const pending = this.#decode(await this.#xreadgroup('0', []));
      if (pending.length > 0) return pending;
      this.#pendingDone = true;
    }
    return this.#decode(await this.#xreadgroup('>', ['BLOCK', this.#options.blockMs]));
  }

  async #xreadgroup(id: '0' | '>', block: (string | number)[]): Promise<XReadGroupReply> {
    const { shards, group, consumer, count } = this.#options;
    const streams = shards.map((s) => s.stream);
    const args = [
      'GROUP',
      group,
      consumer,
      'COUNT',
      count,
      ...block,
      'STREAMS',
      ...streams,
      ...streams.map(() => id),
    ];
    return (await this.#redis.call('XREADGROUP', ...args)) as XReadGroupReply;
  }

  #decode(reply: XReadGroupReply): DeliveredBatch[] {
    if (reply === null) return [];
    const batches: DeliveredBatch[] = [];
    for (const [stream, rows] of reply) {
      if (rows.length === 0) continue;
      const shard = this.#byStream.get(stream);
      if (shard === undefined) continue;
      const entries: DeliveredEntry[] = rows.map(([id, fields]) => {
        // A pending entry whose data was trimmed comes back without fields.
        if (fields === null)
          return { id, error: 'entry was trimmed from the stream before it was processed' };
        try {
          return { id, readings: decodeEntry(id, fields).readings };
        } catch (error) {
          return { id, error: (error as Error).message };
        }
      });
      batches.push({ shard, entries });
    }
    return batches;
  }
}
