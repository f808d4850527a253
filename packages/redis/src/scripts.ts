import { readdirSync, readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

/**
 * Every Redis script lives in `scripts/<name>.lua`, is read once here, and is
 * called by name. ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT,
 * so a Redis restart (which empties the script cache) needs no handling.
 */
export type ScriptName =
  | 'appendReadings'
  | 'addGateway'
  | 'revokeGateway'
  | 'claimNodes'
  | 'releaseNodes'
  | 'takeRate'
  | 'addNodes'
  | 'removeNodes'
  | 'writeNodeKeys'
  | 'commitShard'
  | 'markWritten'
  | 'archiveWatermark'
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

/** Every script's name, as ioredis knows the command. */
export const SCRIPT_NAMES: readonly string[] = [...sources.keys()];

type Connection = Redis | Cluster;
// ioredis flattens array arguments, so large argument lists are passed as arrays, not spread.
type ScriptFn = (
  numKeys: number,
  keys: readonly string[],
  args: readonly (string | number)[],
) => Promise<unknown>;

const loaded = new WeakSet<Connection>();

export function loadScripts(redis: Connection): void {
  if (loaded.has(redis)) return;
  for (const [name, lua] of sources) redis.defineCommand(name, { lua });
  loaded.add(redis);
}

export function runScript(
  redis: Connection,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  loadScripts(redis);
  const fn = (redis as unknown as Record<ScriptName, ScriptFn>)[name];
  return fn.call(redis, keys.length, keys, args);
}
