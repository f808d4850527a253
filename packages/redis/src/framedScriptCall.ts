import type { Socket } from 'node:net';
import { type Cluster, Command, type Redis } from 'ioredis';

/**
 * Buffer arguments from this many bytes (together) make a script call go
 * framed: below it, the call is small enough that joining it with the
 * commands auto-pipelined around it costs less than writing it apart.
 */
export const FRAMED_BYTES = 64 * 1024;

/** Whether a script call with these arguments should go framed (see FRAMED_BYTES). */
export function holdsLargeBuffers(args: readonly unknown[]): boolean {
  let bytes = 0;
  for (const arg of args) if (Buffer.isBuffer(arg)) bytes += arg.length;
  return bytes >= FRAMED_BYTES;
}

/**
 * A command whose Buffer arguments go to the socket as they are. ioredis
 * copies a command holding a Buffer into one new Buffer, and an
 * auto-pipeline copies every command it joins into another: an aggregator's
 * commit (packed state, 10–20 MB at 10,000 nodes) was copied twice into
 * fresh memory, 5 % of the aggregator's CPU in the fresh case
 * (docs/benchmarks.md, "A commit's bytes written once"). Here the framing
 * around each Buffer is a short string, and the parts are written corked,
 * in one `writev`, in the order they frame.
 *
 * Sent with `sendCommand` on the client itself, never in a pipeline: a
 * pipeline collects its commands' writables and writes them at its end,
 * while this one writes to the socket as it frames. So it goes ahead of
 * commands auto-pipelined earlier in the same tick (those are sent at the
 * tick's end), each reply still to its own command: a caller whose call
 * must follow another waits for that one's reply first, as the
 * aggregator's commit waits for its slices' `latest` writes.
 */
class FramedCommand extends Command {
  override toWritable(socket: Socket): string | Buffer {
    const parts: (string | Buffer)[] = [];
    let text = `*${this.args.length + 1}\r\n$${Buffer.byteLength(this.name)}\r\n${this.name}\r\n`;
    for (const arg of this.args) {
      if (Buffer.isBuffer(arg)) {
        parts.push(`${text}$${arg.length}\r\n`, arg);
        text = '\r\n';
      } else {
        const value = String(arg);
        text += `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
      }
    }
    socket.cork();
    for (const part of parts) socket.write(part);
    // The caller writes what is returned, still corked: one writev for all.
    process.nextTick(() => socket.uncork());
    return text;
  }
}

/** A script as EVALSHA and EVAL take it. */
export interface ScriptSource {
  readonly sha: string;
  readonly lua: string;
}

/**
 * Runs a script (EVALSHA, then EVAL when the server does not know it: a
 * restarted Redis) with its arguments framed (FramedCommand). Resolves to
 * the script's reply; rejects as ioredis would.
 */
export async function runFramed(
  redis: Redis | Cluster,
  script: ScriptSource,
  keys: readonly string[],
  args: readonly (string | number | Buffer)[],
): Promise<unknown> {
  const call = (name: 'evalsha' | 'eval', first: string) =>
    (redis as unknown as { sendCommand(command: Command): Promise<unknown> }).sendCommand(
      new FramedCommand(name, [first, keys.length, ...keys, ...args], { replyEncoding: 'utf8' }),
    );
  try {
    return await call('evalsha', script.sha);
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
    return call('eval', script.lua);
  }
}
