import { assignShards, type ShardKeys } from '@streamgauge/core';
import type { CommitConnection, ShardLeases } from '@streamgauge/redis';
import type { Logger } from 'pino';
import { Subject } from 'rxjs';

export type Ownership =
  /** The shard is this replica's, under the acquisition's own lease token. */
  | { readonly kind: 'acquired'; readonly shard: ShardKeys; readonly token: string }
  /** Another replica is to take the shard: finish, write out, then `released()`. */
  | { readonly kind: 'release'; readonly shard: ShardKeys }
  /** The lease is gone (expired, or taken): drop the shard at once. */
  | { readonly kind: 'lost'; readonly shard: ShardKeys };

/**
 * Renews held leases (shard, token) somewhere other than the keeper's own
 * connection, resolving to whether each is still held, or undefined when
 * it could not (the keeper then renews them itself): the aggregator renews
 * on its commit connection, between two transactions (CommitConnection.between).
 */
export type Renewals = (held: readonly (readonly [ShardKeys, string])[]) => Promise<boolean[] | undefined>;

/**
 * Renewals on `commits`' connection between two of its transactions, with
 * `leases` bound to that connection; waiting at most a third of the lease
 * for the transactions ahead, so a lease is still renewed at least every
 * two thirds of its time.
 */
export function renewalsBetween(commits: CommitConnection, leases: ShardLeases): Renewals {
  return (held) =>
    commits.between(
      () => Promise.all(held.map(([shard, token]) => leases.renew(shard, token))),
      leases.leaseMs / 3,
    );
}

/**
 * Keeps this replica's share of the shards. Every `leaseMs / 3` it renews
 * its membership and its leases, works out from the live membership which
 * shards it should hold (the same answer on every replica), gives up the
 * ones it should not, and takes the ones it should once they are free. A
 * replica that joins or dies is thus balanced in within about 1.5 × leaseMs.
 */
export class LeaseKeeper {
  readonly #leases: ShardLeases;
  readonly #shards: readonly ShardKeys[];
  readonly #logger: Logger;
  readonly #events = new Subject<Ownership>();
  /** Shards held, with the lease token of their acquisition. */
  readonly #held = new Map<ShardKeys, string>();
  readonly #releasing = new Set<ShardKeys>();
  #timer: NodeJS.Timeout | undefined;
  #beat: Promise<void> = Promise.resolve();
  #stopped = false;
  readonly #renewals: Renewals | undefined;

  /** `renewals`: where the held leases are renewed first (see Renewals); else, or when that fails, on `leases`. */
  constructor(
    leases: ShardLeases,
    shards: readonly ShardKeys[],
    logger: Logger,
    options: { readonly renewals?: Renewals } = {},
  ) {
    this.#leases = leases;
    this.#shards = shards;
    this.#logger = logger;
    this.#renewals = options.renewals;
  }

  readonly events$ = this.#events.asObservable();

  get held(): ShardKeys[] {
    return [...this.#held.keys()];
  }

  /** Starts the heartbeat; resolves after the first one (the shards free now are taken). */
  start(): Promise<void> {
    const beat = () => {
      if (this.#stopped) return;
      this.#beat = this.#heartbeat().catch((error: unknown) => {
        this.#logger.warn({ err: error }, 'renewing shard leases failed; retrying');
      });
      this.#timer = setTimeout(() => this.#beat.then(beat), Math.max(50, this.#leases.leaseMs / 3));
    };
    beat();
    return this.#beat;
  }

  /** A commit found the lease taken: the shard is gone. */
  lost(shard: ShardKeys): void {
    if (!this.#held.delete(shard)) return;
    this.#releasing.delete(shard);
    this.#events.next({ kind: 'lost', shard });
  }

  /** The shard's work is written out: let another replica have it now. */
  async released(shard: ShardKeys): Promise<void> {
    const token = this.#held.get(shard);
    if (token === undefined) return;
    this.#held.delete(shard);
    this.#releasing.delete(shard);
    await this.#leases.release(shard, token).catch(() => {});
  }

  /** Stops renewing; gives up every lease and the membership, so others take over at once. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#beat;
    await Promise.all(this.held.map((shard) => this.released(shard)));
    await this.#leases.leave().catch(() => {});
    this.#events.complete();
  }

  async #heartbeat(): Promise<void> {
    const members = await this.#leases.members();
    const target = new Set(
      assignShards(members, this.#leases.token, this.#shards.length).map((i) => this.#shards[i] as ShardKeys),
    );
    const held = [...this.#held];
    const renewed =
      (held.length > 0 ? await this.#renewals?.(held).catch(() => undefined) : []) ??
      (await Promise.all(held.map(([shard, token]) => this.#leases.renew(shard, token))));
    if (this.#stopped) return;
    held.forEach(([shard], i) => {
      if (!renewed[i]) {
        this.#logger.warn({ stream: shard.stream }, 'shard lease expired');
        this.lost(shard);
      } else if (!target.has(shard) && !this.#releasing.has(shard)) {
        this.#releasing.add(shard);
        this.#events.next({ kind: 'release', shard });
      }
    });
    const wanted = [...target].filter((shard) => !this.#held.has(shard));
    const acquired = await Promise.all(wanted.map((shard) => this.#leases.acquire(shard)));
    wanted.forEach((shard, i) => {
      const token = acquired[i];
      if (token === undefined) return;
      if (this.#stopped) {
        void this.#leases.release(shard, token).catch(() => {});
        return;
      }
      this.#held.set(shard, token);
      this.#events.next({ kind: 'acquired', shard, token });
    });
  }
}
