/** A serialized answer: its body as sent, and the entity tag that names it. */
export interface Answer {
  readonly body: Buffer;
  readonly etag: string;
}

/** What an answer is computed from; `keep: false` when it is not to be reused (a part could not be read now). */
export interface Computed {
  readonly value: unknown;
  readonly keep: boolean;
}

const KEPT = 256;

/**
 * The answers that clients poll (the overview, a page of nodes), serialized
 * once per generation (the view's version and the second: what they are
 * computed from) and then sent as they are: a poll costs a buffer write, not
 * an object graph and a JSON.stringify. An answer serialized without being
 * kept carries no entity tag.
 */
export class AnswerCache {
  readonly #kept = new Map<string, Answer>();
  #generation = '';
  /** Tags of another process (a restart, another replica) never match this one's. */
  readonly #epoch = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

  async answer(
    key: string,
    generation: string,
    compute: () => Promise<Computed> | Computed,
  ): Promise<Answer> {
    if (generation !== this.#generation) {
      this.#kept.clear();
      this.#generation = generation;
    }
    const kept = this.#kept.get(key);
    if (kept !== undefined) return kept;
    const { value, keep } = await compute();
    const body = Buffer.from(JSON.stringify(value));
    // Kept only under the generation it was computed in (the view may have moved on while it was).
    if (!keep || generation !== this.#generation) return { body, etag: '' };
    const answer = { body, etag: `W/"${this.#epoch}:${generation}"` };
    // Bounded: a client cycling through every filter cannot grow it.
    if (this.#kept.size >= KEPT) this.#kept.clear();
    this.#kept.set(key, answer);
    return answer;
  }
}
