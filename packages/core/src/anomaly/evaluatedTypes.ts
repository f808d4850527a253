import { ANOMALY_TYPES, type AnomalyType } from './types.ts';

const INDEX = Object.fromEntries(ANOMALY_TYPES.map((type, i) => [type, i])) as Record<AnomalyType, number>;

/**
 * The anomaly types whose rules ran for one reading, in the order they were
 * added (the order clear types close in), as a Set listed them. Cleared and
 * filled for every reading: a Set's `clear` allocated a new table and its
 * adds grew it again, about 1 µs a reading, as much as the rules themselves.
 */
export class EvaluatedTypes {
  /** Per type, whether it was added. */
  readonly #added = new Uint8Array(ANOMALY_TYPES.length);
  /** The types added, by index, in order. */
  readonly #order = new Uint8Array(ANOMALY_TYPES.length);
  #count = 0;

  clear(): void {
    for (let i = 0; i < this.#count; i++) this.#added[this.#order[i] as number] = 0;
    this.#count = 0;
  }

  add(type: AnomalyType): void {
    const index = INDEX[type];
    if (this.#added[index] === 1) return;
    this.#added[index] = 1;
    this.#order[this.#count++] = index;
  }

  has(type: AnomalyType): boolean {
    return this.#added[INDEX[type]] === 1;
  }

  /** Each type in the order added (no iterator: this runs for every reading of a node with an anomaly). */
  forEach(visit: (type: AnomalyType) => void): void {
    for (let i = 0; i < this.#count; i++) visit(ANOMALY_TYPES[this.#order[i] as number] as AnomalyType);
  }
}
