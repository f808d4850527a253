import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './freePort.ts';

export interface RedisServerOptions {
  /** AOF persistence; `always` fsyncs every write (what a "no loss" test needs). */
  readonly appendfsync?: 'always' | 'everysec';
  /** Default: a free port. */
  readonly port?: number;
  /** Where Redis keeps its files. Default: a new temporary directory, removed by dispose(). */
  readonly dir?: string;
  /** A Redis Cluster node (state in `nodes.conf` in `dir`); slots and peers are for the caller to set up. */
  readonly cluster?: boolean;
}

/**
 * A `redis-server` child process on 127.0.0.1. `streamgauge start` runs one
 * when no Redis answers; tests run throw-away ones. It can be stopped and
 * started again on the same port with the same files, to test what clients
 * do while Redis is away.
 */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #options: RedisServerOptions;
  /** The cluster bus port, chosen once so a restarted node keeps it. */
  readonly #busPort: number | undefined;
  #process: ChildProcess | undefined;

  readonly #ownsDir: boolean;

  private constructor(port: number, options: RedisServerOptions, busPort: number | undefined) {
    this.port = port;
    this.#busPort = busPort;
    this.#ownsDir = options.dir === undefined;
    // Absolute: redis-server changes into --dir before it opens --logfile, so a relative path would be taken twice.
    this.dir = resolve(options.dir ?? mkdtempSync(join(tmpdir(), 'streamgauge-redis-')));
    mkdirSync(this.dir, { recursive: true });
    this.#options = options;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const port = options.port ?? (await freePort());
    const server = new RedisServer(port, options, options.cluster ? await freePort() : undefined);
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#process !== undefined;
  }

  async start(): Promise<void> {
    if (this.#process) return;
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir];
    args.push('--daemonize', 'no', '--loglevel', 'warning', '--logfile', join(this.dir, 'redis.log'));
    if (this.#options.appendfsync) {
      args.push('--appendonly', 'yes', '--appendfsync', this.#options.appendfsync);
    } else {
      args.push('--appendonly', 'no');
    }
    if (this.#options.cluster) {
      args.push(
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        '2000',
      );
      // The default bus port is port + 10000: past 65535 for free ports above
      // 55535 (Redis then refuses to start), and maybe taken. Use a free one.
      args.push('--cluster-port', String(this.#busPort));
      // A node learns its own address from a peer's MEET; a lone node would
      // otherwise report "" in CLUSTER SLOTS, and cluster clients never connect.
      args.push('--cluster-announce-ip', '127.0.0.1');
    }
    // Its own process group: a Ctrl-C in the terminal reaches the parent, which
    // stops its clients first and the server last (so the last commit lands).
    const child = spawn('redis-server', args, { stdio: 'ignore', detached: true });
    this.#process = child;
    const orphanGuard = () => child.kill('SIGTERM');
    process.once('exit', orphanGuard);
    child.once('exit', () => process.off('exit', orphanGuard));
    child.once('exit', () => {
      if (this.#process === child) this.#process = undefined;
    });
    await waitForPing(this.url, child);
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.#process?.kill('SIGSTOP');
  }

  resume(): void {
    this.#process?.kill('SIGCONT');
  }

  /** Stops the server the way a crash would: SIGKILL, nothing flushed beyond what AOF fsynced. */
  async kill(): Promise<void> {
    await this.#signal('SIGKILL');
  }

  /** A clean shutdown (SIGTERM: Redis finishes its AOF write and exits). */
  async stop(): Promise<void> {
    await this.#signal('SIGTERM');
  }

  /** Kills the server and removes its files if it made the directory itself. */
  async dispose(): Promise<void> {
    await this.kill();
    if (this.#ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.#process;
    if (!child) return;
    this.#process = undefined;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }
}

async function waitForPing(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  while (Date.now() < deadline && !exited) {
    const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      client.disconnect();
    }
  }
  throw new Error(`redis-server on ${url} did not answer PING${exited ? ' (it exited)' : ''}`);
}

export function redisServerOnPath(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
