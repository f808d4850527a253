import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** A process whose CPU time is measured; `self` is this process. */
export interface CpuTarget {
  readonly name: string;
  readonly pid: number | 'self';
}

const CLOCK_TICKS = clockTicks();

/**
 * CPU time of a few processes, and of the whole machine, over a window, in %
 * of one core (so 200 % is both cores of a 2-core machine). Reads
 * /proc/<pid>/stat; a process that cannot be read is left out.
 */
export class CpuMeter {
  readonly #targets: readonly CpuTarget[];
  #start = new Map<string, number>();
  #startWall = 0;
  #startHost: HostTimes = { busy: 0, total: 0 };

  constructor(targets: readonly CpuTarget[]) {
    this.#targets = targets;
  }

  start(): void {
    this.#startWall = performance.now();
    this.#startHost = hostTimes();
    this.#start = new Map();
    for (const target of this.#targets) {
      const seconds = cpuSeconds(target.pid);
      if (seconds !== undefined) this.#start.set(target.name, seconds);
    }
  }

  /**
   * Percent of one core per process since start(), plus `other`: what the
   * rest of the machine used (another test run on the same host skews the figures).
   */
  stop(): Record<string, number> {
    const wall = (performance.now() - this.#startWall) / 1000;
    const result: Record<string, number> = {};
    for (const target of this.#targets) {
      const before = this.#start.get(target.name);
      const after = cpuSeconds(target.pid);
      if (before !== undefined && after !== undefined && wall > 0) {
        result[target.name] = ((after - before) / wall) * 100;
      }
    }
    const host = hostTimes();
    const total = host.total - this.#startHost.total;
    if (total > 0) {
      const all = ((host.busy - this.#startHost.busy) / total) * 100 * cpus().length;
      const measured = Object.values(result).reduce((sum, value) => sum + value, 0);
      result.other = Math.max(0, all - measured);
    }
    return result;
  }
}

function cpuSeconds(pid: number | 'self'): number | undefined {
  if (pid === 'self') {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

interface HostTimes {
  readonly busy: number;
  readonly total: number;
}

function hostTimes(): HostTimes {
  let busy = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const { user, nice, sys, idle, irq } = cpu.times;
    busy += user + nice + sys + irq;
    total += user + nice + sys + idle + irq;
  }
  return { busy, total };
}

function clockTicks(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/** How busy the whole machine is over `ms`, in % of one core (a check that nothing else runs). */
export async function hostBusyPercent(ms: number): Promise<number> {
  const before = hostTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = hostTimes();
  const total = after.total - before.total;
  return total > 0 ? ((after.busy - before.busy) / total) * 100 * cpus().length : 0;
}
