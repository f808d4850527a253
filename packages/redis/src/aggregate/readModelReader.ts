import type { RedisClient } from '../connection.ts';
import { runScript } from '../scripts.ts';

/** A key to read: a hash's fields and values, or only its values. */
export interface KeyRead {
  readonly key: string;
  readonly what: 'hash' | 'values';
}

/** What one key held: its flat reply (empty when missing), or why it could not be read. */
export type KeyReply = string[] | Error;

/**
 * The read model's hashes read back in bulk (readKeys.lua): one script call
 * for a whole batch of keys, one reply. A key of another type comes back as
 * an Error of its own, so a caller can skip just what it concerns. On a
 * Redis Cluster the keys of one call may live on several masters: each is
 * then read by a command of its own, pipelined by the cluster client.
 */
export class ReadModelReader {
  readonly #redis: RedisClient;

  constructor(redis: RedisClient) {
    this.#redis = redis;
  }

  /** Sends the reads at once (before the first await), so a caller can cork the socket around the call. */
  read(reads: readonly KeyRead[]): Promise<KeyReply[]> {
    if (reads.length === 0) return Promise.resolve([]);
    if (this.#redis.isCluster) return Promise.all(reads.map((r) => this.#readOne(r)));
    const keys = reads.map((r) => r.key);
    const kinds = reads.map((r) => (r.what === 'values' ? 'v' : 'h'));
    return runScript(this.#redis, 'readKeys', keys, kinds).then((reply) =>
      (reply as (string[] | string)[]).map((item, i) =>
        typeof item === 'string' ? wrongType((reads[i] as KeyRead).key, item) : item,
      ),
    );
  }

  #readOne({ key, what }: KeyRead): Promise<KeyReply> {
    const reply =
      what === 'values'
        ? this.#redis.hvals(key)
        : this.#redis.call('HGETALL', key).then((flat) => flat as string[]);
    return reply.catch((error: Error) => {
      if (error.name === 'ReplyError' && error.message.startsWith('WRONGTYPE')) return error;
      throw error;
    });
  }
}

function wrongType(key: string, type: string): Error {
  return new Error(`${key} holds a ${type}, not a hash`);
}
