import type { GrowingArena } from '@streamgauge/core';

/**
 * Values from this size are sent as views of the memory they were encoded
 * in, not copied next to their framing: copying a commit of 10–45 MB into
 * memory of its own was most of what sending it as commands cost the
 * aggregator (page faults included, when that memory was new). Tried
 * 2 KB (a node's head, ~550 bytes, copied): even or worse in the drain.
 */
const VIEW_BYTES = 512;

const encoder = new TextEncoder();

/**
 * Text up to this long (keys, node ids) is tried as ASCII first, copied in
 * a loop: two calls into the runtime (its UTF-8 length, the encoding) cost
 * more than that (`writeNodeKeys` sends 500 keys a call).
 */
const SHORT_TEXT = 64;

/**
 * RESP (arrays of bulk strings) written into an arena, but for large values:
 * those are parts of their own (views, see VIEW_BYTES), between the
 * arena's runs of framing.
 */
export class RespWriter {
  readonly #arena: GrowingArena;
  readonly #parts: Uint8Array[] = [];
  /** Where the arena's current run of framing starts. */
  #from: number;

  /** Writes after what `arena` holds already. */
  constructor(arena: GrowingArena) {
    this.#arena = arena;
    this.#from = arena.used;
  }

  /** What to send, in order (views: valid until the arena and the values' memory are used again). */
  parts(): Uint8Array[] {
    this.#cut();
    return this.#parts;
  }

  array(n: number): void {
    this.#head(0x2a, n);
  }

  /** A bulk string of one-byte characters (command names, numbers). */
  ascii(s: string): void {
    this.#head(0x24, s.length);
    const arena = this.#arena;
    this.#room(s.length + 2);
    const { bytes } = arena;
    let at = arena.used;
    for (let i = 0; i < s.length; i++) bytes[at++] = s.charCodeAt(i);
    arena.used = at;
    this.#crlf();
  }

  /** A bulk string of any text, as UTF-8. */
  text(s: string): void {
    if (s.length <= SHORT_TEXT && this.#asciiText(s)) return;
    const length = Buffer.byteLength(s);
    this.#head(0x24, length);
    const arena = this.#arena;
    this.#room(length + 2);
    encoder.encodeInto(s, arena.bytes.subarray(arena.used, arena.used + length));
    arena.used += length;
    this.#crlf();
  }

  /** `text` for ASCII, copied here; false (nothing written) at the first other character. */
  #asciiText(s: string): boolean {
    const n = s.length;
    // Room for all of it (the header, the text as UTF-8 at most), so that nothing moves in between.
    this.#room(16 + 3 * n + 2);
    const arena = this.#arena;
    const start = arena.used;
    this.#head(0x24, n);
    const { bytes } = arena;
    let at = arena.used;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        arena.used = start;
        return false;
      }
      bytes[at++] = c;
    }
    arena.used = at;
    this.#crlf();
    return true;
  }

  /** A bulk string of `source[start..end)`. */
  bytes(source: Uint8Array, start: number, end: number): void {
    this.#head(0x24, end - start);
    const arena = this.#arena;
    if (end - start >= VIEW_BYTES) {
      this.#cut();
      this.#parts.push(source.subarray(start, end));
    } else {
      this.#room(end - start + 2);
      arena.bytes.set(source.subarray(start, end), arena.used);
      arena.used += end - start;
    }
    this.#crlf();
  }

  /** `*n\r\n` or `$n\r\n`. */
  #head(kind: number, n: number): void {
    const arena = this.#arena;
    this.#room(16);
    const { bytes } = arena;
    let at = arena.used;
    bytes[at++] = kind;
    let digits = 1;
    for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    for (let d = digits - 1, rest = n; d >= 0; d--, rest = Math.floor(rest / 10))
      bytes[at + d] = 0x30 + (rest % 10);
    at += digits;
    bytes[at++] = 0x0d;
    bytes[at++] = 0x0a;
    arena.used = at;
  }

  #crlf(): void {
    this.#room(2);
    const arena = this.#arena;
    arena.bytes[arena.used++] = 0x0d;
    arena.bytes[arena.used++] = 0x0a;
  }

  /** Room for `n` more bytes; a growth copies, so the run so far is cut first (its view stays valid). */
  #room(n: number): void {
    const arena = this.#arena;
    if (arena.used + n <= arena.bytes.length) return;
    this.#cut();
    arena.room(n);
    this.#from = arena.used;
  }

  /** Ends the current run of framing as a part. */
  #cut(): void {
    const arena = this.#arena;
    if (arena.used > this.#from) this.#parts.push(arena.bytes.subarray(this.#from, arena.used));
    this.#from = arena.used;
  }
}
