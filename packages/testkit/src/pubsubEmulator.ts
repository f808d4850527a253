import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
/** The small Go main that serves Google's `pstest` fake on a port (see its comments). */
const mainGo = join(repoRoot, 'infra/pubsub/pstest/main.go');
/** Debian's golang-google-cloud-dev and its dependencies put their sources here (GOPATH mode). */
const gocode = '/usr/share/gocode';
const pstestSources = join(gocode, 'src/cloud.google.com/go/pubsub/pstest');
/** The built binary and Go's build cache; node_modules is rebuilt from scratch on a fresh clone. */
const cacheDir = join(repoRoot, 'node_modules/.cache/streamgauge/pstest');

export interface PubSubEmulatorOptions {
  /** Default: a free port, chosen by the fake itself (no race with other workers). */
  readonly port?: number;
  /** Default: 'streamgauge-test'. The fake accepts any project. */
  readonly projectId?: string;
}

/**
 * Google's in-memory Pub/Sub fake (`pstest`, from the Go client library) as a
 * child process on 127.0.0.1, spoken to by the real Node client over gRPC. Its
 * state lives in memory only: a stopped emulator is gone, topics and all.
 *
 * Point the client at it with `new PubSub(emulator.clientOptions)`, or give a
 * child process `emulator.env` (its client then honours PUBSUB_EMULATOR_HOST).
 * Both keep the client off the network: see `clientOptions`.
 *
 * Known limits of the fake: subscriptions need an explicit ackDeadlineSeconds
 * (10 to 600); ordering keys, dead-letter policies and exactly-once delivery are
 * accepted but not enforced; a few hundred messages per second. With the Node
 * client, a nack within ~100 ms of receipt can race the client's own receipt
 * modAck and lose: the message then comes back only at its ack deadline.
 */
export class PubSubEmulator {
  readonly port: number;
  readonly projectId: string;
  #process: ChildProcess | undefined;

