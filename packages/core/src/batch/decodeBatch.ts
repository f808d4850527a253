import { BatchError, type BatchRules, type CheckedBatch, checkBatch } from './checkBatch.ts';
import { BodyError, type Item, jsonItems, ndjsonItems } from './items.ts';

/** How a batch is written: one JSON document, or one reading per line. */
export type BatchFormat = 'json' | 'ndjson';

const NDJSON_TYPES = new Set(['application/x-ndjson', 'application/ndjson']);

/**
 * The format a content type names (any case, parameters allowed; a charset
 * must be UTF-8), or why it cannot be taken.
 */
export function formatOf(contentType: string): { format: BatchFormat } | { unsupported: string } {
  const [type = '', ...params] = contentType.toLowerCase().split(';');
  const mediaType = type.trim();
  const charset = params.map((p) => p.trim()).find((p) => p.startsWith('charset='));
  if (charset !== undefined && !/^charset="?utf-?8"?$/.test(charset)) {
    return { unsupported: `${charset} is not supported: send UTF-8` };
  }
  if (mediaType === 'application/json') return { format: 'json' };
  if (NDJSON_TYPES.has(mediaType)) return { format: 'ndjson' };
  return {
    unsupported: `content-type ${JSON.stringify(mediaType)} is not supported: send application/json or application/x-ndjson`,
  };
}

export interface DecodedBatch extends CheckedBatch {
  /** What the body held, item by item (a rejected item's position is its index here). */
  readonly items: Item[];
}

/**
 * Where every batch is read, however it came (HTTP, Pub/Sub, a dead letter's
 * repair file): the body's items, each checked against the reading schema and
 * the sender's scope. Pure: no I/O, no clock (the policy carries the time).
 *
 * @throws BatchError when nothing of the batch can be taken.
 */
export function decodeBatch(body: Uint8Array, format: BatchFormat, rules: BatchRules): DecodedBatch {
  let items: Item[];
  try {
    items = format === 'json' ? jsonItems(body) : ndjsonItems(body);
  } catch (error) {
    if (error instanceof BodyError) throw new BatchError('unreadable', error.message);
    throw error;
  }
  return { items, ...checkBatch(items, rules) };
}
