import { RedisUnavailableError, type StoredOutcome } from './RedisUnavailableError.ts';

/**
 * A shard's stream holds more than its bound (STREAM_MAX_MB) of entries the
 * consumer groups still need, or its catch-up lane (`lane`) holds more than
 * that of late readings the aggregator has not taken in yet: the append was
 * refused, nothing of it written. Like an unavailable Redis, waiting and
 * retrying succeeds, once the aggregator and the archiver have caught up.
 */
export class StreamFullError extends RedisUnavailableError {
  override readonly name: string = 'StreamFullError';
  readonly stream: string;
  readonly heldBytes: number;
  readonly boundBytes: number;

  constructor(stream: string, heldBytes: number, boundBytes: number, stored: StoredOutcome, lane = false) {
    super(new Error(`${stream} is full`), stored);
    this.stream = stream;
    this.heldBytes = heldBytes;
    this.boundBytes = boundBytes;
    const held = lane
      ? `the catch-up lane ${stream} holds ${megabytes(heldBytes)} MB of late readings that the aggregator has not taken in yet`
      : `the stream ${stream} holds ${megabytes(heldBytes)} MB that the consumers (aggregator, archiver) have not processed`;
    const retry = lane
      ? 'retry it once the aggregator catches up (streamgauge status shows the lane)'
      : 'retry it once they catch up (streamgauge status shows their lag)';
    this.message =
      `${held}, over its bound of ${megabytes(boundBytes)} MB (STREAM_MAX_MB): ` +
      `${stored === 'partial' ? 'some of this request was stored' : 'nothing from this request was stored'}; ${retry}`;
  }
}

function megabytes(bytes: number): string {
  return (bytes / 1_048_576).toFixed(1);
}
