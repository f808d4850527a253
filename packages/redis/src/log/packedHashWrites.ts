/**
 * Field writes to many hashes, packed into one script argument (read by
 * commitShard.lua's `packed_fields`): per hash, `[fields u32]`, then per
 * field `[name length u16][name][value length u32][value]`, little-endian.
 * An empty value deletes the field (no state is ever encoded as nothing).
 *
 * Why one argument: a pipelined client frames every argument on its own
 * (ioredis: a header string, a copy, a separator, each a call into the
 * runtime), a few hundred ns apiece. A commit of 10,000 nodes with two
 * fields each is 50,000 arguments that way: ~5 µs of the aggregator a node,
 * against ~1.8 µs with the fields packed (docs/benchmarks.md).
 */
export class PackedHashWrites {
  /** The hashes written, in the order of their fields in `bytes()`. */
  readonly keys: string[] = [];
  #buffer: Buffer;
  #used = 0;
  /** Where the current hash's field count goes, and the count so far. */
  #countAt = -1;
  #count = 0;

  constructor(initialBytes = 64 * 1024) {
    this.#buffer = Buffer.allocUnsafe(initialBytes);
  }

  /** Starts the fields of another hash. */
  hash(key: string): void {
    this.#close();
    this.keys.push(key);
    this.#room(4);
    this.#countAt = this.#used;
    this.#used += 4;
  }

  /**
   * Sets a field of the current hash (`name`: ASCII, as every state field
   * is); an empty value deletes it.
   */
  set(name: string, value: Uint8Array): void {
    if (this.#countAt < 0) throw new Error(`hash field ${name} before any hash`);
    this.#room(6 + name.length + value.byteLength);
    const buffer = this.#buffer;
    let at = buffer.writeUInt16LE(name.length, this.#used);
    for (let i = 0; i < name.length; i++) buffer[at++] = name.charCodeAt(i);
    at = buffer.writeUInt32LE(value.byteLength, at);
    buffer.set(value, at);
    this.#used = at + value.byteLength;
    this.#count++;
  }

  /** Deletes a field of the current hash. */
  delete(name: string): void {
    this.set(name, EMPTY);
  }

  /** The packed fields of every hash (a view of this writer's buffer). */
  bytes(): Buffer {
    this.#close();
    return this.#buffer.subarray(0, this.#used);
  }

  #close(): void {
    if (this.#countAt >= 0) this.#buffer.writeUInt32LE(this.#count, this.#countAt);
    this.#countAt = -1;
    this.#count = 0;
  }

  #room(n: number): void {
    if (this.#used + n <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.#buffer.length, this.#used + n));
    this.#buffer.copy(grown, 0, 0, this.#used);
    this.#buffer = grown;
  }
}

const EMPTY = new Uint8Array(0);
