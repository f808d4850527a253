import { allShardKeys } from '@streamgauge/core';
import type { DeadLetterRecord, DropOutcome } from '@streamgauge/redis';
import { recordAction, type Session } from './session.ts';

/** Deletes the named dead letters for good, each recorded in the ops log. */
export async function dropDeadLetters(session: Session, handles: readonly string[]): Promise<DropOutcome> {
  const outcome = await session.dead.drop(handles);
  for (const letter of outcome.dropped) {
    await recordAction(
      session,
      {
        action: 'dlq.drop',
        stream: letter.stream,
        entry: letter.entry,
        deadLetter: letter.handle,
        group: letter.group,
        error: letter.error,
        deliveries: letter.deliveries,
      },
      'dead letter dropped',
    );
  }
  return outcome;
}

/** Deletes every dead letter of the shards (of one group, with `group`); returns those deleted. */
export async function dropAllDeadLetters(
  session: Session,
  shards: readonly number[],
  group?: string,
): Promise<DeadLetterRecord[]> {
  const dropped: DeadLetterRecord[] = [];
  for (const shard of shards) {
    const gone = await session.dead.dropAll(shard, group === undefined ? {} : { group });
    dropped.push(...gone);
    if (gone.length === 0) continue;
    // One record per shard: a mass drop must not push everything else out of the ops log.
    await recordAction(
      session,
      {
        action: 'dlq.drop',
        all: true,
        stream: allShardKeys(session.config.stream.shards)[shard]?.stream,
        group: group ?? '*',
        count: gone.length,
        first: gone[0]?.handle,
        last: gone[gone.length - 1]?.handle,
      },
      'dead letters dropped',
    );
  }
  return dropped;
}
