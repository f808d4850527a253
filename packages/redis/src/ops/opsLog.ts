import { hostname, userInfo } from 'node:os';
import { fieldRecord, opsKeys } from '@streamgauge/core';
import type { RedisClient } from '../connection.ts';

/** Actions kept in the ops log (approximately): enough for months of hands-on work. */
const KEPT = 10_000;

/** One action an operator took, as recorded in the ops log. */
export interface OpsAction {
  /** What was done: `replay`, `rebuild`, `dlq.redrive`, `dlq.drop`, ... */
  readonly action: string;
  /** What it touched and how it went: flat, string-valued once recorded. */
  readonly [detail: string]: string | number | boolean | undefined;
}

export interface OpsRecord extends Record<string, string> {
  readonly id: string;
  readonly action: string;
  readonly by: string;
  readonly at: string;
}

/**
 * The ops log (`ops:log`, a capped stream): every command that changes what
 * the pipeline holds or delivers records itself here, with who ran it and
 * from where, so "what happened to this entry?" has an answer after the fact.
 */
export class OpsLog {
  readonly #redis: RedisClient;
  readonly #by: string;

  constructor(redis: RedisClient, by = defaultActor()) {
    this.#redis = redis;
    this.#by = by;
  }

  /** Appends the action; returns its entry id. */
  async record(action: OpsAction, at: number = Date.now()): Promise<string> {
    const fields: string[] = ['action', action.action, 'by', this.#by, 'at', new Date(at).toISOString()];
    for (const [name, value] of Object.entries(action)) {
      if (name === 'action' || value === undefined) continue;
      fields.push(name, String(value));
    }
    return (await this.#redis.xadd(opsKeys.log, 'MAXLEN', '~', KEPT, '*', ...fields)) as string;
  }

  /** The newest `count` actions, newest first. */
  async recent(count = 100): Promise<OpsRecord[]> {
    const rows = (await this.#redis.xrevrange(opsKeys.log, '+', '-', 'COUNT', count)) as [string, string[]][];
    return rows.map(([id, flat]) => ({ id, ...fieldRecord(flat) }) as OpsRecord);
  }
}

function defaultActor(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container): keep the environment's.
  }
  return `${user}@${hostname()}`;
}
