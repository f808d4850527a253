/** Another replica holds the shard's lease: this one must drop the shard's state and stop reading it. */
export class LeaseLostError extends Error {
  readonly stream: string;

  constructor(stream: string) {
    super(`the lease on ${stream} is held by another replica`);
    this.name = 'LeaseLostError';
    this.stream = stream;
  }
}
