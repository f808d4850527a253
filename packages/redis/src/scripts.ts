import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import { holdsLargeBuffers, runFramed, type ScriptSource } from './framedScriptCall.ts';

/**
 * Every Redis script lives in `scripts/<name>.lua`, is read once here, and is
 * called by name. ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT,
 * so a Redis restart (which empties the script cache) needs no handling.
 */
export type ScriptName =
  | 'appendReadings'
  | 'admitCatchup'
  | 'markSeen'
  | 'addGateway'
  | 'revokeToken'
  | 'addViewer'
  | 'claimNodes'
  | 'releaseNodes'
  | 'takeRate'
  | 'addNodes'
  | 'removeNodes'
  | 'writeNodeKeys'
  | 'readKeys'
  | 'commitShard'
  | 'markWritten'
  | 'archiveWatermark'
  | 'forgetIdleConsumers'
  | 'lease'
  | 'replicas'
  | 'mergeSystemPartials'
  | 'writeSystemMetrics'
  | 'takeReconcileOffer'
  | 'appendAnomalyEvent'
  | 'pushRecentAnomaly'
  | 'redriveDeadLetter';

const directory = new URL('./scripts/', import.meta.url);

/**
 * A line `--@include <name>` is replaced by `scripts/include/<name>.lua`:
 * helpers several scripts need (Redis gives a script nothing but itself).
 */
function withIncludes(lua: string): string {
  return lua.replace(/^--@include (\w+)$/gm, (_, name: string) =>
    readFileSync(new URL(`include/${name}.lua`, directory), 'utf8'),
  );
}

const sources: ReadonlyMap<string, string> = new Map(
  readdirSync(directory)
    .filter((file) => file.endsWith('.lua'))
    .map((file) => [file.slice(0, -4), withIncludes(readFileSync(new URL(file, directory), 'utf8'))]),
);

const sha1 = (lua: string) => createHash('sha1').update(lua).digest('hex');

/** Each script's source and SHA1, by name (for the calls that go framed). */
const scripts: ReadonlyMap<string, ScriptSource> = new Map(
  [...sources].map(([name, lua]) => [name, { sha: sha1(lua), lua }]),
);

/** A script's source and SHA1. */
export function scriptSource(name: ScriptName): ScriptSource {
  return scripts.get(name) as ScriptSource;
}

/** Every script's name, as ioredis knows the command. */
export const SCRIPT_NAMES: readonly string[] = [...sources.keys()];

/**
 * Each script's name by the SHA1 `EVALSHA` calls it by: what a `SLOWLOG`
 * or `MONITOR` line shows, to say which script Redis spent its time in.
 */
export function scriptNamesBySha(): Map<string, string> {
  return new Map([...scripts].map(([name, { sha }]) => [sha, name] as const));
}

type Connection = Redis | Cluster;
// ioredis flattens array arguments, so large argument lists are passed as arrays, not spread.
type ScriptFn = (
  numKeys: number,
  keys: readonly string[],
  args: readonly ScriptArgument[],
) => Promise<unknown>;

/** A script argument; a Buffer goes as its bytes (packed binary). */
export type ScriptArgument = string | number | Buffer;

const loaded = new WeakSet<Connection>();

export function loadScripts(redis: Connection): void {
  if (loaded.has(redis)) return;
  for (const [name, lua] of sources) redis.defineCommand(name, { lua });
  loaded.add(redis);
}

/**
 * What our scripts refuse by code: `redis.error_reply('<CODE> <detail>')`.
 * - `LEASE_LOST`: another replica holds the shard's lease (commitShard);
 * - `GONE`: the dead letter is no longer there (redriveDeadLetter);
 * - `REFUSED`: the redrive cannot be done as asked; the detail starts with
 *   the reason (redriveDeadLetter);
 * - `STREAM_FULL`: the stream is over its bound in bytes with entries the
 *   groups still need; the detail is the bytes held and the bound (appendReadings).
 */
export type ScriptRefusalCode = 'LEASE_LOST' | 'GONE' | 'REFUSED' | 'STREAM_FULL';

const REFUSAL = /^(LEASE_LOST|GONE|REFUSED|STREAM_FULL)(?: (.*))?$/s;

/** A script said no, by one of its codes: a verdict about the request, not a failure of Redis. */
export class ScriptRefusal extends Error {
  override readonly name = 'ScriptRefusal';
  readonly script: ScriptName;
  readonly code: ScriptRefusalCode;
  /** What follows the code. */
  readonly detail: string;

  constructor(script: ScriptName, code: ScriptRefusalCode, detail: string) {
    super(`${script}: ${code} ${detail}`.trimEnd());
    this.script = script;
    this.code = code;
    this.detail = detail;
  }
}

/**
 * Runs a script by name; a refusal by code rejects with ScriptRefusal,
 * anything else as it came. A call whose Buffer arguments are large (a
 * commit's packed state) goes framed, its Buffers written to the socket
 * without a copy (framedScriptCall.ts).
 */
export async function runScript(
  redis: Connection,
  name: ScriptName,
  keys: readonly string[],
  args: readonly ScriptArgument[],
): Promise<unknown> {
  loadScripts(redis);
  const fn = (redis as unknown as Record<ScriptName, ScriptFn>)[name];
  try {
    if (holdsLargeBuffers(args)) return await runFramed(redis, scripts.get(name) as ScriptSource, keys, args);
    return await fn.call(redis, keys.length, keys, args);
  } catch (error) {
    const refused =
      error instanceof Error && error.name === 'ReplyError' ? REFUSAL.exec(error.message) : null;
    if (refused === null) throw error;
    throw new ScriptRefusal(name, refused[1] as ScriptRefusalCode, refused[2] ?? '');
  }
}
