import { setFlagsFromString } from 'node:v8';

/**
 * How much more memory V8 lets a process take before its next full
 * collection, once external memory counts: half again what it held after
 * the last one.
 */
const HEAP_GROWING_PERCENT = 50;

/**
 * Counts the memory held outside V8's heap (ArrayBuffers: every node's pane
 * rings and scores, the commits' argument buffers, socket writes) in the
 * limit that grows with the heap, as the heap itself is counted, and grows
 * that limit by HEAP_GROWING_PERCENT.
 *
 * V8's default starts a full collection whenever 64 MB more of it has been
 * allocated since the last one, whatever the heap's size. A full collection
 * marks the whole heap, which grows with the nodes held: at 50,000 nodes the
 * aggregator ran 52 of them in a 90-second drain, almost all started by
 * that rule, and spent about a third of its CPU on them; at 100,000 nodes a
 * restart's first readings cost 2.7 times those of a fresh start. Counted
 * with the heap alone, V8 let the process take 1.4–1.6 times the resident
 * memory; with the fixed growth the peak was 10 % under to 19 % over the
 * default's, for most of the gain (docs/benchmarks.md, "Full collections
 * by external memory"). Process-wide, so it holds for the aggregator's
 * thread under `streamgauge start` too; set before any service starts.
 */
export function countExternalMemoryWithTheHeap(): void {
  setFlagsFromString('--external-memory-accounted-in-global-limit');
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
