import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  /** `http://host:port`, the port as bound (port 0 takes a free one). */
  readonly url: string;
  close(): Promise<void>;
}

/** Resolves when the service can do its work (its Redis answers); rejects saying why not. */
export type ReadinessCheck = () => Promise<void>;

/** How long /readyz waits for the readiness check. */
const READINESS_TIMEOUT_MS = 1_000;

/**
 * GET /metrics on its own port, for the services that have no HTTP server
 * of their own (ingest serves /metrics beside its API), with the probes an
 * orchestrator needs: /healthz (200 while the process answers) and /readyz
 * (200 once `ready()` resolves within a second, else 503 with the reason).
 * Anything else: 404.
 */
export async function serveMetrics(
  registry: Registry,
  options: { readonly host: string; readonly port: number; readonly ready?: ReadinessCheck },
): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    const json = (status: number, body: object) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('not found: GET /metrics, /healthz, /readyz\n');
      return;
    }
    if (path === '/healthz') return json(200, { status: 'ok' });
    if (path === '/readyz') {
      const check = options.ready ?? (() => Promise.resolve());
      withTimeout(check(), READINESS_TIMEOUT_MS).then(
        () => json(200, { status: 'ready' }),
        (error: Error) => json(503, { status: 'unavailable', error: error.message }),
      );
      return;
    }
    if (path !== '/metrics') {
      response
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('not found: GET /metrics, /healthz, /readyz\n');
      return;
    }
    registry.metrics().then(
      (body) => {
        response.writeHead(200, { 'content-type': registry.contentType });
        response.end(request.method === 'HEAD' ? undefined : body);
      },
      (error: Error) => {
        response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        // Prometheus keeps its connection open between scrapes.
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function withTimeout(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
