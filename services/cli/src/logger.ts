import { type Logger, pino } from 'pino';

/** JSON logs on stdout, one line an event: what log shippers expect. */
export function createLogger(level: string, service: string): Logger {
  return pino({ level, base: { service } });
}

/**
 * For a command whose result is its stdout: logs go to stderr, warnings and
 * errors only unless LOG_LEVEL says otherwise.
 */
export function commandLogger(service: string): Logger {
  return pino({ level: process.env.LOG_LEVEL ?? 'warn', base: { service } }, pino.destination(2));
}
