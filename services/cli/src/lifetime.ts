import { EXIT } from './exitCodes.ts';

/** Thrown by Lifetime.adopt when a signal came while the service was starting. */
export class Stopping extends Error {
  constructor() {
    super('stopping: a signal came while starting');
    this.name = 'Stopping';
  }
}

/**
 * What a long-lived command started, stopped in reverse order on SIGTERM or
 * SIGINT, also while it is still starting: a Ctrl-C a second after
 * `streamgauge start` leaves no redis-server behind. A second signal exits
 * at once.
 */
export class Lifetime {
  readonly #stops: (() => Promise<void>)[] = [];
  #stopping: Promise<void> | undefined;
  #starting: Promise<unknown> = Promise.resolve();
  #signalled!: () => void;
  /** Settles once a signal came and everything started was stopped. */
  readonly signalled = new Promise<void>((resolve) => {
    this.#signalled = resolve;
  });
  readonly #onSignal = (signal: NodeJS.Signals) => {
    if (this.#stopping) process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    void this.stop().then(this.#signalled);
  };

  constructor() {
    process.on('SIGTERM', this.#onSignal);
    process.on('SIGINT', this.#onSignal);
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** Registers what stops a part already running. */
  add(stop: () => Promise<void>): void {
    this.#stops.push(stop);
  }

  /**
   * Waits for a service to start and registers its stop. A signal that comes
   * meanwhile stops it once started, with the rest, and Stopping is thrown,
   * so the command starts nothing more (stopping under a half-started
   * service would pull Redis from under it).
   */
  async adopt<T extends { stop(): Promise<void> }>(starting: Promise<T>): Promise<T> {
    const adopted = starting.then((service) => {
      this.add(() => service.stop());
      return service;
    });
    this.#starting = adopted.catch(() => {});
    const service = await adopted;
    if (this.#stopping) throw new Stopping();
    return service;
  }

  /**
   * Stops everything registered, newest first; a part registered after a
   * stop began is stopped by the next call. An error is reported and the
   * exit code says so.
   */
  stop(): Promise<void> {
    const previous = this.#stopping ?? Promise.resolve();
    this.#stopping = previous.then(async () => {
      await this.#starting;
      for (let stop = this.#stops.pop(); stop !== undefined; stop = this.#stops.pop()) {
        await stop().catch((error: unknown) => {
          console.error(`streamgauge: error while stopping: ${(error as Error).message}`);
          process.exitCode = EXIT.failure;
        });
      }
      process.off('SIGTERM', this.#onSignal);
      process.off('SIGINT', this.#onSignal);
    });
    return this.#stopping;
  }
}

/**
 * Runs a long-lived service until SIGTERM or SIGINT, then closes it
 * gracefully. A second signal exits at once.
 */
export async function runUntilSignal(close: () => Promise<void>): Promise<void> {
  const lifetime = new Lifetime();
  lifetime.add(close);
  await lifetime.signalled;
}
