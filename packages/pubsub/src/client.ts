import { type ClientConfig, PubSub } from '@google-cloud/pubsub';
import type { Env } from '@streamgauge/core';

/**
 * The Pub/Sub client, the standard Google way (credentials, project). With
 * PUBSUB_EMULATOR_HOST set it talks to the emulator only: without
 * `universeDomain` the client would still look for credentials and probe
 * the cloud's metadata server.
 */
export function pubsubClient(env: Env): PubSub {
  const emulator = env.PUBSUB_EMULATOR_HOST?.trim();
  const projectId = env.PUBSUB_PROJECT_ID?.trim() || env.GOOGLE_CLOUD_PROJECT?.trim();
  const config: ClientConfig = {
    ...(projectId && { projectId }),
    ...(emulator && { apiEndpoint: emulator, emulatorMode: true, universeDomain: 'googleapis.com' }),
  };
  return new PubSub(config);
}
