import { type Clock, checkScope, type IngestConfig, type Reading, withTimeout } from '@streamgauge/core';
import type { RedisClient } from '@streamgauge/redis';
import {
  isUnavailable,
  type NodeDistricts,
  type ReadingLog,
  RedisUnavailableError,
  type StoredOutcome,
} from '@streamgauge/redis';
import type { ProcessMetrics } from '@streamgauge/telemetry';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { type Authenticator, authorize } from './authenticator.ts';
import { BodyError, type Item, jsonItems, ndjsonItems } from './body.ts';
import { HttpError } from './errors/HttpError.ts';
import { BatchError, type CheckedBatch, checkBatch, type Rejection } from './validate.ts';

export type { Rejection } from './validate.ts';

export interface IngestDependencies {
  readonly config: IngestConfig;
  readonly readingLog: ReadingLog;
  /** Used by /readyz. */
  readonly redis: RedisClient;
  /** Absent only when authentication is switched off. */
  readonly authenticator: Authenticator | undefined;
  /** Binds nodes to districts, so a district gateway sends only its own nodes. */
  readonly nodeDistricts: NodeDistricts | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Served at /metrics; counts this route's readings. */
  readonly metrics?: ProcessMetrics;
}

export interface IngestReply {
  readonly accepted: number;
  readonly duplicates: number;
  readonly rejected: Rejection[];
}

/** What a 503 says, by what the failed write may have stored. Retrying is always safe. */
const UNAVAILABLE: Record<StoredOutcome, string> = {
  none: 'Redis is unavailable: nothing from this request was stored; retry it',
  partial:
    'Redis is unavailable: some of this request was stored; retry it (stored readings come back as duplicates)',
  unknown:
    'Redis did not confirm the write (timeout or lost connection): some or all of this request may be stored; retry it (stored readings come back as duplicates)',
};

/** Seconds a client should wait before retrying after a 503. */
const RETRY_AFTER_SECONDS = 1;

const EMPTY_BODY = 'the body is empty; send a reading, an array of readings or {"readings": [...]}';

