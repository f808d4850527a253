import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLI = new URL('../../cli/src/main.ts', import.meta.url).pathname;

export interface CorpusScore {
  readonly profile: string;
  /** The scorer's line, e.g. `score standard: 74.10 (raw …, best threshold …, 31 files)`. */
  readonly line: string;
  readonly score: number;
  readonly threshold: number;
}

/**
 * A labelled corpus in the Numenta Anomaly Benchmark's layout (`data/`,
 * `labels/windows.json`, `score.mjs`): `streamgauge detect FILE --as value`
 * on every series, its output written under `out` as the scorer expects,
 * then the corpus's own scorer for each profile.
 */
export async function scoreCorpus(
  corpus: string,
  out: string,
  profiles: readonly string[] = ['standard', 'reward_low_FP_rate'],
): Promise<CorpusScore[]> {
  const files = Object.keys(JSON.parse(readFileSync(join(corpus, 'labels/windows.json'), 'utf8')));
  const queue = [...files];
  const worker = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      const { stdout } = await run(
        process.execPath,
        [CLI, 'detect', join(corpus, 'data', file), '--as', 'value'],
        {
          maxBuffer: 1 << 28,
        },
      );
      mkdirSync(dirname(join(out, file)), { recursive: true });
      writeFileSync(join(out, file), stdout);
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, availableParallelism()) }, worker));
  const scores: CorpusScore[] = [];
  for (const profile of profiles) {
    const { stdout } = await run(process.execPath, [join(corpus, 'score.mjs'), out, profile]);
    const line = stdout.trim();
    const match = /: (-?[\d.]+) .*best threshold ([\d.e-]+)/.exec(line);
    scores.push({ profile, line, score: Number(match?.[1]), threshold: Number(match?.[2]) });
  }
  return scores;
}

/** The development split beside the project, when this machine has it. */
export function defaultCorpus(): string | undefined {
  const dir = new URL('../../../../shared/benchmarks/nab-dev', import.meta.url).pathname;
  return existsSync(join(dir, 'score.mjs')) ? dir : undefined;
}
