import type { RedisConfig } from '@streamgauge/core';
import { gatewayKeys } from '@streamgauge/core';
import type { Cluster, Redis } from 'ioredis';
import { connectRedis } from '../connection.ts';

/** What changed in the gateway registry: a token (revoked or added) or node owners. */
export type RegistryChange = 'gateways' | 'nodes';

/** Announces a change, so every ingest replica forgets what it remembered (push, not expiry). */
export async function publishRegistryChange(redis: Redis | Cluster, change: RegistryChange): Promise<void> {
  await redis.publish(gatewayKeys.changes, change);
}

/**
 * Listens for registry changes on a connection of its own (a subscribed
 * connection can do nothing else). A change missed while the connection was
 * down is assumed: `onChange` runs for both kinds on every (re)connect.
 */
export class RegistryChanges {
  readonly #subscriber: Redis | Cluster;

  private constructor(subscriber: Redis | Cluster) {
    this.#subscriber = subscriber;
  }

  static listen(
    config: RedisConfig,
    name: string,
    onChange: (change: RegistryChange) => void,
  ): RegistryChanges {
    const subscriber = connectRedis(config, { name });
    // A change published while not subscribed (before the first connection
    // was up, or during an outage) is missed: assume one on every (re)connect.
    subscriber.on('ready', () => {
      onChange('gateways');
      onChange('nodes');
    });
    subscriber.on('error', () => {
      // Reconnects by itself; the ready handler covers what was missed.
    });
    subscriber.on('message', (_channel: string, message: string) => {
      if (message === 'gateways' || message === 'nodes') onChange(message);
    });
    subscriber.subscribe(gatewayKeys.changes).catch(() => {
      // Not connected yet: ioredis subscribes when it is (autoResubscribe).
    });
    return new RegistryChanges(subscriber);
  }

  async close(): Promise<void> {
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
  }
}
