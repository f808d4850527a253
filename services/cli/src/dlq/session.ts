import type { Config } from '@streamgauge/core';
import { type DeadLetters, type OpsAction, OpsLog, type RedisClient } from '@streamgauge/redis';
import type { Logger } from 'pino';

/** What the dlq use-cases work with: one command's connection, configuration and logger. */
export interface Session {
  readonly dead: DeadLetters;
  readonly config: Config;
  readonly redis: RedisClient;
  readonly logger: Logger;
}

/** Every redrive and drop is kept in the ops log, and logged as it happens. */
export async function recordAction(session: Session, action: OpsAction, message: string): Promise<void> {
  await new OpsLog(session.redis).record(action);
  session.logger.info(action, message);
}
