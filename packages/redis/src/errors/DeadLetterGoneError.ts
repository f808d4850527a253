/** What a redriven dead letter became (`{tag}:dead:redriven`). */
export interface RedriveLink {
  readonly at: string;
  readonly mode: 'append' | 'redeliver';
  /** The original entry. */
  readonly entry: string;
  /** The entry appended in its place (mode `append`); '' otherwise. */
  readonly newEntry: string;
  /** The groups it went back to (comma separated). */
  readonly groups: string;
  readonly from: 'original' | 'file';
  /** The original entry's fields, when an `append` deleted it from the stream. */
  readonly original?: Readonly<Record<string, string>>;
}

/**
 * The dead letter is not there: it was redriven or dropped already (or never
 * existed, or was trimmed). A redrive that finds it gone changes nothing.
 */
export class DeadLetterGoneError extends Error {
  readonly handle: string;
  /** What it became, when it was redriven. */
  readonly link: RedriveLink | undefined;

  constructor(handle: string, link?: RedriveLink) {
    const became =
      link === undefined
        ? ''
        : link.mode === 'append'
          ? ` (redriven ${link.at}: new entry ${link.newEntry})`
          : ` (redriven ${link.at}: entry ${link.entry} re-delivered to ${link.groups})`;
    super(`dead letter ${handle}: already redriven or dropped${became}`);
    this.name = 'DeadLetterGoneError';
    this.handle = handle;
    this.link = link;
  }
}
