/**
 * Readings are partitioned by node into stream shards, so that one node's
 * readings are always in one shard and are applied by one consumer.
 * FNV-1a (32 bit) is stable across processes and languages (unlike a
 * runtime's string hash), cheap, and spreads short ids well.
 */
export function shardOf(nodeId: string, shards: number): number {
  if (shards === 1) return 0;
  return nodeHash(nodeId) % shards;
}

/** A node id's FNV-1a hash, an unsigned 32-bit integer (see shardOf). */
export function nodeHash(nodeId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < nodeId.length; i++) {
    hash ^= nodeId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * The shards a replica should own, given every live replica's token: shard
 * `s` goes to the `s mod R`-th token in sorted order. Every replica computes
 * the same answer from the same membership, so each lets go of what another
 * should take; shard counts per replica differ by at most one.
 */
export function assignShards(replicas: readonly string[], me: string, shards: number): number[] {
  const sorted = [...new Set(replicas)].sort();
  const index = sorted.indexOf(me);
  if (index < 0) return [];
  const mine: number[] = [];
  for (let s = index; s < shards; s += sorted.length) mine.push(s);
  return mine;
}
