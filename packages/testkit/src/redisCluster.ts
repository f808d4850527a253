import { RedisServer } from '@streamgauge/redis-server';
import { Cluster, Redis } from 'ioredis';

const SLOTS = 16384;
const HOST = '127.0.0.1';

export interface RedisClusterOptions {
  /** Default 3, the smallest cluster redis-cli would build. */
  readonly masters?: number;
  readonly appendfsync?: 'always' | 'everysec';
}

/**
 * A Redis Cluster of throw-away `redis-server` processes (masters only, no
 * replicas), for tests of what changes when keys live on different nodes.
 * Built with plain CLUSTER commands, so redis-cli is not needed.
 */
export class RedisCluster {
  readonly servers: RedisServer[];

  private constructor(servers: RedisServer[]) {
    this.servers = servers;
  }

  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const servers: RedisServer[] = [];
    try {
      // One at a time: freePort() answers "free a moment ago", so parallel
      // starts could pick the same port.
      for (let i = 0; i < (options.masters ?? 3); i++) {
        servers.push(await RedisServer.start({ cluster: true, appendfsync: options.appendfsync }));
      }
      const cluster = new RedisCluster(servers);
      await cluster.#form();
      return cluster;
    } catch (error) {
      await Promise.all(servers.map((server) => server.dispose()));
      throw error;
    }
  }

  get nodes(): { host: string; port: number }[] {
    return this.servers.map((server) => ({ host: HOST, port: server.port }));
  }

  /** The REDIS_CLUSTER_NODES format: `host:port,host:port,...`. */
  get nodesEnv(): string {
    return this.nodes.map(({ host, port }) => `${host}:${port}`).join(',');
  }

  /** Empties every master: FLUSHALL only reaches the node it is sent to. */
  async flush(): Promise<void> {
    await this.#withClients((nodes) => Promise.all(nodes.map(({ client }) => client.flushall())));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.dispose()));
  }

  async #form(): Promise<void> {
    await this.#withClients(async (nodes) => {
      const masters = nodes.map((node, i) => ({ ...node, slots: slotRange(i, nodes.length) }));
      const [seed, ...others] = masters;
      if (!seed) throw new Error('RedisCluster: masters must be at least 1');
      await Promise.all(
        masters.map(({ client, slots }) => client.call('CLUSTER', 'ADDSLOTSRANGE', ...slots)),
      );
      // The bus port is not port + 10000 (see RedisServer), so MEET must name it.
      const [, busPort] = (await seed.client.config('GET', 'cluster-port')) as [string, string];
      await Promise.all(others.map(({ client }) => client.call('CLUSTER', 'MEET', HOST, seed.port, busPort)));
      await waitForAgreement(nodes.map(({ client }) => client));
      await checkSlots(this.nodes, masters);
    });
  }

  /** Short-lived clients: a test may kill or pause servers between calls. */
  async #withClients<T>(use: (nodes: { client: Redis; port: number }[]) => Promise<T>): Promise<T> {
    const nodes = this.servers.map(({ port }) => ({
      client: new Redis(port, HOST, { maxRetriesPerRequest: 1 }),
      port,
    }));
    try {
      return await use(nodes);
    } finally {
      for (const { client } of nodes) client.disconnect();
    }
  }
}

/** Master i's share of the slots, as [first, last]: contiguous, as redis-cli splits them. */
function slotRange(i: number, masters: number): [number, number] {
  return [Math.floor((i * SLOTS) / masters), Math.floor(((i + 1) * SLOTS) / masters) - 1];
}

/**
 * Gossip spreads MEET and slot ownership over a few heartbeats; until every
 * node knows every master and sees all slots covered, clients get
 * CLUSTERDOWN or stale MOVED answers.
 */
async function waitForAgreement(clients: Redis[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  let states: string[] = [];
  while (Date.now() < deadline) {
    const infos = await Promise.all(clients.map((client) => client.cluster('INFO')));
    states = infos.map((info) => {
      const field = (name: string) => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
      return `state=${field('cluster_state')} known=${field('cluster_known_nodes')}`;
    });
    if (states.every((state) => state === `state=ok known=${clients.length}`)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `RedisCluster: the nodes did not agree within 20 s (want state=ok known=${clients.length}): ${states.join('; ')}`,
  );
}

/**
 * Writes, through a cluster client, one key per master, then reads each back
 * from the master that should own it: a plain GET there would answer MOVED if
 * the node's view of the slots disagreed with ours.
 */
async function checkSlots(
  nodes: { host: string; port: number }[],
  masters: { client: Redis; slots: [number, number] }[],
): Promise<void> {
  // Without a retry limit, commands wait for the client forever if it never becomes ready.
  const cluster = new Cluster(nodes, {
    clusterRetryStrategy: (times) => (times > 10 ? null : 100),
    redisOptions: { maxRetriesPerRequest: 1 },
  });
  try {
    for (const [i, { client, slots }] of masters.entries()) {
      const key = await keyInRange(client, slots);
      await cluster.set(key, key);
      if ((await cluster.get(key)) !== key) throw new Error(`RedisCluster: ${key} did not read back`);
      if ((await client.get(key)) !== key) throw new Error(`RedisCluster: ${key} is not on master ${i}`);
      await client.del(key); // the cluster starts empty
    }
  } finally {
    cluster.disconnect();
  }
}

async function keyInRange(client: Redis, [first, last]: [number, number]): Promise<string> {
  for (let n = 0; ; n++) {
    const key = `streamgauge:cluster-check:${n}`;
    const slot = await client.cluster('KEYSLOT', key);
    if (slot >= first && slot <= last) return key;
  }
}
