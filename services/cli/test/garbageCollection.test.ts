import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../src/garbageCollection.ts', import.meta.url));

/**
 * A fresh Node process that keeps 512 MB of ArrayBuffers (a MB at a time,
 * with some heap objects beside them, as a growing aggregator keeps its
 * nodes' rings), and prints how many full (major) collections ran.
 */
function majorCollections(counted: boolean): number {
  const script = `
    import { constants, PerformanceObserver } from 'node:perf_hooks';
    import { countExternalMemoryWithTheHeap } from ${JSON.stringify(MODULE)};
    if (${counted}) countExternalMemoryWithTheHeap();
    let major = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
    }).observe({ entryTypes: ['gc'] });
    const kept = [];
    for (let i = 0; i < 512; i++) {
      kept.push(new ArrayBuffer(1 << 20));
      for (let j = 0; j < 200; j++) kept.push({ i, j });
      await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    process.stdout.write(String(major));
  `;
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

describe("a streamgauge process's garbage collection", () => {
  it('runs full collections as its memory grows by a share, not for every 64 MB of ArrayBuffers it keeps', () => {
    const byDefault = majorCollections(false);
    const counted = majorCollections(true);
    // V8's default: one full collection per 64 MB allocated outside the heap
    // (7–8 here); counted with the heap, the limit grows with what is kept (3).
    expect(byDefault).toBeGreaterThanOrEqual(6);
    expect(counted).toBeLessThanOrEqual(byDefault / 2);
  });
});
