import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, RedisServer, redisServerOnPath } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The container image holds the runtime closure that infra/image/build-runtime.mjs
 * builds (the Dockerfile copies exactly that directory). There is no Docker
 * engine here: this builds the same closure and runs the CLI from it, outside
 * the repository, as the image would.
 */
describe('the image runtime closure', () => {
  let closure: string;

  beforeAll(() => {
    closure = join(mkdtempSync(join(tmpdir(), 'streamgauge-image-')), 'app');
    execFileSync(process.execPath, [join(ROOT, 'infra/image/build-runtime.mjs'), closure], {
      stdio: 'pipe',
      timeout: 120_000,
    });
  }, 150_000);
  afterAll(() => rmSync(join(closure, '..'), { recursive: true, force: true }));

  it('holds the CLI and what it runs on, and nothing of the tests or the toolchain', () => {
    const store = readdirSync(join(closure, 'node_modules/.pnpm'));
    for (const runtime of [
      'fastify@',
      'ioredis@',
      '@duckdb+node-api@',
      '@google-cloud+pubsub@',
      'esbuild@',
    ]) {
      expect(
        store.some((name) => name.startsWith(runtime)),
        runtime,
      ).toBe(true);
    }
    for (const tooling of ['vitest@', 'typescript@', '@biomejs+', 'playwright-core@', 'dclint@']) {
      expect(
        store.filter((name) => name.startsWith(tooling)),
        tooling,
      ).toEqual([]);
    }
    expect(existsSync(join(closure, 'packages/testkit'))).toBe(false);
    expect(existsSync(join(closure, 'test'))).toBe(false);
    expect(
      filesUnder(closure, (path) => path.endsWith('.test.ts') && !path.includes('node_modules')),
    ).toEqual([]);
    const megabytes = sizeOf(closure) / 1024 / 1024;
    console.log(`runtime closure: ${megabytes.toFixed(0)} MiB`);
    expect(megabytes).toBeLessThan(200);
  });

  it('is what the Dockerfile builds and copies, and its entry points are in it', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain('RUN node infra/image/build-runtime.mjs /app');
    const final = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(final.match(/^COPY .*/gm)).toEqual(['COPY --from=build /app /app']);
    expect(final).toMatch(/^USER node$/m);
    expect(final).toContain('ENTRYPOINT ["node", "services/cli/bin/streamgauge.js"]');
    expect(final).toContain('HEALTHCHECK');
    expect(final).toContain('CMD ["node", "services/cli/bin/probe.js"]');
    for (const entry of ['services/cli/bin/streamgauge.js', 'services/cli/bin/probe.js']) {
      expect(existsSync(join(closure, entry)), entry).toBe(true);
    }
  });

  it('runs the CLI: --help, and a short start against a throw-away Redis, probed as the HEALTHCHECK does', async () => {
    const cli = join(closure, 'services/cli/bin/streamgauge.js');
    const help = spawnSync(process.execPath, [cli, '--help'], { cwd: tmpdir(), encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    for (const command of ['start', 'ingest', 'aggregate', 'archive', 'dashboard', 'backfill', 'status']) {
      expect(help.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
    }
    if (!redisServerOnPath()) return;

    const server = await RedisServer.start();
    const dataDir = mkdtempSync(join(tmpdir(), 'streamgauge-image-data-'));
    const ingestPort = await freePort();
    const env = {
      ...process.env,
      REDIS_URL: server.url,
      INGEST_PORT: String(ingestPort),
      DASHBOARD_PORT: '0',
      DATA_DIR: dataDir,
      LOG_LEVEL: '',
    };
    const child = spawn(process.execPath, [cli, 'start', '--simulate'], {
      cwd: dataDir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = once(child, 'exit');
    const redis = new Redis(server.url);
    const probe = () =>
      spawnSync(process.execPath, [join(closure, 'services/cli/bin/probe.js'), 'start'], {
        env,
        timeout: 10_000,
      }).status;
    try {
      let latest: Record<string, string> = {};
      for (const deadline = Date.now() + 20_000; latest.timestamp === undefined && Date.now() < deadline; ) {
        latest = await redis.hgetall('node:215542:latest');
        if (latest.timestamp === undefined) await new Promise((r) => setTimeout(r, 200));
      }
      expect(latest.timestamp, output).toBeDefined();
      expect(output).toContain('streamgauge is running');
      expect(probe()).toBe(0);
    } finally {
      redis.disconnect();
      child.kill('SIGINT');
      const [code] = await exited;
      expect(code, output).toBe(0);
      await server.dispose();
      rmSync(dataDir, { recursive: true, force: true });
    }
    // Nothing answers any more: the HEALTHCHECK fails.
    expect(probe()).toBe(1);
  }, 60_000);

  it('tells an older Node what it needs, in a sentence rather than a stack trace', () => {
    const older = ['/usr/bin/node', '/usr/local/bin/node'].find(
      (path) =>
        existsSync(path) &&
        Number(spawnSync(path, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).stdout) <
          24,
    );
    if (older === undefined) {
      console.log('no Node older than 24 on this machine: the message for one is not checked here');
      return;
    }
    const run = spawnSync(older, [join(closure, 'services/cli/bin/streamgauge.js'), '--help'], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^streamgauge needs Node\.js 24 or newer; this is Node\.js v\d+/);
    expect(run.stderr).toContain('./dev start');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

/** Every file under `dir`, symlinks not followed (pnpm links packages; the image copies each file once). */
function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

function filesUnder(dir: string, keep: (path: string) => boolean): string[] {
  return [...walk(dir)].filter(keep);
}

function sizeOf(dir: string): number {
  let bytes = 0;
  for (const path of walk(dir)) bytes += statSync(path).size;
  return bytes;
}
