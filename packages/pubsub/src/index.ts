export { AnomalyTopic } from './anomalyTopic.ts';
export { pubsubClient } from './client.ts';
