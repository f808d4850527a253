import { compareEntryIds, type Reading } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';
import { readingsBetween } from './streamPosition.ts';

/**
 * A stream's readings after a cut, by node, read as far as asked: what a
 * reconcile replays onto the warehouse's panes (the aggregator up to the
 * entry it committed, the backfill up to the mark of the state it compares).
 */
export class StreamTail {
  readonly #redis: RedisClient;
  readonly #stream: string;
  #position: string;
  #entries = 0;
  readonly #byNode = new Map<string, { entry: string; reading: Reading }[]>();

  constructor(redis: RedisClient, stream: string, cut: string) {
    this.#redis = redis;
    this.#stream = stream;
    this.#position = cut;
  }

  /** Stream entries read so far (those that decode). */
  get entries(): number {
    return this.#entries;
  }

  /** Reads on to `upTo` (inclusive). All or nothing: a read that fails keeps none of its part, so it can be retried. */
  async readTo(upTo: string): Promise<void> {
    if (compareEntryIds(upTo, this.#position) <= 0) return;
    const read: { entry: string; readings: Reading[] }[] = [];
    for await (const { id, readings } of readingsBetween(this.#redis, this.#stream, this.#position, upTo)) {
      read.push({ entry: id, readings });
    }
    for (const { entry, readings } of read) {
      for (const reading of readings) {
        const list = this.#byNode.get(reading.node_id);
        if (list === undefined) this.#byNode.set(reading.node_id, [{ entry, reading }]);
        else list.push({ entry, reading });
      }
    }
    this.#entries += read.length;
    this.#position = upTo;
  }

  /** The node's readings, in stream order: of the entries up to `upTo`, or of all read so far. */
  of(nodeId: string, upTo?: string): Reading[] {
    const list = this.#byNode.get(nodeId) ?? [];
    const kept = upTo === undefined ? list : list.filter((e) => compareEntryIds(e.entry, upTo) <= 0);
    return kept.map((e) => e.reading);
  }
}
