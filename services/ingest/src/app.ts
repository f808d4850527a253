import type { Socket } from 'node:net';
import {
  BatchError,
  type BatchRules,
  type Clock,
  checkScope,
  type DecodedBatch,
  decodeBatch,
  formatOf,
  type GatewayRecord,
  type IngestConfig,
  type Rejection,
  withTimeout,
} from '@streamgauge/core';
import type { RedisClient } from '@streamgauge/redis';
import {
  type NodeOwners,
  type ReadingLog,
  RedisUnavailableError,
  type StoredOutcome,
  StreamFullError,
} from '@streamgauge/redis';
import type { ProcessMetrics } from '@streamgauge/telemetry';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { HttpError } from './errors/HttpError.ts';
import type { Admission, Gatekeeper } from './gatekeeper.ts';
import { closeLingering } from './lingeringClose.ts';
import { keepOwnNodes } from './ownership.ts';
import { RedisBudget } from './redisBudget.ts';

export type { Rejection } from '@streamgauge/core';

export interface IngestDependencies {
  readonly config: IngestConfig;
  readonly readingLog: ReadingLog;
  /** Used by /readyz. */
  readonly redis: RedisClient;
  /** Tokens and rates; absent only when authentication is switched off. */
  readonly gatekeeper: Gatekeeper | undefined;
  /** Who owns each node, so a gateway writes only its own; absent with authentication off. */
  readonly nodeOwners: NodeOwners | undefined;
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
/** After a 503 for a full stream: the consumers need time to catch up. */
const STREAM_FULL_RETRY_AFTER_SECONDS = 5;

const EMPTY_BODY = 'the body is empty; send a reading, an array of readings or {"readings": [...]}';

/** What a request carries from admission to its handler. */
interface Admitted {
  readonly gateway: GatewayRecord | undefined;
  readonly budget: RedisBudget;
}

export function buildIngestApp(deps: IngestDependencies): FastifyInstance {
  const { config, readingLog, gatekeeper, nodeOwners, clock } = deps;
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request access logs would dominate the hot path at small batches;
    // the route logs what matters (rejections, failures) itself.
    logController: new LogController({ disableRequestLogging: true }),
    // Only the readings route takes a body (its own limit, after admission):
    // anywhere else a body is refused, not read.
    bodyLimit: 1024,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    requestIdHeader: 'x-request-id',
    trustProxy: trustProxyOption(config.trustProxy),
    // A client holds a connection only so long: headers, then the whole
    // request (else 408), then idle between requests.
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveMs,
    http: {
      headersTimeout: Math.min(config.headersTimeoutMs, config.requestTimeoutMs),
      // Node checks those deadlines on this period (30 s by default).
      connectionsCheckingInterval: Math.min(1_000, config.headersTimeoutMs),
    },
    clientErrorHandler: answerClientError(config),
  });
  app.server.maxConnections = config.maxConnections;
  // A client that asks before sending its body (`Expect: 100-continue`, as
  // curl does above 1 KiB) is told to go on only once admitted (in `admit`):
  // Node would otherwise say so at once, and the body would come anyway.
  app.server.on('checkContinue', (request, response) => app.server.emit('request', request, response));

  // Bodies stay raw buffers: UTF-8 is checked strictly (a lenient decoder would
  // turn invalid bytes into U+FFFD and accept altered node ids), and parsing
  // failures get this service's own messages.
  const raw = { parseAs: 'buffer' as const };
  const passThrough = (_req: unknown, body: Buffer, done: (err: null, body: Buffer) => void) =>
    done(null, body);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', raw, passThrough);
  app.addContentTypeParser(['application/x-ndjson', 'application/ndjson'], raw, passThrough);

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof StreamFullError) {
      request.log.warn({ err: error, stored: error.stored }, 'stream full; answered 503');
      return reply
        .code(503)
        .header('retry-after', String(STREAM_FULL_RETRY_AFTER_SECONDS))
        .send({ error: error.message, stored: error.stored });
    }
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

  // A request for no route is answered before its body is read, like a
  // request without a token: only admitted requests are ever buffered.
  app.addHook('onRequest', async (request, reply) => {
    if (request.is404) {
      return refuse(reply, 404, `no route ${request.method} ${request.url.split('?')[0]}`, {});
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  const { metrics } = deps;
  if (metrics !== undefined) {
    app.addHook('onResponse', async (request, reply) => {
      metrics.ingest.request(
        request.method,
        request.routeOptions.url ?? 'unmatched',
        reply.statusCode,
        reply.elapsedTime / 1000,
      );
    });
  }
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

  const admitted = new WeakMap<FastifyRequest, Admitted>();

  // Runs before the body is read: a request that may not send is answered
  // from its headers, and its connection closed with the body unread.
  const admit = async (request: FastifyRequest, reply: FastifyReply) => {
    const budget = new RedisBudget(config.redisTimeoutMs);
    let gateway: GatewayRecord | undefined;
    if (gatekeeper !== undefined) {
      let admission: Admission;
      try {
        admission = await gatekeeper.admit(request.headers.authorization, request.ip, budget);
      } catch (error) {
        if (!(error instanceof RedisUnavailableError)) throw error;
        request.log.warn({ err: error }, 'redis unavailable before the body was read; answered 503');
        return refuse(reply, 503, UNAVAILABLE.none, {
          stored: 'none',
          retryAfterSeconds: RETRY_AFTER_SECONDS,
        });
      }
      if (!admission.ok) {
        if (admission.status === 401) reply.header('www-authenticate', 'Bearer');
        return refuse(reply, admission.status, admission.error, admission);
      }
      gateway = admission.gateway;
    }
    admitted.set(request, { gateway, budget });
    if (request.headers.expect?.toLowerCase() === '100-continue') reply.raw.writeContinue();
  };

  app.post(
    '/v1/readings',
    { onRequest: admit, bodyLimit: config.maxBodyBytes },
    async function appendReadings(request, reply) {
      const { gateway, budget } = admitted.get(request) as Admitted;
      const source = gateway?.name ?? 'anonymous';

      const batch = readBatch(request, {
        policy: { nowMs: clock.now(), maxFutureMs: config.maxFutureMs },
        maxReadings: config.maxBatchReadings,
        unit: 'request',
        scopeOf: gateway === undefined ? undefined : (reading) => checkScope(gateway.scope, reading),
      });
      let valid = batch.valid;
      const rejected = batch.rejected;

      if (gateway !== undefined && gatekeeper !== undefined && nodeOwners !== undefined) {
        const overRate = await gatekeeper.takeReadings(gateway, batch.items.length, budget);
        if (overRate !== undefined && !overRate.ok)
          return refuse(reply, overRate.status, overRate.error, overRate);
        valid = await keepOwnNodes(gateway, valid, rejected, nodeOwners, config.newNodesPerHour, budget);
      }

      const { accepted, duplicates } = await budget.append(
        readingLog.append(
          valid.map((v) => v.reading),
          source,
        ),
      );
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
    },
  );

  return app;
}

/** A hop count as the function fastify makes of one (its types take no number). */
function trustProxyOption(
  trust: false | number | string,
): boolean | string | ((address: string, hop: number) => boolean) {
  return typeof trust === 'number' ? (_address, hop) => hop < trust : trust;
}

/**
 * The request's batch, read by its content type; one that cannot be taken at
 * all is a 400 (unreadable, empty), 413 (too many readings) or 415.
 */
function readBatch(request: FastifyRequest, rules: BatchRules): DecodedBatch {
  const body = request.body;
  if (!Buffer.isBuffer(body)) throw new HttpError(400, EMPTY_BODY);
  const type = formatOf(request.headers['content-type'] ?? '');
  if ('unsupported' in type) throw new HttpError(415, type.unsupported);
  try {
    return decodeBatch(body, type.format, rules);
  } catch (error) {
    if (!(error instanceof BatchError)) throw error;
    throw new HttpError(error.reason === 'too-many' ? 413 : 400, error.message);
  }
}

/**
 * Answers before the body is read, and closes the connection after: the
 * unread body is never buffered, and the client cannot go on sending it
 * for long; it reads the answer first (a lingering close).
 */
function refuse(
  reply: FastifyReply,
  status: number,
  error: string,
  extra: { stored?: StoredOutcome; retryAfterSeconds?: number | undefined },
): FastifyReply {
  if (extra.retryAfterSeconds !== undefined) reply.header('retry-after', String(extra.retryAfterSeconds));
  const { headers } = reply.request;
  const bodyComing =
    headers['transfer-encoding'] !== undefined ||
    (headers['content-length'] !== undefined && headers['content-length'] !== '0');
  if (bodyComing && reply.raw.socket !== null) closeLingering(reply.raw.socket);
  return reply
    .code(status)
    .header('connection', 'close')
    .send(extra.stored === undefined ? { error } : { error, stored: extra.stored });
}

/**
 * Node reports a request that took longer than INGEST_REQUEST_TIMEOUT_SECONDS
 * (or whose headers exceeded the header size) as a client error on the socket;
 * it gets its status and our own words, then the socket is closed.
 */
function answerClientError(config: IngestConfig) {
  return (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, message] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [
            408,
            `the request was not received within ${config.requestTimeoutMs / 1000} s (INGEST_REQUEST_TIMEOUT_SECONDS); nothing of it was stored`,
          ]
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'the request headers are too large']
          : [400, 'the request is not valid HTTP'];
    // As Node's own handler: write an answer unless one is under way (on a
    // keep-alive connection earlier answers were written before this request).
    const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (socket.writable && answering?.headersSent !== true) {
      const body = JSON.stringify({ error: message });
      socket.write(
        `HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}