export function buildIngestApp(deps: IngestDependencies): FastifyInstance {
  const { config, readingLog, authenticator, nodeDistricts, clock } = deps;
  const unavailable = (error: unknown) => {
    throw isUnavailable(error) ? new RedisUnavailableError(error) : error;
  };
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request access logs would dominate the hot path at small batches;
    // the route logs what matters (rejections, failures) itself.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.maxBodyBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    requestIdHeader: 'x-request-id',
  });

  // Bodies stay raw buffers: UTF-8 is checked strictly (a lenient decoder would
  // turn invalid bytes into U+FFFD and accept altered node ids), and parsing
  // failures get this service's own messages.
  const raw = { parseAs: 'buffer' as const, bodyLimit: config.maxBodyBytes };
  const passThrough = (_req: unknown, body: Buffer, done: (err: null, body: Buffer) => void) =>
    done(null, body);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', raw, passThrough);
  app.addContentTypeParser(['application/x-ndjson', 'application/ndjson'], raw, passThrough);

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof RedisUnavailableError) {
      request.log.warn({ err: error, stored: error.stored }, 'redis unavailable; answered 503');
      return reply
        .code(503)
        .header('retry-after', String(RETRY_AFTER_SECONDS))
        .send({ error: UNAVAILABLE[error.stored], stored: error.stored });
    }
    const status = error.statusCode ?? 500;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    return reply.code(status).send({ error: status >= 500 ? 'internal error' : error.message });
  });

  // A keep-alive connection that finishes its request after close() began
  // would hold the server open until the client lets go: tell clients to.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) reply.header('connection', 'close');
    return payload;
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  const { metrics } = deps;
  const counted = metrics?.ingest.readings('http');
  if (metrics !== undefined) {
    app.get('/metrics', async (_request, reply) => {
      const { contentType, body } = await metrics.scrape();
      return reply.type(contentType).send(body);
    });
  }

  app.get('/readyz', async (_request, reply) => {
    try {
      await withTimeout(deps.redis.ping(), 500);
      return { status: 'ready' };
    } catch (error) {
      return reply.code(503).send({ status: 'unavailable', error: `Redis: ${(error as Error).message}` });
    }
  });

  app.post('/v1/readings', async (request, reply) => {
    let source = 'anonymous';
    let scopeOf: ((reading: Reading) => string | undefined) | undefined;
    let district: string | undefined;
    if (authenticator !== undefined) {
      const outcome = await authorize(request.headers.authorization, authenticator).catch(unavailable);
      if (!outcome.ok) {
        if (outcome.status === 401) reply.header('www-authenticate', 'Bearer');
        return reply.code(outcome.status).send({ error: outcome.error });
      }
      if (outcome.gateway) {
        const { scope, name } = outcome.gateway;
        source = name;
        scopeOf = (reading) => checkScope(scope, reading);
        if (scope.kind === 'district') district = scope.district;
      }
    }

    const body = request.body;
    if (!Buffer.isBuffer(body)) throw new HttpError(400, EMPTY_BODY);
    const [type = '', ...params] = (request.headers['content-type'] ?? '').toLowerCase().split(';');
    const mediaType = type.trim();
    const charset = params.map((p) => p.trim()).find((p) => p.startsWith('charset='));
    if (charset !== undefined && !/^charset="?utf-?8"?$/.test(charset)) {
      throw new HttpError(415, `${charset} is not supported: send UTF-8`);
    }
    let items: Item[];
    try {
      items = mediaType === 'application/json' ? jsonItems(body) : ndjsonItems(body);
    } catch (error) {
      if (error instanceof BodyError) throw new HttpError(400, error.message);
      throw error;
    }
    let batch: CheckedBatch;
    try {
      batch = checkBatch(items, {
        policy: { nowMs: clock.now(), maxFutureMs: config.maxFutureMs },
        maxReadings: config.maxBatchReadings,
        unit: 'request',
        scopeOf,
      });
    } catch (error) {
      if (!(error instanceof BatchError)) throw error;
      throw new HttpError(error.reason === 'empty' ? 400 : 413, error.message);
    }
    let valid = batch.valid;
    const rejected = batch.rejected;

    // A district gateway may send only nodes of its district, or nodes no
    // district has sent yet (which it then binds to its own).
    let unbound: string[] = [];
    if (district !== undefined && nodeDistricts !== undefined && valid.length > 0) {
      const ids = [...new Set(valid.map((v) => v.reading.node_id))];
      const bound = await nodeDistricts.lookup(ids).catch(unavailable);
      unbound = ids.filter((id) => !bound.has(id));
      valid = valid.filter(({ index, reading }) => {
        const owner = bound.get(reading.node_id);
        if (owner === undefined || owner === district) return true;
        rejected.push({
          index,
          error: `node_id: ${JSON.stringify(reading.node_id)} belongs to district ${JSON.stringify(owner)}, outside this gateway's district ${JSON.stringify(district)}`,
        });
        return false;
      });
      rejected.sort((a, b) => a.index - b.index);
    }

    const { accepted, duplicates } = await readingLog.append(
      valid.map((v) => v.reading),
      source,
    );
    if (district !== undefined && unbound.length > 0) {
      // The readings are stored: a failure here must not fail the request.
      await nodeDistricts?.claim(unbound, district).catch((error: unknown) => {
        request.log.warn(
          { err: error },
          'binding new nodes to their district failed; the next request retries',
        );
      });
    }
    const result: IngestReply = { accepted, duplicates, rejected };
    counted?.add({ accepted, duplicates, rejected: rejected.length });
    if (rejected.length > 0) {
      request.log.info(
        { gateway: source, rejected: rejected.length, first: rejected[0] },
        'readings rejected',
      );
    }
    request.log.debug({ gateway: source, accepted, duplicates }, 'batch appended');
    // Nothing in the request was usable: a client error, with the same
    // per-item detail, so a gateway does not mistake it for success.
    return reply.code(valid.length === 0 ? 422 : 200).send(result);
  });

  return app;
}
