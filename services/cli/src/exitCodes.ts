/** Exit codes of `streamgauge`, documented in the README. */
export const EXIT = {
  ok: 0,
  /** Something failed while running (see the message). */
  failure: 1,
  /** The command line was wrong. */
  usage: 2,
  /** An environment variable has an unusable value. */
  config: 3,
  /** Redis could not be reached. */
  unavailable: 4,
} as const;

/** An error that ends the command with a given exit code and a one-line message. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  readonly exitCode: number;

  constructor(exitCode: number, message: string) {
    super(message);
    this.exitCode = exitCode;
  }
}
