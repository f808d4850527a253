import { Writable } from 'node:stream';
import type { Config, LogFormat } from '@streamgauge/core';
import { type DestinationStream, type Logger, pino } from 'pino';

type LogSettings = Pick<Config, 'logLevel' | 'logFormat'>;

/**
 * JSON logs, one line an event, for log shippers; on a terminal, lines a
 * person reads (local time, level, service, message, then the fields).
 * LOG_FORMAT=json or LOG_FORMAT=pretty decides instead of the terminal test.
 * From `level` on, unless LOG_LEVEL says otherwise.
 */
export function createLogger(settings: LogSettings, service: string, level = 'info'): Logger {
  return pino(
    { level: settings.logLevel ?? level, base: { service } },
    destination(process.stdout, 1, settings.logFormat),
  );
}

/**
 * For a command whose result is its stdout: logs go to stderr, warnings and
 * errors only unless LOG_LEVEL (or the command, with `level`) says otherwise.
 */
export function commandLogger(settings: LogSettings, service: string, level = 'warn'): Logger {
  return pino(
    { level: settings.logLevel ?? level, base: { service } },
    destination(process.stderr, 2, settings.logFormat),
  );
}

function destination(stream: NodeJS.WriteStream, fd: 1 | 2, format: LogFormat): DestinationStream {
  const pretty = format === 'pretty' || (format === 'auto' && stream.isTTY === true);
  if (!pretty) return pino.destination(fd);
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') stream.write(`${prettyLine(line, stream.hasColors?.() ?? false)}\n`);
      }
      done();
    },
  });
}

const LEVELS: Record<number, [name: string, color: number]> = {
  10: ['TRACE', 90],
  20: ['DEBUG', 90],
  30: ['INFO ', 32],
  40: ['WARN ', 33],
  50: ['ERROR', 31],
  60: ['FATAL', 35],
};
/** Fields every line has, shown in the line's head rather than after it. */
const HEAD = new Set(['level', 'time', 'pid', 'hostname', 'service', 'msg']);

/** One pino JSON line as `HH:MM:SS.mmm LEVEL service: message key=value ...`. */
export function prettyLine(json: string, colors: boolean): string {
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(json);
  } catch {
    return json;
  }
  const [name, color] = LEVELS[Number(event.level)] ?? [String(event.level), 0];
  const time = typeof event.time === 'number' ? new Date(event.time) : new Date();
  const clock = `${pad(time.getHours())}:${pad(time.getMinutes())}:${pad(time.getSeconds())}.${String(time.getMilliseconds()).padStart(3, '0')}`;
  const level = colors ? `\x1b[${color}m${name}\x1b[0m` : name;
  const fields = Object.entries(event)
    .filter(([key]) => !HEAD.has(key))
    .map(([key, value]) => `${key}=${fieldText(value)}`);
  const service = event.service === undefined ? '' : ` ${event.service}:`;
  return [`${clock} ${level}${service} ${event.msg ?? ''}`, ...fields].join(' ').trimEnd();
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  // An error's stack reads best on lines of its own.
  if (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { stack?: unknown }).stack === 'string'
  ) {
    const { message, stack } = value as { message?: string; stack: string };
    return `${JSON.stringify(message ?? '')}\n${stack}`;
  }
  return JSON.stringify(value);
}
