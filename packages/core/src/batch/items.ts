/**
 * Turns a body (an HTTP request's, a Pub/Sub message's, a file's) into the
 * list of raw items it holds. Only a body that cannot be read at all is an
 * error here; a bad item is reported per item.
 */
export type Item = { readonly raw: unknown } | { readonly error: string };

export class BodyError extends Error {
  override readonly name = 'BodyError';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decode(body: Uint8Array): string {
  if (body.length === 0) {
    throw new BodyError('the body is empty; send a reading, an array of readings or {"readings": [...]}');
  }
  try {
    return utf8.decode(body);
  } catch {
    throw new BodyError('the body is not valid UTF-8');
  }
}

/** `application/json`: one reading, an array of readings, or `{"readings": [...]}`. */
export function jsonItems(body: Uint8Array): Item[] {
  const text = decode(body);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new BodyError(`the body is not valid JSON: ${(error as Error).message}`);
  }
  if (Array.isArray(parsed)) return parsed.map((raw) => ({ raw }));
  if (typeof parsed === 'object' && parsed !== null) {
    if (Object.hasOwn(parsed, 'readings')) {
      const readings = (parsed as { readings: unknown }).readings;
      if (!Array.isArray(readings)) throw new BodyError('"readings": expected an array of readings');
      return readings.map((raw) => ({ raw }));
    }
    return [{ raw: parsed }];
  }
  throw new BodyError('expected a reading, an array of readings or {"readings": [...]}');
}

/** `application/x-ndjson`: one reading per line; blank lines are skipped. */
export function ndjsonItems(body: Uint8Array): Item[] {
  const lines = decode(body).split('\n');
  const items: Item[] = [];
  let parsedAny = false;
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    try {
      const raw: unknown = JSON.parse(line);
      parsedAny = true;
      items.push(
        Array.isArray(raw)
          ? { error: `line ${i + 1}: expected one reading per line, got an array` }
          : { raw },
      );
    } catch (error) {
      items.push({ error: `line ${i + 1}: not valid JSON (${(error as Error).message})` });
    }
  }
  if (items.length === 0) throw new BodyError('the body has no readings (only blank lines)');
  if (!parsedAny) throw new BodyError('no line of the body is valid JSON');
  return items;
}
