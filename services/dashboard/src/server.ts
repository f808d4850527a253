import { type Config, DEFAULT_ANOMALY_SETTINGS, RANGES, SEVERITY_RANK } from '@streamgauge/core';
import {
  connectRedis,
  DEFAULT_HEALTH_LIMITS,
  pipelineReport,
  type RedisClient,
  ViewerRegistry,
  whenReady,
} from '@streamgauge/redis';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { isLoopback, tokenOf, ViewerAccess } from './access.ts';
import { type Answer, AnswerCache } from './answers.ts';
import { type Asset, buildAssets } from './assets.ts';
import { EventHub } from './events.ts';
import { NODE_STATUSES } from './model.ts';
import { openApiDocument } from './openapi.ts';
import {
  BadParameter,
  choiceOf,
  integerOf,
  NODE_SORTS,
  type NodeQuery,
  Queries,
  rangeOf,
} from './queries.ts';
import { ReadModelView } from './view.ts';

export interface RunningDashboard {
  readonly url: string;
  readonly view: ReadModelView;
  readonly events: EventHub;
  stop(): Promise<void>;
}

export interface DashboardOptions {
  /** Where to listen; default DASHBOARD_HOST, else every interface. */
  readonly host?: string;
  readonly port?: number;
  /** View refresh and polling intervals (tests shorten them), ms. */
  readonly refreshMs?: number;
  readonly pollMs?: number;
  /** Event-stream heartbeat (and credential re-check), ms; default 15 s. */
  readonly heartbeatMs?: number;
  /** How long a step of the view's refresh may wait for Redis before it fails, ms; default 10 s. */
  readonly deadlineMs?: number;
}

type Query = Record<string, string | undefined>;

/**
 * The read API, its live events and the page, from Redis only: a view of
 * every node kept in memory by the aggregator's notices answers requests.
 */
export async function startDashboard(
  config: Config,
  logger: Logger,
  options: DashboardOptions = {},
): Promise<RunningDashboard> {
  const host = options.host ?? config.dashboard.host ?? '0.0.0.0';
  const port = options.port ?? config.dashboard.port;
  // The view's own connection: its reads have a deadline per step (ReadModelView#read).
  const redis = connectRedis(config.redis, { name: 'dashboard', logger });
  const subscriber = connectRedis(config.redis, { name: 'dashboard-changes', logger });
  // What a request itself asks Redis (a series not yet held, the pipeline, a token) fails
  // fast while Redis is away, so the rest of the answer still comes from memory.
  const reads = connectRedis(config.redis, {
    name: 'dashboard-reads',
    failFast: true,
    commandTimeoutMs: 2_000,
    logger,
  });
  const closeRedis = () => {
    for (const connection of [redis, subscriber, reads]) connection.disconnect();
  };
  let view: ReadModelView | undefined;
  try {
    await whenReady(redis, 30_000);
    view = new ReadModelView(redis, subscriber, {
      shards: config.stream.shards,
      logger,
      ...(options.refreshMs !== undefined && { refreshMs: options.refreshMs }),
      ...(options.pollMs !== undefined && { pollMs: options.pollMs }),
      ...(options.deadlineMs !== undefined && { deadlineMs: options.deadlineMs }),
    });
    const [assets] = await Promise.all([buildAssets(), view.start()]);
    const events = new EventHub(options.heartbeatMs);
    view.onChange((change) => events.publish(change));
    const access = new ViewerAccess(new ViewerRegistry(reads, { now: () => Date.now() }), !isLoopback(host));
    const queries = new Queries(view, {
      staleAfterMs: config.dashboard.staleAfterMs,
      offlineAfterMs: config.dashboard.offlineAfterMs,
      nightHours: [
        config.anomalies.settings.nightStartHour ?? DEFAULT_ANOMALY_SETTINGS.nightStartHour,
        config.anomalies.settings.nightEndHour ?? DEFAULT_ANOMALY_SETTINGS.nightEndHour,
      ],
    });
    const app = Fastify({
      loggerInstance: logger.child({ component: 'dashboard' }) as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      // Event streams never end by themselves: a stop closes them.
      forceCloseConnections: true,
    });
    routes(app, { config, reads, view, queries, events, access, assets, loopback: !access.required });
    const url = await app.listen({ host, port });
    logger.info({ url, authRequired: access.required }, 'dashboard listening');
    const running = view;
    return {
      url: url.replace('0.0.0.0', '127.0.0.1'),
      view,
      events,
      async stop() {
        try {
          events.close();
          await app.close();
          await running.stop();
        } finally {
          closeRedis();
        }
      },
    };
  } catch (error) {
    await view?.stop();
    closeRedis();
    throw error;
  }
}

