import { CommandError, EXIT } from './exitCodes.ts';

const DURATION = /^(\d+(?:\.\d+)?)(s|m|h|d)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A time from the command line, ms: an ISO-8601 time, epoch ms, or a
 * duration ago (`30m`, `2h`, `7d`). A usage error names the option.
 */
export function timeArgument(option: string, value: string, now: number): number {
  if (/^\d+$/.test(value)) return Number(value);
  const duration = DURATION.exec(value);
  if (duration) {
    return Math.max(0, Math.floor(now - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]));
  }
  const time = Date.parse(value);
  if (Number.isNaN(time)) {
    throw new CommandError(
      EXIT.usage,
      `${option} ${JSON.stringify(value)} is not a time: give an ISO-8601 time, epoch ms, or a duration ago such as 2h`,
    );
  }
  return time;
}
