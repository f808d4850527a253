import { readFile } from 'node:fs/promises';
import { RedisServer } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import type { CommandStat } from './types.ts';
import { BenchFailure } from './types.ts';

/**
 * The Redis the benchmarks run against: a throw-away `redis-server` started
 * here, or the scratch database named by BENCH_REDIS_URL. Never the shared
 * Redis on the default port, unless someone points BENCH_REDIS_URL at it, and
 * then only with BENCH_REDIS_FLUSH=1 (its database is emptied between suites).
 */
export class BenchRedis {
  readonly url: string;
  /** Present when this process started the server. */
  readonly server: RedisServer | undefined;
  /** A plain connection for setup, checks and baselines. */
  readonly client: Redis;
  readonly version: string;
  /** The server's pid, when it is a process on this machine whose CPU time can be read. */
  readonly pid: number | undefined;

  private constructor(
    url: string,
    server: RedisServer | undefined,
    client: Redis,
    version: string,
    pid: number | undefined,
  ) {
    this.url = url;
    this.server = server;
    this.client = client;
    this.version = version;
    this.pid = pid;
  }

  static async open(externalUrl: string | undefined, allowFlush: boolean): Promise<BenchRedis> {
    const server = externalUrl === undefined ? await RedisServer.start() : undefined;
    const url = externalUrl ?? (server as RedisServer).url;
    const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
    client.on('error', () => {});
    try {
      await client.connect();
      if (server === undefined) {
        const keys = await client.dbsize();
        if (keys > 0 && !allowFlush) {
          throw new BenchFailure(
            `BENCH_REDIS_URL holds ${keys} keys; the benchmarks empty the database between suites. ` +
              'Point it at a scratch database, or set BENCH_REDIS_FLUSH=1 to allow flushing it.',
          );
        }
      }
      const info = parseInfo(await client.info('server'));
      const pid = Number(info.process_id);
      const local = server !== undefined || (await isLocalRedisProcess(pid));
      return new BenchRedis(url, server, client, info.redis_version ?? 'unknown', local ? pid : undefined);
    } catch (error) {
      client.disconnect();
      await server?.dispose();
      throw error;
    }
  }

  /** Empties the data: FLUSHALL on a throw-away server, FLUSHDB on BENCH_REDIS_URL. */
  async flush(): Promise<void> {
    if (this.server !== undefined) await this.client.flushall();
    else await this.client.flushdb();
  }

  async resetStats(): Promise<void> {
    await this.client.config('RESETSTAT');
  }

  /** INFO commandstats, busiest first. */
  async commandStats(): Promise<CommandStat[]> {
    const info = parseInfo(await this.client.info('commandstats'));
    const stats: CommandStat[] = [];
    for (const [key, value] of Object.entries(info)) {
      if (!key.startsWith('cmdstat_')) continue;
      const fields = Object.fromEntries(value.split(',').map((pair) => pair.split('=') as [string, string]));
      const command = key.slice('cmdstat_'.length);
      if (command === 'config' || command === 'info') continue;
      stats.push({
        command,
        calls: Number(fields.calls),
        usec: Number(fields.usec),
        usecPerCall: Number(fields.usec_per_call),
      });
    }
    return stats.sort((a, b) => b.usec - a.usec);
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
    await this.server?.dispose();
  }
}

function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

async function isLocalRedisProcess(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).startsWith('redis-server');
  } catch {
    return false;
  }
}
