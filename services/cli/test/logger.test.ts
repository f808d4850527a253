import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { prettyLine } from '../src/logger.ts';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

describe('log lines', () => {
  it('reads as a line a person reads: local time, level, service, message, then the fields', () => {
    const time = new Date(2026, 11, 3, 9, 5, 7, 42).getTime();
    const json = JSON.stringify({
      level: 40,
      time,
      pid: 1,
      hostname: 'h',
      service: 'aggregator',
      msg: 'lease lost',
      shard: 'readings:{2}',
      held: 3,
    });
    expect(prettyLine(json, false)).toBe(
      '09:05:07.042 WARN  aggregator: lease lost shard=readings:{2} held=3',
    );
    expect(prettyLine(json, true)).toContain('\x1b[33mWARN \x1b[0m');
    // A line that is not JSON is shown as it is.
    expect(prettyLine('not json', false)).toBe('not json');
  });

  it('puts an error stack on lines of its own', () => {
    const line = prettyLine(
      JSON.stringify({
        level: 50,
        time: 0,
        msg: 'failed',
        err: { message: 'boom', stack: 'Error: boom\n    at x' },
      }),
      false,
    );
    expect(line).toMatch(/ERROR failed err="boom"\nError: boom\n {4}at x$/);
  });

  it('is JSON when not on a terminal, and pretty when LOG_FORMAT=pretty says so', () => {
    // The aggregator logs as it starts (its /metrics listener), then retries an unreachable Redis until stopped.
    const firstLine = (format: string) =>
      spawnSync(process.execPath, [MAIN, 'aggregate'], {
        env: {
          ...process.env,
          LOG_FORMAT: format,
          LOG_LEVEL: 'info',
          METRICS_PORT: '0',
          REDIS_URL: 'redis://127.0.0.1:1',
        },
        encoding: 'utf8',
        timeout: 3_000,
      }).stdout.split('\n')[0] ?? '';
    expect(JSON.parse(firstLine(''))).toMatchObject({
      level: 30,
      service: 'aggregator',
      msg: 'metrics listening',
    });
    expect(firstLine('pretty')).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}aggregator: metrics listening url=http:\/\/0\.0\.0\.0:\d+\/metrics$/,
    );
  });
});
