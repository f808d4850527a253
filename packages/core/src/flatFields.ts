/**
 * A Redis reply's flat `[name, value, name, value, …]` list (a stream entry's
 * fields, XINFO, …) as a map by name. A trailing name without a value is
 * ignored.
 */
export function fieldMap<V>(flat: readonly V[]): Map<string, V> {
  const fields = new Map<string, V>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), flat[i + 1] as V);
  return fields;
}

/** The same, as a plain record (for JSON or spreading); built directly, as it is on the dashboard's refresh path. */
export function fieldRecord<V>(flat: readonly V[]): Record<string, V> {
  const fields: Record<string, V> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[String(flat[i])] = flat[i + 1] as V;
  return fields;
}
