import { type Logger, pino } from 'pino';

/** JSON logs on stdout, one line an event: what log shippers expect. */
export function createLogger(level: string, service: string): Logger {
  return pino({ level, base: { service } });
}
