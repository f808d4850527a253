import { type ClientConfig, PubSub } from '@google-cloud/pubsub';
import type { Config } from '@streamgauge/core';

/**
 * The Pub/Sub client, the standard Google way (credentials, project). With
 * an emulator host (PUBSUB_EMULATOR_HOST) it talks to the emulator only:
 * without `universeDomain` the client would still look for credentials and
 * probe the cloud's metadata server.
 */
export function pubsubClient(settings: Config['pubsubClient']): PubSub {
  const { emulatorHost, projectId } = settings;
  const config: ClientConfig = {
    ...(projectId && { projectId }),
    ...(emulatorHost && { apiEndpoint: emulatorHost, emulatorMode: true, universeDomain: 'googleapis.com' }),
  };
  return new PubSub(config);
}
