/**
 * Typed arrays hold what would otherwise be a heap number each; NaN stands
 * in them for a number that is missing (no reading carries NaN).
 */
export function unlessNaN(x: number): number | undefined {
  return Number.isNaN(x) ? undefined : x;
}
