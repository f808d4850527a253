/**
 * Why a dead letter cannot be redriven as asked (see redriveDeadLetter.lua):
 * - `pending`: a group still has the entry pending (it may yet apply it);
 * - `unread`: a group has not read the entry yet;
 * - `content`: a new entry is needed and no valid readings were given;
 * - `partial`: a group that counts readings applied the entry already, so
 *   repaired readings cannot go back as a new entry;
 * - `trimmed`: as `partial`, and the original is no longer in the stream;
 * - `nogroup`: the groups that dead-lettered it no longer exist;
 * - `stream`: the dead letter names another stream.
 */
export type RedriveRefusal = 'pending' | 'unread' | 'content' | 'partial' | 'trimmed' | 'nogroup' | 'stream';

/** The dead letter a refusal is about. */
export interface RefusedLetter {
  readonly handle: string;
  readonly shard: number;
  /** The shard's stream, and the entry given up on. */
  readonly stream: string;
  readonly entry: string;
  /** The group whose dead letter it is. */
  readonly group: string;
}

/**
 * The dead letter stays as it was: nothing was sent. The message states what
 * stands in the way, not what to do about it: that depends on the caller's
 * means (a command words it from `reason` and the facts).
 */
export class RedriveRefusedError extends Error {
  readonly reason: RedriveRefusal;
  /**
   * The group(s) concerned (comma separated): the one not done with the entry
   * (`pending`, `unread`), or those that applied it (`content`, `partial`,
   * `trimmed`, `nogroup`); for `stream`, the stream the dead letter names.
   */
  readonly groups: string;
  readonly handle: string;
  readonly shard: number;
  readonly stream: string;
  readonly entry: string;
  readonly group: string;

  constructor(reason: RedriveRefusal, groups: string, letter: RefusedLetter) {
    super(refusalOf(reason, groups, letter));
    this.name = 'RedriveRefusedError';
    this.reason = reason;
    this.groups = groups;
    this.handle = letter.handle;
    this.shard = letter.shard;
    this.stream = letter.stream;
    this.entry = letter.entry;
    this.group = letter.group;
  }
}

function refusalOf(reason: RedriveRefusal, groups: string, letter: RefusedLetter): string {
  const { entry, stream, handle } = letter;
  const applied = groups.replaceAll(',', ', ');
  const messages: Record<RedriveRefusal, string> = {
    pending: `entry ${entry} of ${stream} is still pending in group ${groups} (it is being retried, and may yet be applied or dead-lettered)`,
    unread: `group ${groups} has not read entry ${entry} of ${stream} yet`,
    content: `dead letter ${handle}: a new entry is needed, and there are no valid readings to put in it`,
    partial: `dead letter ${handle}: group ${applied} applied entry ${entry} already and counts every reading it is given, so repaired readings cannot go back as a new entry (they would be counted twice)`,
    trimmed: `dead letter ${handle}: group ${applied} applied entry ${entry} already, so only the original could be re-delivered, to group ${letter.group} only; but it is no longer in ${stream} (trimmed)`,
    nogroup: `dead letter ${handle}: the groups that dead-lettered entry ${entry} no longer exist on ${stream}`,
    stream: `dead letter ${handle} names stream ${groups}, which is not shard ${letter.shard}'s stream`,
  };
  // The script may know a reason this version does not.
  return messages[reason] ?? `dead letter ${handle}: refused (${reason} ${groups})`;
}
