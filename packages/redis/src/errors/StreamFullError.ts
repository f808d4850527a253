import { RedisUnavailableError, type StoredOutcome } from './RedisUnavailableError.ts';

/**
 * A shard's stream, with its catch-up lane, holds more than its bound
 * (STREAM_MAX_MB) of entries the consumer groups still need: the append was
 * refused, nothing of it written. Like an unavailable Redis, waiting and
 * retrying succeeds, once the aggregator and the archiver have caught up.
 */
export class StreamFullError extends RedisUnavailableError {
  override readonly name: string = 'StreamFullError';
  readonly stream: string;
  readonly heldBytes: number;
  readonly boundBytes: number;
  /** How many of `heldBytes` are late readings waiting in the catch-up lane. */
  readonly laneBytes: number;

  constructor(stream: string, heldBytes: number, boundBytes: number, stored: StoredOutcome, laneBytes = 0) {
    super(new Error(`${stream} is full`), stored);
    this.stream = stream;
    this.heldBytes = heldBytes;
    this.boundBytes = boundBytes;
    this.laneBytes = laneBytes;
    const held =
      laneBytes > 0
        ? `the stream ${stream} and its catch-up lane hold ${megabytes(heldBytes)} MB (${megabytes(laneBytes)} MB of late readings in the lane)`
        : `the stream ${stream} holds ${megabytes(heldBytes)} MB`;
    this.message =
      `${held} that the consumers (aggregator, archiver) have not processed, over its bound of ${megabytes(boundBytes)} MB (STREAM_MAX_MB): ` +
      `${stored === 'partial' ? 'some of this request was stored' : 'nothing from this request was stored'}; ` +
      'retry it once they catch up (streamgauge status shows their lag)';
  }
}

function megabytes(bytes: number): string {
  return (bytes / 1_048_576).toFixed(1);
}
