import type { Redis } from 'ioredis';

/**
 * Waits until a consumer group has read everything (lag 0) and acknowledged
 * it (pending 0) on every given stream.
 */
export async function waitForDrain(
  redis: Redis,
  streams: readonly string[],
  group: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let drained = true;
    for (const stream of streams) {
      const groups = (await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
      const info = groups.map(toObject).find((g) => g.name === group);
      if (info === undefined || Number(info.pending) !== 0 || Number(info.lag ?? 0) !== 0) drained = false;
    }
    if (drained) return;
    if (Date.now() > deadline)
      throw new Error(`group ${group} did not drain ${streams.join(', ')} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function toObject(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}
