import type { Reading } from './reading.ts';

/**
 * The unit of the readings log is a batch: one stream entry carries the new
 * readings of one request for one shard. One XADD per reading caps a Node
 * producer well below the throughput goal; a batch entry costs one XADD per
 * request while every reading inside keeps its own identity.
 *
 * Entry fields: `n` (count), `src` (the gateway that sent it), `readings`
 * (a JSON array of readings, `timestamp` in epoch ms), and `lane` on an
 * entry the aggregator moved in from the shard's catch-up lane.
 */
export interface BatchEntry {
  readonly id: string;
  readonly source: string;
  readonly readings: Reading[];
  /** Moved into the stream from the shard's catch-up lane (field `lane`). */
  readonly fromLane?: true;
}

export const ENTRY_FIELDS = { count: 'n', source: 'src', readings: 'readings', lane: 'lane' } as const;

export function encodeReading(reading: Reading): string {
  return JSON.stringify(reading);
}

/** Decodes an entry's flat field list as XREAD returns it. Throws on a malformed entry. */
export function decodeEntry(id: string, fields: readonly string[]): BatchEntry {
  let source = '';
  let payload: string | undefined;
  let fromLane = false;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    if (name === ENTRY_FIELDS.readings) payload = fields[i + 1];
    else if (name === ENTRY_FIELDS.source) source = fields[i + 1] ?? '';
    else if (name === ENTRY_FIELDS.lane) fromLane = true;
  }
  if (payload === undefined) throw new Error(`stream entry ${id} has no "readings" field`);
  const readings = JSON.parse(payload) as unknown;
  if (!Array.isArray(readings)) throw new Error(`stream entry ${id}: "readings" is not a JSON array`);
  return fromLane
    ? { id, source, readings: readings as Reading[], fromLane: true }
    : { id, source, readings: readings as Reading[] };
}

/** Orders stream entry ids (`<ms>-<seq>`) as Redis does. */
export function compareEntryIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  return Number(am) - Number(bm) || Number(as) - Number(bs);
}
