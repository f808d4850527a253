/** A cache line's doubles on the machines this runs on (64 bytes). */
const LINE_DOUBLES = 8;
/** Where touchLines leaves its sum, so that its loads are not dropped as unused. */
const TOUCHED = new Float64Array(1);

/**
 * Reads one double of every cache line of `values`, in order, before the
 * caller works on them. Per reading a node's detectors use a few dozen
 * lines of their state here and there; at 10,000 nodes that state (~9 KB
 * a node) is out of every cache, and each line was a miss the reading
 * waited for, one after another. Read in order, the lines come in together
 * (the loads depend on nothing, and the hardware prefetcher follows a
 * sequential walk). It pays for state that is mostly used each time and
 * mostly out of cache; a walk over every other line lost most of the gain
 * (docs/benchmarks.md, "A score's buffer read in order").
 */
export function touchLines(values: Float64Array): void {
  let sum = 0;
  for (let i = 0; i < values.length; i += LINE_DOUBLES) sum += values[i] as number;
  TOUCHED[0] = sum + (values[values.length - 1] as number);
}
