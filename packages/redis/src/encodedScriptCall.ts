import type { Socket } from 'node:net';
import type { GrowingArena } from '@streamgauge/core';
import { type ChainableCommander, Command } from 'ioredis';
import type { ScriptSource } from './framedScriptCall.ts';
import { RespWriter } from './respWriter.ts';

/**
 * A script call encoded whole, as Redis reads it, into memory that is used
 * again (an arena): `EVALSHA sha numkeys keys… args…`, one run of bytes the
 * socket sends as it is.
 *
 * Why: ioredis frames a command as a string built piece by piece (a header
 * per argument, each argument's UTF-8 length counted), a pipeline joins
 * its commands' strings into one, and the socket then flattens that string
 * and encodes it to UTF-8 again. For the aggregator's dashboard writes
 * (`writeNodeKeys`, ~50 KB a call of 500 keys, a call per 500 keys of
 * every slice) that was 4–5 % of its CPU in the freshness case
 * (docs/benchmarks.md, "Dashboard writes encoded once"). Here each
 * argument is encoded once, into the arena, and a pipeline copies the
 * call's bytes once more (`Buffer.concat`), a plain copy.
 */
export interface EncodedScriptCall {
  readonly script: ScriptSource;
  /** The call as EVALSHA. */
  readonly evalsha: Buffer;
  /** What follows the script's sha (numkeys, keys, arguments), and how many they are. */
  readonly rest: Buffer;
  readonly restCount: number;
}

/**
 * Encodes a call of `script` into `arena` (after what it holds). The bytes
 * stay valid until the arena is started over (GrowingArena.reset): not
 * before the call's reply came.
 */
export function encodeScriptCall(
  arena: GrowingArena,
  script: ScriptSource,
  keys: readonly string[],
  args: readonly (string | number)[],
): EncodedScriptCall {
  // Room for all of it at once, so that it is one run of the arena's
  // bytes: a UTF-16 unit takes at most three bytes of UTF-8, a header at
  // most 16 (`$`, up to 11 digits, two CRLFs).
  let room = 64 + script.sha.length;
  for (const key of keys) room += 3 * key.length + 16;
  for (const arg of args) room += typeof arg === 'number' ? 40 : 3 * arg.length + 16;
  arena.room(room);
  const out = new RespWriter(arena);
  const start = arena.used;
  const restCount = 1 + keys.length + args.length;
  out.array(2 + restCount);
  out.ascii('EVALSHA');
  out.ascii(script.sha);
  const restAt = arena.used - start;
  out.ascii(String(keys.length));
  for (const key of keys) out.text(key);
  for (const arg of args) {
    if (typeof arg === 'number') out.ascii(String(arg));
    else out.text(arg);
  }
  const parts = out.parts();
  const whole = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts as readonly Uint8Array[]);
  const evalsha = Buffer.from(whole.buffer, whole.byteOffset, whole.byteLength);
  return { script, evalsha, rest: evalsha.subarray(restAt), restCount };
}

/**
 * Sockets that ran a script's EVAL, by the script's sha: ioredis' own rule,
 * EVAL on a socket's first call (the server may not know the script: a
 * restart), EVALSHA after, EVAL again after a NOSCRIPT.
 */
const evaledOn = new Map<string, WeakSet<Socket>>();

function evaled(script: ScriptSource): WeakSet<Socket> {
  let sockets = evaledOn.get(script.sha);
  if (sockets === undefined) {
    sockets = new WeakSet();
    evaledOn.set(script.sha, sockets);
  }
  return sockets;
}

class EncodedScriptCommand extends Command {
  readonly #call: EncodedScriptCall;
  /** Where it was written last. */
  socket: Socket | undefined;

  constructor(call: EncodedScriptCall) {
    super('evalsha', [], { replyEncoding: 'utf8' });
    this.#call = call;
  }

  override toWritable(socket: Socket): Buffer {
    this.socket = socket;
    const call = this.#call;
    const sockets = evaled(call.script);
    if (sockets.has(socket)) return call.evalsha;
    sockets.add(socket);
    const { lua } = call.script;
    const head = `*${2 + call.restCount}\r\n$4\r\nEVAL\r\n$${Buffer.byteLength(lua)}\r\n${lua}\r\n`;
    return Buffer.concat([Buffer.from(head), call.rest]);
  }
}

/**
 * Queues an encoded call on a pipeline (or sends it on a client). Its
 * reply is the script's; a NOSCRIPT (the server lost its scripts) sends it
 * again as EVAL, as ioredis does for its own script commands.
 */
export function queueEncodedCall(batch: ChainableCommander, call: EncodedScriptCall): void {
  const command = new EncodedScriptCommand(call);
  command.promise = command.promise.catch((error: unknown) => {
    if (!(error instanceof Error && error.message.includes('NOSCRIPT'))) throw error;
    if (command.socket !== undefined) evaled(call.script).delete(command.socket);
    // A pipeline's commands go to its client once it ran.
    const client = (batch as { redis?: unknown }).redis ?? batch;
    return (client as { sendCommand(c: Command): Promise<unknown> }).sendCommand(
      new EncodedScriptCommand(call),
    );
  });
  (batch as unknown as { sendCommand(c: Command): unknown }).sendCommand(command);
}
