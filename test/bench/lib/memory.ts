import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

export interface ProcessMemory {
  /** VmRSS: resident now, bytes. */
  readonly rss: number;
  /** VmHWM: the peak resident size over the process's life, bytes. */
  readonly peak: number;
}

/** VmRSS and VmHWM of a process from /proc/<pid>/status; undefined when it is gone. */
export function processMemory(pid: number | 'self'): ProcessMemory | undefined {
  try {
    const status = readFileSync(`/proc/${pid === 'self' ? process.pid : pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { rss: kb('VmRSS') * 1024, peak: kb('VmHWM') * 1024 };
  } catch {
    return undefined;
  }
}

/** INFO memory `used_memory`: what Redis's allocator holds for data, bytes. */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
}

/**
 * The sum of `MEMORY USAGE <key> SAMPLES 0` (every element counted) over the
 * keys matching `pattern` (SCAN), and how many there are. Independent of how
 * the keys are laid out (one per node, or shared), so it stays comparable
 * when the layout changes.
 */
export async function memoryOfKeys(redis: Redis, pattern: string): Promise<{ bytes: number; keys: number }> {
  let cursor = '0';
  let bytes = 0;
  let keys = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    const pipeline = redis.pipeline();
    for (const key of found) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    for (const [error, value] of (await pipeline.exec()) ?? []) {
      if (error === null) bytes += Number(value ?? 0);
    }
    keys += found.length;
    cursor = next;
  } while (cursor !== '0');
  return { bytes, keys };
}

/** Bytes → "1.23 GB" / "456 MB" / "7.8 KB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '-';
  const abs = Math.abs(bytes);
  if (abs >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GB`;
  if (abs >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(0)} MB`;
  return `${(bytes / 1024).toFixed(1)} KB`;
}