interface Parts {
  readonly config: Config;
  /** Fail-fast reads for what a request asks Redis itself. */
  readonly reads: RedisClient;
  /** Listening on loopback only: the Host header must name this machine (no DNS rebinding). */
  readonly loopback: boolean;
  readonly view: ReadModelView;
  readonly queries: Queries;
  readonly events: EventHub;
  readonly access: ViewerAccess;
  readonly assets: Map<string, Asset>;
}

function routes(app: FastifyInstance, parts: Parts): void {
  const { config, reads, view, queries, events, access, assets, loopback } = parts;
  let pipeline: { at: number; report: Promise<unknown> } | undefined;

  app.setErrorHandler((error: Error, _request, reply) => {
    if (error instanceof BadParameter) {
      return reply.code(400).send({ error: error.message, parameter: error.parameter });
    }
    reply.log.error({ err: error }, 'dashboard request failed');
    return reply.code(500).send({ error: 'internal error; see the dashboard log' });
  });

  app.addHook('onRequest', async (request, reply) => {
    if (loopback && !isLocalHost(request.headers.host)) {
      return reply
        .code(403)
        .send({ error: `Host ${JSON.stringify(request.headers.host ?? '')} is not this machine` });
    }
    // By the route matched, not the raw URL (which may be percent-encoded or absolute).
    const route = request.routeOptions.url;
    if (route === undefined || !route.startsWith('/api/') || route === '/api/v1/openapi.json') return;
    const decision = await access.check(tokenOf(request.headers.authorization, request.query), Date.now());
    if (!decision.allowed) {
      if (decision.status === 401) reply.header('www-authenticate', 'Bearer realm="streamgauge dashboard"');
      return reply.code(decision.status).send({ error: decision.message });
    }
  });

  for (const [path, asset] of assets) {
    app.get(path, (request, reply) => sendAsset(request, reply, asset));
  }

  // Deployment probes: no token (they are not under /api/), no Redis for liveness.
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const reason = view.loaded ? await redisUnanswered(reads, READY_PING_MS) : 'the view is still loading';
    if (reason !== undefined) return reply.code(503).send({ status: 'unavailable', reason });
    return { status: 'ready' };
  });

  app.get('/api/v1/openapi.json', async () => openApiDocument());

  app.get('/api/v1/config', async () => ({
    timeZone: config.dashboard.timeZone,
    ranges: RANGES,
    staleAfterSeconds: config.dashboard.staleAfterMs / 1000,
    offlineAfterSeconds: config.dashboard.offlineAfterMs / 1000,
    authRequired: access.required,
  }));

  // What clients poll: serialized once per view version and second (AnswerCache).
  const answers = new AnswerCache();
  const generation = (now: number) => `${view.version}.${Math.floor(now / 1000)}`;

  app.get('/api/v1/overview', async (request, reply) => {
    const q = request.query as Query;
    const range = rangeOf(q.range);
    const district = q.district || undefined;
    const now = Date.now();
    const answer = await answers.answer(
      `overview ${range} ${JSON.stringify(district ?? '')}`,
      generation(now),
      () => ({
        value: queries.overview(range, district, now),
        keep: true,
      }),
    );
    return sendAnswer(request, reply, answer);
  });

  app.get('/api/v1/nodes', async (request, reply) => {
    const q = request.query as Query;
    const query: NodeQuery = {
      range: rangeOf(q.range),
      ...(q.district ? { district: q.district } : {}),
      ...(q.status ? { status: choiceOf('status', q.status, NODE_STATUSES) } : {}),
      ...(q.q ? { q: q.q } : {}),
      sort: choiceOf('sort', q.sort, NODE_SORTS, 'node_id') ?? 'node_id',
      order: choiceOf('order', q.order, ['asc', 'desc'] as const, 'asc') ?? 'asc',
      offset: integerOf('offset', q.offset, 0, 0, Number.MAX_SAFE_INTEGER),
      limit: integerOf('limit', q.limit, 50, 1, 500),
    };
    const now = Date.now();
    const answer = await answers.answer(`nodes ${JSON.stringify(query)}`, generation(now), async () => {
      const page = queries.nodes(query, now);
      let complete = true;
      const items = await Promise.all(
        page.items.map(async (node) => {
          const series = await view.series(node, reads).catch(() => null);
          if (series === null) complete = false;
          return queries.summary(node, query.range, now, series);
        }),
      );
      return {
        value: { range: query.range, total: page.total, offset: query.offset, limit: query.limit, items },
        // A page whose sparklines could not all be read is answered, not kept.
        keep: complete,
      };
    });
    return sendAnswer(request, reply, answer);
  });

  app.get('/api/v1/nodes/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    const node = view.nodes.get(id);
    if (node === undefined)
      return reply.code(404).send({ error: `no node ${JSON.stringify(id)} in nodes:all` });
    return queries.detail(node, Date.now(), await view.series(node, reads));
  });

  app.get('/api/v1/anomalies', async (request) => {
    const q = request.query as Query;
    return queries.anomalies({
      state: choiceOf('state', q.state, ['open', 'recent', 'all'] as const, 'all'),
      ...(q.type ? { type: q.type } : {}),
      ...(q.severity
        ? { severity: choiceOf('severity', q.severity, Object.keys(SEVERITY_RANK) as string[]) }
        : {}),
      ...(q.district ? { district: q.district } : {}),
      ...(q.node ? { node: q.node } : {}),
      limit: integerOf('limit', q.limit, 100, 1, 1000),
    });
  });

  // XINFO and XPENDING per shard: read at most once a second, whoever asks.
  app.get('/api/v1/pipeline', async () => {
    const now = Date.now();
    if (pipeline === undefined || now - pipeline.at >= 1_000) {
      const report = pipelineReport(
        reads,
        { shards: config.stream.shards, cacheRefreshMs: config.cacheRefreshMs },
        DEFAULT_HEALTH_LIMITS,
        now,
      );
      pipeline = { at: now, report };
      report.catch(() => {
        pipeline = undefined;
      });
    }
    return pipeline.report;
  });

  app.get('/api/v1/events', (request, reply) => {
    if (events.full)
      return reply.code(503).send({ error: 'too many event streams on this process; retry later' });
    reply.hijack();
    const lastEventId = request.headers['last-event-id'];
    const token = tokenOf(request.headers.authorization, request.query);
    events.attach(
      reply.raw,
      Array.isArray(lastEventId) ? lastEventId[0] : lastEventId,
      async () => (await access.check(token, Date.now())).allowed,
    );
  });
}