  private constructor(port: number, projectId: string, child: ChildProcess) {
    this.port = port;
    this.projectId = projectId;
    this.#process = child;
    child.once('exit', () => {
      if (this.#process === child) this.#process = undefined;
    });
  }

  static async start(options: PubSubEmulatorOptions = {}): Promise<PubSubEmulator> {
    const binary = await pstestBinary();
    // Its own process group, like RedisServer: a Ctrl-C reaches the parent, which
    // stops its clients first. stdin is a pipe the fake watches: if this process
    // dies without stopping it (SIGKILL, a crashed worker), the pipe closes and
    // the fake exits too.
    const child = spawn(binary, ['-port', String(options.port ?? 0), '-exit-on-stdin-eof'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const orphanGuard = () => child.kill('SIGKILL');
    process.once('exit', orphanGuard);
    child.once('exit', () => process.off('exit', orphanGuard));
    const port = await waitForListening(child);
    return new PubSubEmulator(port, options.projectId ?? 'streamgauge-test', child);
  }

  /** `127.0.0.1:PORT`: the value for PUBSUB_EMULATOR_HOST or the client's apiEndpoint. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * Options for `new PubSub(...)` (@google-cloud/pubsub 6.2) that work against
   * the fake. An apiEndpoint that is not on googleapis.com already switches the
   * client to emulator mode (insecure channel); but its gRPC layer still asks
   * google-auth for the "universe domain", which looks for Application Default
   * Credentials and probes the GCE metadata server (DNS for
   * metadata.google.internal, HTTP to 169.254.169.254). Naming the universe
   * skips that lookup, and emulatorMode keeps emulator mode on despite it.
   */
  get clientOptions(): {
    readonly projectId: string;
    readonly apiEndpoint: string;
    readonly emulatorMode: true;
    readonly universeDomain: 'googleapis.com';
  } {
    return {
      projectId: this.projectId,
      apiEndpoint: this.host,
      emulatorMode: true,
      universeDomain: 'googleapis.com',
    };
  }

  /**
   * Environment for a child process whose client honours PUBSUB_EMULATOR_HOST
   * (and PUBSUB_PROJECT_ID); METADATA_SERVER_DETECTION=none stops google-auth
   * probing the GCE metadata server (see clientOptions).
   */
  get env(): {
    readonly PUBSUB_EMULATOR_HOST: string;
    readonly PUBSUB_PROJECT_ID: string;
    readonly METADATA_SERVER_DETECTION: 'none';
  } {
    return {
      PUBSUB_EMULATOR_HOST: this.host,
      PUBSUB_PROJECT_ID: this.projectId,
      METADATA_SERVER_DETECTION: 'none',
    };
  }

  get running(): boolean {
    return this.#process !== undefined;
  }

  /** Freezes the fake (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.#process?.kill('SIGSTOP');
  }

  resume(): void {
    this.#process?.kill('SIGCONT');
  }

  /** Stops the fake (its state is lost). Safe to call twice, and on a paused fake. */
  async stop(): Promise<void> {
    const child = this.#process;
    if (!child) return;
    this.#process = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill('SIGTERM');
      // A stopped process keeps SIGTERM pending until it runs again.
      child.kill('SIGCONT');
    });
  }
}

/** Why the emulator cannot run here, or undefined when it can. */
export function pubsubEmulatorUnavailableReason(): string | undefined {
  if (!existsSync(mainGo)) return `${mainGo} is missing`;
  if (existsSync(cachedBinary())) return undefined;
  if (!goOnPath()) return '`go` is not on PATH (apt-get install golang-go golang-google-cloud-dev)';
  if (!existsSync(pstestSources)) {
    return `the pstest sources are missing from ${pstestSources} (apt-get install golang-google-cloud-dev)`;
  }
  return undefined;
}

/** True when `go` and the pstest sources are installed, or a built fake is already cached. */
export function pubsubEmulatorAvailable(): boolean {
  return pubsubEmulatorUnavailableReason() === undefined;
}

function goOnPath(): boolean {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Named after main.go's content: editing it builds a new binary; the old one is just left behind. */
function cachedBinary(): string {
  const hash = createHash('sha256').update(readFileSync(mainGo)).digest('hex').slice(0, 16);
  return join(cacheDir, `pstest-${hash}`);
}

let building: Promise<string> | undefined;

/**
 * The fake's binary, built once per machine (per main.go). Several vitest
 * workers may ask at once: one builds (a lock directory says who) while the
 * others wait for the binary. The build writes a temporary name and renames it
 * into place, which is atomic, so nobody ever runs a half-written file, even if
 * a stale lock was broken and two builds ran after all.
 */
function pstestBinary(): Promise<string> {
  building ??= buildIfMissing().catch((error: unknown) => {
    building = undefined;
    throw error;
  });
  return building;
}

async function buildIfMissing(): Promise<string> {
  const binary = cachedBinary();
  if (existsSync(binary)) return binary;
  const reason = pubsubEmulatorUnavailableReason();
  if (reason) throw new Error(`cannot build the Pub/Sub emulator: ${reason}`);
  mkdirSync(cacheDir, { recursive: true });
  const lock = `${binary}.lock`;
  while (!tryLock(lock)) {
    await sleep(200);
    if (existsSync(binary)) return binary;
  }
  try {
    if (!existsSync(binary)) await build(binary);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return binary;
}

/** mkdir is atomic: whoever creates the directory builds. A lock older than a cold build is a dead builder's. */
function tryLock(lock: string): boolean {
  try {
    mkdirSync(lock);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    try {
      if (Date.now() - statSync(lock).mtimeMs > 5 * 60_000) rmSync(lock, { recursive: true, force: true });
    } catch {
      // Removed meanwhile: the next attempt finds out.
    }
    return false;
  }
}

async function build(binary: string): Promise<void> {
  const temporary = `${binary}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await run('go', ['build', '-o', temporary, mainGo], {
      cwd: cacheDir,
      env: {
        ...process.env,
        // Debian packages Go libraries as GOPATH sources, not modules: offline, no proxy.
        GO111MODULE: 'off',
        GOPATH: gocode,
        GOFLAGS: '',
        // Go's build cache, beside the binary (HOME may be unset or read-only on CI).
        GOCACHE: join(cacheDir, 'go-build'),
        // A static binary: no C compiler needed on the machine.
        CGO_ENABLED: '0',
      },
      maxBuffer: 16 * 1024 * 1024,
    });
    renameSync(temporary, binary);
  } catch (error) {
    rmSync(temporary, { force: true });
    const stderr = (error as { stderr?: string }).stderr;
    throw new Error(`go build of ${mainGo} failed${stderr ? `:\n${stderr}` : ''}`, { cause: error });
  }
}

/** Resolves with the port from the fake's one line `listening on 127.0.0.1:PORT`. */
function waitForListening(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let settled = false;
    const settle = () => {
      settled = true;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    const fail = (why: string) => {
      if (settled) return;
      settle();
      child.kill('SIGKILL');
      reject(new Error(`the Pub/Sub emulator ${why}${stderr ? `:\n${stderr.slice(-4000)}` : ''}`));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`exited (${signal ?? `code ${code}`})`);
    const onError = (error: Error) => fail(`did not start (${error.message})`);
    const timer = setTimeout(() => fail('printed no "listening on" line within 10 s'), 10_000);
    child.on('exit', onExit);
    child.on('error', onError);
    // Keep draining both pipes for the fake's whole life, so it never blocks on a full one.
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-8000);
    });
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      if (settled) return;
      stdout += chunk;
      const match = /^listening on 127\.0\.0\.1:(\d+)$/m.exec(stdout);
      if (!match) return;
      settle();
      // A later failed kill() would otherwise throw as an unhandled 'error' event.
      child.on('error', () => {});
      resolve(Number(match[1]));
    });
  });
}
