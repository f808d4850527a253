import { RANGES } from '@streamgauge/core';
import { NODE_STATUSES } from './model.ts';
import { NODE_SORTS } from './queries.ts';

const UNITS =
  'Units: flow L/s, pressure bar, temperature °C, volume m³, ages seconds, uptime_percentage a fraction 0..1. Times ISO-8601 UTC.';

const query = (name: string, description: string, schema: Record<string, unknown>) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});

const range = query('range', 'Window of the metrics', { type: 'string', enum: RANGES, default: '24h' });
const district = query('district', 'Only nodes of this district', { type: 'string' });
const json = (description: string) => ({
  description,
  content: { 'application/json': { schema: { type: 'object' } } },
});
const errors = {
  '400': json('A parameter is not valid: {error, parameter}'),
  '401': json('A viewer token is required, or the one sent is not a viewer token'),
  '403': json('The viewer token was revoked'),
};

/** The API's description, served at /api/v1/openapi.json (docs/dashboard.md says the same in prose). */
export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: {
      title: 'streamgauge read API',
      version: '1',
      description: `Read-only view of the read model (docs/read-model.md) and of the pipeline. ${UNITS}`,
    },
    components: {
      securitySchemes: {
        viewer: { type: 'http', scheme: 'bearer', description: 'A viewer token (`streamgauge viewers add`)' },
      },
    },
    security: [{ viewer: [] }, {}],
    paths: {
      '/api/v1/config': {
        get: { summary: 'Time zone, ranges and status limits', responses: { '200': json('Settings') } },
      },
      '/api/v1/overview': {
        get: {
          summary: 'System metrics, node statuses, open anomalies by severity, freshness and consumer lag',
          parameters: [range, district],
          responses: { '200': json('Overview'), ...errors },
        },
      },
      '/api/v1/nodes': {
        get: {
          summary: 'Nodes with status, latest values and the range metrics: filtered, sorted, paged',
          parameters: [
            range,
            district,
            query('status', 'Only nodes in this status', { type: 'string', enum: NODE_STATUSES }),
            query('q', 'Case-insensitive substring of the id or name', { type: 'string' }),
            query('sort', 'Sort key', { type: 'string', enum: NODE_SORTS, default: 'node_id' }),
            query('order', 'Sort order', { type: 'string', enum: ['asc', 'desc'], default: 'asc' }),
            query('offset', 'First item', { type: 'integer', minimum: 0, default: 0 }),
            query('limit', 'Items per page', { type: 'integer', minimum: 1, maximum: 500, default: 50 }),
          ],
          responses: { '200': json('{range, total, offset, limit, items}'), ...errors },
        },
      },
      '/api/v1/nodes/{id}': {
        get: {
          summary:
            'One node: metadata, status, latest, metrics for every range, 7-day hourly series, minimum night flow, anomalies',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': json('Node'), '404': json('No such node in nodes:all'), ...errors },
        },
      },
      '/api/v1/anomalies': {
        get: {
          summary: 'Open anomalies (most severe first), then recent ones (newest first)',
          parameters: [
            query('state', 'Which lists', {
              type: 'string',
              enum: ['open', 'recent', 'all'],
              default: 'all',
            }),
            query('type', 'Anomaly type', { type: 'string' }),
            query('severity', 'Severity', { type: 'string', enum: ['critical', 'warning', 'info'] }),
            district,
            query('node', 'Node id', { type: 'string' }),
            query('limit', 'Items per list', { type: 'integer', minimum: 1, maximum: 1000, default: 100 }),
          ],
          responses: { '200': json('{open, recent}'), ...errors },
        },
      },
      '/api/v1/pipeline': {
        get: {
          summary:
            'What `streamgauge status --json` reports: per shard and group lag, pending, dead letters; reconcile; cache',
          responses: { '200': json('Pipeline report'), ...errors },
        },
      },
      '/api/v1/events': {
        get: {
          summary:
            'Server-Sent Events: `change` after the view took a change in, `reset` when a resume is impossible; heartbeat comments every 15 s; resumable with Last-Event-ID',
          parameters: [
            query('access_token', 'A viewer token, for clients that cannot set headers', { type: 'string' }),
          ],
          responses: { '200': { description: 'text/event-stream' }, ...errors },
        },
      },
    },
  };
}
