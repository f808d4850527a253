import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '@streamgauge/testkit';
import { request } from 'undici';
import { BenchFailure } from './types.ts';

/** Services still running, so an interrupted benchmark can stop them. */
const live = new Set<ChildProcess>();

/** SIGKILLs every ingest service this process started and has not stopped. */
export function killLiveIngests(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

const CLI_MAIN = fileURLToPath(new URL('../../../services/cli/src/main.ts', import.meta.url));

export interface IngestProcessOptions {
  readonly redisUrl: string;
  /** Passes `--cpu-prof --cpu-prof-dir=<dir>` to the service's node. */
  readonly cpuProfDir?: string | undefined;
  /** Lines the service prints (it logs at `warn`, so normally none). */
  readonly onOutput?: (line: string) => void;
}

/**
 * The ingest service as it runs in production: `streamgauge ingest` in its
 * own node process, talking HTTP on a free port.
 */
export class IngestProcess {
  readonly url: string;
  readonly pid: number;
  readonly #child: ChildProcess;
  readonly #redisUrl: string;
  #exit: Promise<number | null>;

  private constructor(child: ChildProcess, url: string, redisUrl: string) {
    this.#child = child;
    this.url = url;
    this.pid = child.pid as number;
    this.#redisUrl = redisUrl;
    this.#exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? (signal === null ? null : -1)));
    });
  }

  static async start(options: IngestProcessOptions): Promise<IngestProcess> {
    const port = await freePort();
    const nodeArgs = options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : [];
    const child = spawn(process.execPath, [...nodeArgs, CLI_MAIN, 'ingest'], {
      env: {
        ...process.env,
        REDIS_URL: options.redisUrl,
        INGEST_PORT: String(port),
        INGEST_HOST: '127.0.0.1',
        INGEST_AUTH: 'on',
        // A bench sends from one gateway to up to 100,000 nodes it introduces itself.
        INGEST_NEW_NODES_PER_HOUR: '1000000',
        STREAM_SHARDS: '1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid === undefined) throw new BenchFailure('could not spawn the ingest service');
    live.add(child);
    child.once('exit', () => live.delete(child));
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') options.onOutput?.(line);
      }
    };
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    const ingest = new IngestProcess(child, `http://127.0.0.1:${port}`, options.redisUrl);
    try {
      await ingest.#waitReady(15_000);
    } catch (error) {
      await ingest.stop().catch(() => {});
      throw error;
    }
    return ingest;
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.#exit.then(() => {
      exited = true;
    });
    let last = 'no answer';
    while (Date.now() < deadline && !exited) {
      try {
        const response = await request(`${this.url}/readyz`, { method: 'GET' });
        const text = await response.body.text();
        if (response.statusCode === 200) return;
        last = `${response.statusCode} ${text}`;
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new BenchFailure(
      exited
        ? 'the ingest service exited before it was ready'
        : `ingest /readyz not 200 within ${timeoutMs} ms (${last})`,
    );
  }

  /** Issues a district-scoped gateway token with the CLI, as an operator would. */
  addGateway(name: string, district: string): Promise<string> {
    return addGateway(this.#redisUrl, name, district);
  }

  /** SIGTERM, then SIGKILL after 10 s. Resolves to the exit code. */
  async stop(): Promise<number | null> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    try {
      return await this.#exit;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Issues a district-scoped gateway token with the CLI (`streamgauge gateways
 * add <name> --district <district> --json`), as an operator would. Its rates
 * are far above what a bench sends, but set: the rate limits run as they do
 * for any gateway.
 */
export async function addGateway(redisUrl: string, name: string, district: string): Promise<string> {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      [
        CLI_MAIN,
        'gateways',
        'add',
        name,
        '--district',
        district,
        '--readings-per-second',
        '100000000',
        '--requests-per-second',
        '1000000',
        '--json',
      ],
      { env: { ...process.env, REDIS_URL: redisUrl, LOG_LEVEL: 'warn' } },
      (error, out, err) => {
        if (error)
          reject(new BenchFailure(`streamgauge gateways add failed: ${err.trim() || error.message}`));
        else resolve(out);
      },
    );
  });
  const issued = JSON.parse(stdout) as { name?: unknown; token?: unknown };
  if (typeof issued.token !== 'string' || issued.name !== name) {
    throw new BenchFailure(`unexpected output of streamgauge gateways add: ${stdout.trim()}`);
  }
  return issued.token;
}
