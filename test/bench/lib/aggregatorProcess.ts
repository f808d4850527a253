import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BenchFailure } from './types.ts';

const CLI_MAIN = fileURLToPath(new URL('../../../services/cli/src/main.ts', import.meta.url));

/** `streamgauge aggregate` in its own node process, as it runs in production. */
export class AggregatorProcess {
  readonly pid: number;
  readonly #child: ChildProcess;
  readonly #exit: Promise<number | null>;

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.pid = child.pid as number;
    this.#exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start(
    redisUrl: string,
    onOutput: (line: string) => void,
    cpuProfDir?: string,
  ): Promise<AggregatorProcess> {
    const nodeArgs = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
    const child = spawn(process.execPath, [...nodeArgs, CLI_MAIN, 'aggregate'], {
      env: { ...process.env, REDIS_URL: redisUrl, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid === undefined) throw new BenchFailure('could not spawn the aggregator');
    const aggregator = new AggregatorProcess(child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new BenchFailure('the aggregator did not start within 30 s')),
        30_000,
      );
      const scan = (chunk: Buffer) => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.includes('"aggregator running"')) {
            clearTimeout(timer);
            resolve();
          } else if (line.trim() !== '' && !line.includes('"level":30')) {
            onOutput(line);
          }
        }
      };
      child.stdout?.on('data', scan);
      child.stderr?.on('data', scan);
      child.once('exit', () => reject(new BenchFailure('the aggregator exited during start')));
    });
    return aggregator;
  }

  async stop(): Promise<number | null> {
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 30_000);
    try {
      return await this.#exit;
    } finally {
      clearTimeout(timer);
    }
  }
}
