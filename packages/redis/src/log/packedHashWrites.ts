import { type ByteArena, GrowingArena } from '@streamgauge/core';

/**
 * Bytes an argument holds before the next is started. Small, because Redis
 * copies every script argument into a Lua string, and an argument of tens
 * of MB is fresh memory on each call (its query buffer and the Lua string:
 * page faults at ~3 ms a MB on these VMs): a commit of 41 MB took Redis
 * 556 ms of CPU as one argument, 448 ms as arguments of 64 KB, which its
 * allocator reuses (test/bench/commitWays.ts; docs/benchmarks.md, "A
 * commit as commands"). Since then a commit goes this way on a Cluster,
 * or when its transaction did not take (CommitConnection).
 */
const CHUNK_BYTES = 64 * 1024;

/**
 * Field writes to many hashes, packed into a few script arguments (read by
 * the scripts' `packed_fields`): per hash, `[fields u32]`, then per field
 * `[name length u16][name][value length u32][value]`, little-endian. An
 * empty value deletes the field (no state is ever encoded as nothing).
 *
 * Why packed: a pipelined client frames every argument on its own
 * (ioredis: a header string, a copy, a separator, each a call into the
 * runtime), a few hundred ns apiece. A commit of 10,000 nodes with two
 * fields each is 50,000 arguments that way: 3.3–5.8 µs of the aggregator a
 * node, against 1.5–1.8 µs with the fields packed (test/bench/commitFraming.ts). Values are
 * encoded in place (`setEncoded`), not encoded and then copied in. A
 * commit sent as a transaction (CommitConnection) reads them back from
 * here (`forEachHash`) and sends the large ones from this memory as it is.
 */
export class PackedHashWrites {
  /** The hashes written, in the order of their fields in `chunks()`. */
  readonly keys: string[] = [];
  readonly #arena: GrowingArena;
  /** Where the current hash's field count goes, and the count so far. */
  #countAt = -1;
  #count = 0;
  /** Where each argument but the first starts (always before a count or a field). */
  readonly #cuts: number[] = [];
  readonly #chunkBytes: number;

  /**
   * `expectedBytes`: about what the writes will take (the arena grows past
   * it by copying). `chunkBytes`: an argument is cut once it holds this
   * many (a field is never cut, so one larger than this is an argument of
   * its own size).
   * `arena`: memory of earlier writes, done with, to pack these into.
   */
  constructor(
    expectedBytes = 64 * 1024,
    { chunkBytes = CHUNK_BYTES, arena }: { readonly chunkBytes?: number; readonly arena?: GrowingArena } = {},
  ) {
    if (arena === undefined) this.#arena = new GrowingArena(Math.max(64, expectedBytes));
    else {
      arena.reset(expectedBytes);
      this.#arena = arena;
    }
    this.#chunkBytes = chunkBytes;
  }

  /**
   * The memory the writes are packed in, to be given to later writes once
   * these are sent and done with (the chunks are views of it).
   */
  get arena(): GrowingArena {
    return this.#arena;
  }

  /** Starts the fields of another hash. */
  hash(key: string): void {
    this.#close();
    this.keys.push(key);
    this.#cutWhenFull();
    const arena = this.#arena;
    arena.room(4);
    this.#countAt = arena.used;
    arena.used += 4;
  }

  /**
   * Sets a field of the current hash (`name`: ASCII, as every state field
   * is) to what `encode` writes at the arena's end; nothing written
   * deletes the field.
   */
  setEncoded(name: string, encode: (arena: ByteArena) => unknown): void {
    if (this.#countAt < 0) throw new Error(`hash field ${name} before any hash`);
    this.#cutWhenFull();
    const arena = this.#arena;
    arena.room(6 + name.length);
    let at = arena.used;
    arena.view.setUint16(at, name.length, true);
    at += 2;
    for (let i = 0; i < name.length; i++) arena.bytes[at++] = name.charCodeAt(i);
    const lengthAt = at;
    arena.used = at + 4;
    encode(arena);
    arena.view.setUint32(lengthAt, arena.used - lengthAt - 4, true);
    this.#count++;
  }

  /** Sets a field of the current hash to a copy of `value` (empty: deletes it). */
  set(name: string, value: Uint8Array): void {
    this.setEncoded(name, (arena) => {
      arena.room(value.byteLength);
      arena.bytes.set(value, arena.used);
      arena.used += value.byteLength;
    });
  }

  /** Deletes a field of the current hash. */
  delete(name: string): void {
    this.setEncoded(name, () => {});
  }

  /** The packed fields of every hash, as arguments of at most about `chunkBytes` (none without hashes). */
  chunks(): Buffer[] {
    this.#close();
    const { bytes, used } = this.#arena;
    if (used === 0) return [];
    const starts = [0, ...this.#cuts];
    return starts.map((start, i) =>
      Buffer.from(bytes.buffer, bytes.byteOffset + start, (starts[i + 1] ?? used) - start),
    );
  }

  /**
   * Each hash in the order written, with its fields: `fields` holds four
   * offsets into `bytes` per field, where its name starts and ends and
   * where its value starts and ends (an empty value deletes the field). The
   * list is used again for the next hash.
   */
  forEachHash(visit: (key: string, fields: readonly number[], bytes: Uint8Array) => void): void {
    this.#close();
    const { bytes, view } = this.#arena;
    const fields: number[] = [];
    let at = 0;
    for (const key of this.keys) {
      const count = view.getUint32(at, true);
      at += 4;
      fields.length = 0;
      for (let f = 0; f < count; f++) {
        const nameEnd = at + 2 + view.getUint16(at, true);
        const valueEnd = nameEnd + 4 + view.getUint32(nameEnd, true);
        fields.push(at + 2, nameEnd, nameEnd + 4, valueEnd);
        at = valueEnd;
      }
      visit(key, fields, bytes);
    }
  }

  #cutWhenFull(): void {
    const used = this.#arena.used;
    if (used - (this.#cuts.at(-1) ?? 0) >= this.#chunkBytes) this.#cuts.push(used);
  }

  #close(): void {
    if (this.#countAt >= 0) this.#arena.view.setUint32(this.#countAt, this.#count, true);
    this.#countAt = -1;
    this.#count = 0;
  }
}
