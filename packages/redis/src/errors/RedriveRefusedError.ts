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

/** The dead letter stays as it was: nothing was sent. The message says what to do instead. */
export class RedriveRefusedError extends Error {
  readonly reason: RedriveRefusal;
  /** The group(s) concerned (comma separated). */
  readonly groups: string;

  constructor(reason: RedriveRefusal, groups: string, message: string) {
    super(message);
    this.name = 'RedriveRefusedError';
    this.reason = reason;
    this.groups = groups;
  }
}