/** How long `/readyz` waits for Redis to answer a PING. */
const READY_PING_MS = 1_000;

/** Why Redis is not answering (a PING not back within `ms`, or failed); undefined when it answers. */
async function redisUnanswered(reads: RedisClient, ms: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`Redis did not answer a PING within ${ms} ms`), ms);
  });
  try {
    return await Promise.race([
      reads.ping().then(
        () => undefined,
        (error: Error) => `Redis did not answer a PING: ${error.message}`,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** On loopback, only names of this machine: a page elsewhere cannot reach the API by rebinding a name to 127.0.0.1. */
function isLocalHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : (host.split(':')[0] ?? '');
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** A serialized JSON answer; `304` when the client holds this very one. */
function sendAnswer(request: FastifyRequest, reply: FastifyReply, answer: Answer) {
  reply.header('content-type', 'application/json; charset=utf-8');
  if (answer.etag === '') return reply.send(answer.body);
  reply.header('etag', answer.etag).header('cache-control', 'no-cache');
  if (request.headers['if-none-match'] === answer.etag) return reply.code(304).send();
  return reply.send(answer.body);
}

/** A bundled file, compressed as the client accepts, revalidated by its hash. */
function sendAsset(request: FastifyRequest, reply: FastifyReply, asset: Asset) {
  reply.header('content-type', asset.type).header('etag', asset.etag).header('vary', 'accept-encoding');
  reply.header('cache-control', 'no-cache');
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  const accepted = String(request.headers['accept-encoding'] ?? '');
  if (/\bbr\b/.test(accepted)) return reply.header('content-encoding', 'br').send(asset.brotli);
  if (/\bgzip\b/.test(accepted)) return reply.header('content-encoding', 'gzip').send(asset.gzip);
  return reply.send(asset.body);
}
