import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// docker-compose.yml, the site's deployment: valid against the Compose
// Specification's JSON schema (dclint validates it with the schema it ships,
// then lints), and holding what the deployment promises: Redis with a
// password, AOF and no port beyond the host; a healthcheck, a restart policy
// and Redis' health before start for every service; two aggregator replicas;
// volumes for Redis' data and the warehouse.

const root = path.resolve(import.meta.dirname, '../..');
const composeFile = path.join(root, 'docker-compose.yml');
const composeText = readFileSync(composeFile, 'utf8');
const redisConf = readFileSync(path.join(root, 'infra/redis.conf'), 'utf8');
const dclintBin = path.join(
  path.dirname(createRequire(import.meta.url).resolve('dclint/package.json')),
  'bin/dclint.cjs',
);

// biome-ignore lint/suspicious/noTemplateCurlyInString: compose's interpolation, as the file spells it
const PASSWORD = '${REDIS_PASSWORD:-change-me}';

const scratch = mkdtempSync(path.join(tmpdir(), 'streamgauge-compose-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface LintMessage {
  readonly rule: string;
  readonly type: string;
  readonly message: string;
}

/**
 * dclint's verdict on a compose file: schema errors (rule `invalid-schema`)
 * and lint findings. Two style rules are off: one wants the `x-` anchors in
 * alphabetical order, but an anchor must come before its aliases.
 */
function dclint(file: string): Promise<{ code: number; messages: LintMessage[]; output: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [
        dclintBin,
        file,
        '--disable-rule',
        'top-level-properties-order',
        'service-keys-order',
        '--max-warnings',
        '0',
        '-f',
        'json',
      ],
      { cwd: root },
      (error, stdout, stderr) => {
        try {
          const [report] = JSON.parse(stdout) as { messages: LintMessage[] }[];
          if (report === undefined) throw new Error('no file linted');
          resolve({
            code: error ? Number(error.code ?? 1) : 0,
            messages: report.messages,
            output: stdout + stderr,
          });
        } catch {
          reject(new Error(`dclint gave no report: ${stdout}${stderr}`));
        }
      },
    );
  });
}

