import type { Cluster, Redis } from 'ioredis';
import { runScript } from '../scripts.ts';

/** A rate: so many units a second, up to `burst` at once. */
export interface Rate {
  readonly perSecond: number;
  readonly burst: number;
}

/**
 * Rate limits kept in Redis, so every ingest replica draws on the same
 * budget (`scripts/takeRate.lua`). A bucket is one key that expires once
 * full again: idle gateways and addresses cost nothing.
 */
export class RateLimits {
  readonly #redis: Redis | Cluster;

  constructor(redis: Redis | Cluster) {
    this.#redis = redis;
  }

  /**
   * Takes `cost` units from the bucket when they are there.
   * @returns 0 when taken, else the milliseconds until they will be (nothing is taken).
   */
  take(bucket: string, rate: Rate, cost: number): Promise<number> {
    return this.#run(bucket, rate, cost, false);
  }

  /** Like `take`, taking nothing: 0 when `cost` units are there, else the milliseconds until they will be. */
  peek(bucket: string, rate: Rate, cost: number): Promise<number> {
    return this.#run(bucket, rate, cost, true);
  }

  async #run(bucket: string, rate: Rate, cost: number, peek: boolean): Promise<number> {
    const args = [rate.perSecond, rate.burst, cost, peek ? '1' : '0'];
    const waitUs = (await runScript(this.#redis, 'takeRate', [bucket], args)) as number;
    return Math.ceil(waitUs / 1000);
  }
}
