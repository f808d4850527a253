import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI_MAIN = fileURLToPath(new URL('../../services/cli/src/main.ts', import.meta.url));

export interface ServiceProcessOptions {
  /** `aggregate` (the default), `archive`, `ingest` or `start` (all three in one process). */
  readonly command?: 'aggregate' | 'archive' | 'ingest' | 'start';
  /** Added to this process's environment (REDIS_URL, STREAM_SHARDS, AGGREGATOR_CONSUMER, …). */
  readonly env: Readonly<Record<string, string>>;
  /** Lines the aggregator logs at warn level or above (info lines are dropped). */
  readonly onOutput?: (line: string) => void;
  readonly cpuProfDir?: string;
  /** Extra options for node itself (e.g. `--max-old-space-size=8192`). */
  readonly nodeArgs?: readonly string[];
}

const READY = {
  aggregate: '"aggregator running"',
  archive: '"archiver running"',
  ingest: '"ingest listening"',
  start: 'streamgauge is running',
} as const;

/** `streamgauge aggregate` (or `archive`, `ingest`, `start`) in its own node process, as it runs in production. */
export class ServiceProcess {
  readonly pid: number;
  readonly #child: ChildProcess;
  readonly #exit: Promise<number | null>;

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.pid = child.pid as number;
    this.#exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Starts one and resolves once it logs that it is running (its free shards taken). */
  static async start(options: ServiceProcessOptions): Promise<ServiceProcess> {
    const command = options.command ?? 'aggregate';
    const nodeArgs = [
      ...(options.nodeArgs ?? []),
      ...(options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : []),
    ];
    const child = spawn(process.execPath, [...nodeArgs, CLI_MAIN, command], {
      env: { ...process.env, LOG_LEVEL: 'info', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid === undefined) throw new Error(`could not spawn streamgauge ${command}`);
    const service = new ServiceProcess(child);
    const said: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`streamgauge ${command} did not start within 30 s`)),
        30_000,
      );
      const scan = (chunk: Buffer) => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.trim() !== '') said.push(line);
          if (line.includes(READY[command])) {
            clearTimeout(timer);
            resolve();
          } else if (line.trim() !== '' && !line.includes('"level":30')) {
            options.onOutput?.(line);
          }
        }
      };
      child.stdout?.on('data', scan);
      child.stderr?.on('data', scan);
      // 'close', not 'exit': by then its output has been read to the end.
      child.once('close', (code) => {
        clearTimeout(timer);
        reject(
          new Error(
            `streamgauge ${command} exited during start (code ${code}):\n${said.slice(0, 40).join('\n')}`,
          ),
        );
      });
    });
    return service;
  }

  /** A graceful stop (SIGTERM), SIGKILL after 30 s; resolves with the exit code. */
  async stop(): Promise<number | null> {
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 30_000);
    try {
      return await this.#exit;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves with the exit code once it has exited (by itself or not). */
  get exited(): Promise<number | null> {
    return this.#exit;
  }

  /** Freezes it (SIGSTOP), to let work pile up for it. */
  pause(): void {
    this.#child.kill('SIGSTOP');
  }

  resume(): void {
    this.#child.kill('SIGCONT');
  }

  /** A crash: SIGKILL, at whatever instruction it is. */
  async kill(): Promise<void> {
    this.#child.kill('SIGKILL');
    await this.#exit;
  }
}