describe('docker-compose.yml against the Compose Specification', () => {
  it('is valid and lints clean (dclint)', async () => {
    const run = await dclint(composeFile);
    expect(run.messages).toEqual([]);
    expect(run.code, run.output).toBe(0);
  });

  it('a misspelled key, even in an anchor merged into services, is a schema error', async () => {
    const broken = path.join(scratch, 'docker-compose.yml');
    writeFileSync(broken, composeText.replace('  stop_grace_period: 30s', '  stop_grace_periode: 30s'));
    const run = await dclint(broken);
    expect(run.messages.map((m) => m.rule)).toContain('invalid-schema');
    expect(run.output).toContain('/services/aggregator-1');
  });

  const dockerCompose = spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0;
  if (!dockerCompose)
    console.warn('test/infra/compose.test.ts: `docker compose` is not installed: its check is skipped');
  it.skipIf(!dockerCompose)('docker compose config accepts it', () => {
    const run = spawnSync('docker', ['compose', '-f', composeFile, 'config', '--quiet'], {
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
  });
});

type Env = Record<string, string | undefined>;

interface Healthcheck {
  readonly test?: string | string[];
  readonly disable?: boolean;
}

interface Service {
  readonly image?: string;
  readonly build?: string | { context: string };
  readonly command?: string[];
  readonly environment?: Record<string, string>;
  readonly ports?: (string | { published?: string | number; host_ip?: string })[];
  readonly volumes?: (string | { type?: string; source?: string; target: string })[];
  readonly depends_on?: Record<string, { condition?: string }> | string[];
  readonly healthcheck?: Healthcheck;
  readonly restart?: string;
}

interface Compose {
  readonly services: Record<string, Service>;
  readonly volumes?: Record<string, unknown>;
}

/** Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `$$`. */
function interpolate(value: unknown, env: Env): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (all, name, op, arg) => {
      if (all === '$$') return '$';
      const set = env[name];
      const usable = op?.startsWith(':') ? set !== undefined && set !== '' : set !== undefined;
      if (op?.endsWith('?') && !usable) throw new Error(`${name}: ${arg}`);
      if (op?.endsWith('-') && !usable) return arg;
      return set ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  return value;
}

function load(text: string, env: Env): Compose {
  const document = parse(text, { merge: true }) as Record<string, unknown>;
  return interpolate(document, env) as Compose;
}

const APP_COMMANDS = new Set(['ingest', 'aggregate', 'archive', 'backfill', 'dashboard']);
const LOOPBACK = new Set(['127.0.0.1', '::1', '[::1]', 'localhost']);

/** The host address a published port binds ('' for every interface). */
function hostIp(port: Service['ports'] extends (infer P)[] | undefined ? P : never): string {
  if (typeof port !== 'string') return port.host_ip ?? '';
  const parts = port.replace(/\/(tcp|udp)$/, '').split(':');
  return parts.length >= 3 ? parts.slice(0, -2).join(':') : '';
}

function volumeAt(service: Service, target: string): string | undefined {
  for (const volume of service.volumes ?? []) {
    if (typeof volume === 'string') {
      const [source, mountedAt] = volume.split(':');
      if (mountedAt === target) return source;
    } else if (volume.target === target) {
      return volume.source;
    }
  }
  return undefined;
}

function healthcheckText(service: Service): string {
  const test = service.healthcheck?.test;
  return Array.isArray(test) ? test.join(' ') : (test ?? '');
}

/** What the deployment promises and `compose` does not hold, in words. */
function problems(compose: Compose, conf: string, env: Env): string[] {
  const found: string[] = [];
  const password = env.REDIS_PASSWORD || 'change-me';
  const services = Object.entries(compose.services);
  const app = services.filter(([, s]) => APP_COMMANDS.has(s.command?.[0] ?? ''));
  const redis = services.filter(([, s]) => s.image?.startsWith('redis:'));
  const namedVolumes = new Set(Object.keys(compose.volumes ?? {}));

  for (const [name, service] of services) {
    const test = service.healthcheck?.test;
    if (service.healthcheck?.disable || test === undefined || (Array.isArray(test) && test[0] === 'NONE'))
      found.push(`${name}: no healthcheck`);
    if (!['always', 'unless-stopped', 'on-failure'].includes(service.restart ?? 'no'))
      found.push(`${name}: no restart policy`);
    for (const port of service.ports ?? []) {
      const published = typeof port === 'string' ? port : JSON.stringify(port);
      if (!['ingest', 'dashboard'].includes(name) && !LOOPBACK.has(hostIp(port)))
        found.push(`${name}: publishes ${published} beyond 127.0.0.1`);
    }
  }

  // Redis: a password, AOF from infra/redis.conf, its data in a volume.
  if (redis.length !== 1) found.push(`${redis.length} redis services, not 1`);
  for (const [name, service] of redis) {
    const command = service.command ?? [];
    const at = command.indexOf('--requirepass');
    if (at < 0 || command[at + 1] !== password)
      found.push(`${name}: not started with --requirepass REDIS_PASSWORD`);
    const confPath = command[1];
    if (command[0] !== 'redis-server' || volumeAt(service, confPath ?? '') !== './infra/redis.conf')
      found.push(`${name}: not started with infra/redis.conf`);
    for (const flag of ['--appendonly', '--appendfsync', '--save', '--dir'])
      if (command.includes(flag)) found.push(`${name}: ${flag} overrides infra/redis.conf`);
    const data = volumeAt(service, '/data');
    if (data === undefined || !namedVolumes.has(data)) found.push(`${name}: /data is not a named volume`);
    if (service.environment?.REDISCLI_AUTH !== password && !/ -a /.test(healthcheckText(service)))
      found.push(`${name}: the healthcheck does not authenticate`);
  }
  const setting = (key: string) => new RegExp(`^${key}\\s+(\\S+)\\s*$`, 'm').exec(conf)?.[1];
  if (setting('appendonly') !== 'yes') found.push('redis.conf: appendonly is not yes');
  if (setting('appendfsync') !== 'always') found.push('redis.conf: appendfsync is not always');
  if (setting('dir') !== '/data') found.push('redis.conf: dir is not /data (the volume)');

  // The streamgauge services: one image, Redis with the password, healthy Redis first.
  const shards = new Set<string | undefined>();
  for (const [name, service] of app) {
    const build = typeof service.build === 'string' ? service.build : service.build?.context;
    if (build !== '.') found.push(`${name}: not built from the repository's Dockerfile`);
    const url = service.environment?.REDIS_URL;
    let parsed: URL | undefined;
    try {
      parsed = url === undefined ? undefined : new URL(url);
    } catch {}
    if (
      parsed === undefined ||
      !['redis:', 'rediss:'].includes(parsed.protocol) ||
      parsed.hostname !== 'redis' ||
      decodeURIComponent(parsed.password) !== password
    )
      found.push(`${name}: REDIS_URL does not reach redis with REDIS_PASSWORD`);
    const dependsOn = service.depends_on;
    if (Array.isArray(dependsOn) || dependsOn?.redis?.condition !== 'service_healthy')
      found.push(`${name}: does not wait for redis to be healthy`);
    shards.add(service.environment?.STREAM_SHARDS);
  }
  const [count] = shards;
  if (shards.size !== 1) found.push(`STREAM_SHARDS differs between services: ${[...shards].join(', ')}`);
  else if (!(Number(count) > 1))
    found.push(`STREAM_SHARDS is ${count}: the aggregator replicas cannot share`);

  // Two aggregator replicas, each its own consumer.
  const consumers = app
    .filter(([, s]) => s.command?.[0] === 'aggregate')
    .map(([, s]) => s.environment?.AGGREGATOR_CONSUMER);
  if (consumers.length < 2) found.push(`${consumers.length} aggregator replicas, not 2`);
  if (consumers.some((c) => !c) || new Set(consumers).size !== consumers.length)
    found.push(`aggregator consumer names are not distinct: ${consumers.join(', ')}`);

  // The archiver's DuckDB file in a volume; no backfill on its own beside it.
  const archivers = app.filter(([, s]) => s.command?.[0] === 'archive');
  if (archivers.length !== 1) found.push(`${archivers.length} archivers, not 1`);
  for (const [name, service] of archivers) {
    const data = volumeAt(service, service.environment?.DATA_DIR ?? '/data');
    if (data === undefined || !namedVolumes.has(data)) found.push(`${name}: DATA_DIR is not a named volume`);
  }
  for (const [name, service] of app)
    if (service.command?.[0] === 'backfill' && !service.environment?.BIGQUERY_PROJECT)
      found.push(`${name}: a backfill beside the archiver's DuckDB file`);

  // Each probe asks the port its service listens on.
  const portOf: Record<string, [string, string]> = {
    ingest: ['INGEST_PORT', '8080'],
    aggregate: ['METRICS_PORT', '9464'],
    archive: ['METRICS_PORT', '9465'],
    backfill: ['METRICS_PORT', '9466'],
    dashboard: ['DASHBOARD_PORT', '8090'],
  };
  for (const [name, service] of app) {
    const [variable, fallback] = portOf[service.command?.[0] ?? ''] ?? ['', ''];
    const port = service.environment?.[variable] ?? fallback;
    if (!healthcheckText(service).includes(`http://127.0.0.1:${port}/`))
      found.push(`${name}: the healthcheck does not ask port ${port}`);
  }
  return found;
}

describe('what docker-compose.yml promises', () => {
  it('holds with the default password and with one set in the environment', () => {
    expect(problems(load(composeText, {}), redisConf, {})).toEqual([]);
    const env = { REDIS_PASSWORD: 'b5f0c1d2e3a4', STREAM_SHARDS: '8' };
    expect(problems(load(composeText, env), redisConf, env)).toEqual([]);
  });

  it('publishes ingest and the dashboard, and Redis and Prometheus on 127.0.0.1 only', () => {
    const { services } = load(composeText, {});
    expect(services.ingest?.ports).toEqual(['0.0.0.0:8080:8080']);
    expect(services.dashboard?.ports).toEqual(['0.0.0.0:8090:8090']);
    expect(services.redis?.ports).toEqual(['127.0.0.1:6379:6379']);
    expect(services.prometheus?.ports).toEqual(['127.0.0.1:9090:9090']);
  });

  it('keeps the documented Redis persistence (docs/ingest.md)', () => {
    expect(redisConf).toMatch(/^appendonly yes$/m);
    expect(redisConf).toMatch(/^appendfsync always$/m);
  });

  // Each check can fail: a broken copy of the file is caught, saying what broke.
  const broken: [string, (text: string) => string, string, string?][] = [
    [
      'Redis published on every interface',
      (t) => t.replace("'127.0.0.1:6379:6379'", "'6379:6379'"),
      'redis: publishes 6379:6379 beyond 127.0.0.1',
    ],
    [
      'Redis without a password',
      (t) => t.replace(`      - --requirepass\n      - ${PASSWORD}\n`, ''),
      'redis: not started with --requirepass REDIS_PASSWORD',
    ],
    [
      'a REDIS_URL without the password',
      (t) => t.replace(`redis://:${PASSWORD}@redis`, 'redis://redis'),
      'ingest: REDIS_URL does not reach redis with REDIS_PASSWORD',
    ],
    [
      'AOF turned off on the command line',
      (t) => t.replace('      - --maxmemory\n', '      - --appendonly\n      - "no"\n      - --maxmemory\n'),
      'redis: --appendonly overrides infra/redis.conf',
    ],
    ['appendfsync everysec', (t) => t, 'redis.conf: appendfsync is not always', 'everysec'],
    [
      'a service without a healthcheck',
      (t) => t.replace(/( {2}ingest:\n(?:.*\n)*?) {4}healthcheck:\n(?: {6}.*\n)+/, '$1'),
      'ingest: no healthcheck',
    ],
    [
      'both aggregators under one consumer name',
      (t) => t.replace('AGGREGATOR_CONSUMER: aggregator-2', 'AGGREGATOR_CONSUMER: aggregator-1'),
      'aggregator consumer names are not distinct: aggregator-1, aggregator-1',
    ],
    [
      'one aggregator',
      (t) => t.replace(/ {2}aggregator-2:\n(?: {4}.*\n| {6}.*\n)+\n/, ''),
      '1 aggregator replicas, not 2',
    ],
    [
      'the warehouse outside a volume',
      (t) => t.replace('    volumes:\n      - warehouse:/data\n', ''),
      'archiver: DATA_DIR is not a named volume',
    ],
    [
      'one service with another STREAM_SHARDS',
      (t) =>
        t.replace(
          '      DASHBOARD_PORT: "8090"\n',
          '      DASHBOARD_PORT: "8090"\n      STREAM_SHARDS: "2"\n',
        ),
      'STREAM_SHARDS differs between services: 4, 2',
    ],
    [
      'a service that does not wait for Redis',
      (t) => t.replace('condition: service_healthy', 'condition: service_started'),
      'aggregator-1: does not wait for redis to be healthy',
    ],
  ];
  it.each(broken)('catches %s', (_what, edit, problem, appendfsync) => {
    const text = edit(composeText);
    if (appendfsync === undefined) expect(text, 'the edit applies').not.toBe(composeText);
    const conf =
      appendfsync === undefined
        ? redisConf
        : redisConf.replace(/^appendfsync always$/m, `appendfsync ${appendfsync}`);
    expect(problems(load(text, {}), conf, {})).toContain(problem);
  });
});

// The Redis the compose file starts: infra/redis.conf and the command line's
// options, loaded by a real redis-server (7.0, like the image), must give AOF
// with fsync always, no eviction, maxmemory, and refuse clients without the
// password. Only `dir` is moved from /data (the volume) to a scratch folder.
const redisFound = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error === undefined;
if (!redisFound && !process.env.CI)
  console.warn('test/infra/compose.test.ts: redis-server is not installed: the Redis check is skipped');
describe.skipIf(!redisFound && !process.env.CI)(
  'redis-server started as docker-compose.yml starts it',
  () => {
    it('has AOF with fsync always, noeviction, maxmemory, and requires the password', async () => {
      const password = 'c0ffee42';
      const command = load(composeText, { REDIS_PASSWORD: password, REDIS_MAXMEMORY: '256mb' }).services.redis
        ?.command;
      expect(command?.slice(0, 2)).toEqual(['redis-server', '/usr/local/etc/redis/redis.conf']);
      const dir = mkdtempSync(path.join(scratch, 'redis-'));
      const conf = path.join(dir, 'redis.conf');
      expect(redisConf).toMatch(/^dir \/data$/m);
      writeFileSync(conf, redisConf.replace(/^dir \/data$/m, `dir ${dir}`));
      const socket = path.join(dir, 'redis.sock');
      const server = spawn(
        'redis-server',
        [conf, ...(command ?? []).slice(2), '--port', '0', '--unixsocket', socket, '--daemonize', 'no'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let log = '';
      server.stdout.on('data', (chunk) => {
        log += chunk;
      });
      server.stderr.on('data', (chunk) => {
        log += chunk;
      });
      const clients: Redis[] = [];
      try {
        for (let waited = 0; !existsSync(socket); waited += 50) {
          if (server.exitCode !== null || waited > 10_000)
            throw new Error(`redis-server did not start:\n${log}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const connect = (options: { password?: string }) => {
          const client = new Redis({
            path: socket,
            lazyConnect: true,
            enableReadyCheck: false,
            maxRetriesPerRequest: 0,
            retryStrategy: () => null,
            ...options,
          });
          clients.push(client);
          return client;
        };
        const anonymous = connect({});
        await anonymous.connect();
        await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
        const redis = connect({ password });
        await redis.connect();
        const get = async (key: string) => ((await redis.config('GET', key)) as string[])[1];
        expect(await get('appendonly')).toBe('yes');
        expect(await get('appendfsync')).toBe('always');
        expect(await get('save')).toBe('');
        expect(await get('maxmemory-policy')).toBe('noeviction');
        expect(await get('maxmemory')).toBe(String(256 * 1024 * 1024));
        expect(await get('dir')).toBe(dir);
        await redis.set('written', '1');
        expect(await redis.info('persistence')).toMatch(/aof_enabled:1/);
      } finally {
        for (const client of clients) client.disconnect();
        server.kill('SIGKILL');
      }
    });
  },
);
