import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './connection.ts';

export type BatchReply = [error: Error | null, result: unknown];

/**
 * Sends many commands in one go and returns every reply, in order. On a
 * standalone Redis that is one pipeline. A cluster pipeline must stay on one
 * master, so there each command is sent on its own and ioredis'
 * auto-pipelining groups them per master: still one write per master.
 */
export async function sendBatch(
  redis: RedisClient,
  build: (batch: ChainableCommander) => void,
): Promise<BatchReply[]> {
  if (!redis.isCluster) {
    const pipeline = redis.pipeline();
    build(pipeline);
    return ((await pipeline.exec()) ?? []) as BatchReply[];
  }
  const sent: Promise<unknown>[] = [];
  const target: ChainableCommander = new Proxy({} as ChainableCommander, {
    get: (_, name) => {
      const command = (redis as unknown as Record<string | symbol, (...a: unknown[]) => Promise<unknown>>)[
        name
      ];
      if (typeof command !== 'function') throw new Error(`not a Redis command: ${String(name)}`);
      return (...args: unknown[]) => {
        sent.push(command.apply(redis, args));
        return target;
      };
    },
  });
  build(target);
  const settled = await Promise.allSettled(sent);
  return settled.map(
    (s): BatchReply => (s.status === 'fulfilled' ? [null, s.value] : [s.reason as Error, null]),
  );
}

/** sendBatch, failing with the first error any command met. */
export async function sendBatchOrThrow(
  redis: RedisClient,
  build: (batch: ChainableCommander) => void,
): Promise<unknown[]> {
  const replies = await sendBatch(redis, build);
  const failed = replies.find(([error]) => error !== null);
  if (failed) throw failed[0];
  return replies.map(([, result]) => result);
}
