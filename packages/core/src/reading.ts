import { asciiQuote, parseTimestamp, quote, typeName } from './timestamp.ts';

/**
 * A validated reading, as ingest appends it and every consumer reads it.
 * `timestamp` is event time in epoch milliseconds (UTC).
 */
export interface Reading {
  node_id: string;
  timestamp: number;
  flow_rate?: number;
  pressure?: number;
  pressure_1?: number;
  pressure_2?: number;
  temperature?: number;
  volume?: number;
  data_quality_score?: number;
  district_id?: string;
  node_name?: string;
  node_type?: string;
  is_interpolated?: boolean;
  source_file?: string;
}

export type Measurement = 'flow_rate' | 'pressure' | 'pressure_1' | 'pressure_2' | 'temperature' | 'volume';

/** The fields that make a reading a measurement (`data_quality_score` does not). */
export const MEASUREMENTS: readonly Measurement[] = [
  'flow_rate',
  'pressure',
  'pressure_1',
  'pressure_2',
  'temperature',
  'volume',
];

const UNITS: Record<Measurement, string> = {
  flow_rate: 'L/s',
  pressure: 'bar',
  pressure_1: 'bar',
  pressure_2: 'bar',
  temperature: '°C',
  volume: 'm³',
};

export const METADATA_FIELDS = ['district_id', 'node_name', 'node_type', 'source_file'] as const;

/** The node types the dashboard knows; `node_type` stays a free string. */
export const KNOWN_NODE_TYPES = ['distribution', 'storage', 'monitoring', 'interconnection', 'zone'] as const;

export const MAX_NODE_ID_LENGTH = 128;
export const MAX_TEXT_LENGTH = 256;

/**
 * Node ids become part of Redis keys, log lines and dashboard labels, so they
 * keep to an alphabet that reads the same everywhere: ASCII letters, digits,
 * `.`, `_` and `-`, starting with a letter or digit. Nothing invisible or
 * look-alike (`odd` and `odd\u200b`), nothing a key pattern or a Redis
 * Cluster hash tag would read (`*?[]`, `:`, braces), no quotes.
 */
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function isNodeId(id: string): boolean {
  return id.length <= MAX_NODE_ID_LENGTH && NODE_ID.test(id);
}

/** The node id rule in words, as rejections name it. */
export const NODE_ID_RULE = `1 to ${MAX_NODE_ID_LENGTH} ASCII letters, digits, '.', '_' or '-', starting with a letter or digit`;

export interface ValidationPolicy {
  /** The clock's reading when the batch arrived. */
  readonly nowMs: number;
  /** How far in the future an event time may lie (logger clocks drift). */
  readonly maxFutureMs: number;
}

export type CheckedReading = { ok: true; reading: Reading } | { ok: false; error: string };

/**
 * Validates one raw reading (parsed JSON) against DATA_MODEL.md. The error
 * names the field, the value and what was expected. Unknown fields are ignored.
 */
export function checkReading(raw: unknown, policy: ValidationPolicy): CheckedReading {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, error: `reading: expected a JSON object, got ${typeName(raw)}` };
  }
  const input = raw as Record<string, unknown>;

  const nodeId = input.node_id;
  if (typeof nodeId !== 'string') {
    if (nodeId === undefined || nodeId === null) return bad('node_id: is required');
    if (typeof nodeId === 'number') {
      return bad(`node_id: expected a string, got number ${nodeId} (send "${nodeId}")`);
    }
    return bad(`node_id: expected a string, got ${typeName(nodeId)}`);
  }
  if (nodeId.length === 0) return bad('node_id: must not be empty');
  if (nodeId.length > MAX_NODE_ID_LENGTH) {
    return bad(`node_id: longer than ${MAX_NODE_ID_LENGTH} characters`);
  }
  if (!NODE_ID.test(nodeId))
    return bad(`node_id: ${asciiQuote(nodeId)} is not a node id: use ${NODE_ID_RULE}`);

  const ts = parseTimestamp(input.timestamp);
  if (!ts.ok) return bad(`timestamp: ${ts.error}`);
  if (ts.ms > policy.nowMs + policy.maxFutureMs) {
    const ahead = Math.round((ts.ms - policy.nowMs) / 1000);
    return bad(
      `timestamp: ${new Date(ts.ms).toISOString()} is ${ahead} s in the future ` +
        `(at most ${policy.maxFutureMs / 1000} s allowed; check the logger's clock)`,
    );
  }

  const reading: Reading = { node_id: nodeId, timestamp: ts.ms };
  let measured = 0;
  for (const field of MEASUREMENTS) {
    const value = input[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      return bad(`${field}: expected a finite number (${UNITS[field]}), got ${describe(value)}`);
    }
    reading[field] = value;
    measured++;
  }
  if (measured === 0) {
    return bad(`reading: no measurement; expected at least one of ${MEASUREMENTS.join(', ')}`);
  }
  if (reading.pressure === undefined) {
    const p1 = reading.pressure_1;
    const p2 = reading.pressure_2;
    // Halving first cannot overflow; for finite inputs it rounds the same.
    if (p1 !== undefined && p2 !== undefined) reading.pressure = p1 / 2 + p2 / 2;
    else if (p1 !== undefined) reading.pressure = p1;
    else if (p2 !== undefined) reading.pressure = p2;
  }

  const quality = input.data_quality_score;
  if (quality !== undefined && quality !== null) {
    if (typeof quality !== 'number' || !Number.isFinite(quality) || quality < 0 || quality > 1) {
      return bad(`data_quality_score: expected a number from 0 to 1, got ${describe(quality)}`);
    }
    reading.data_quality_score = quality;
  }

  for (const field of METADATA_FIELDS) {
    const value = input[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') {
      return bad(`${field}: expected a string, got ${describe(value)}`);
    }
    if (value.length > MAX_TEXT_LENGTH) {
      return bad(`${field}: longer than ${MAX_TEXT_LENGTH} characters`);
    }
    if (!value.isWellFormed()) return bad(`${field}: contains an unpaired UTF-16 surrogate`);
    reading[field] = value;
  }

  const interpolated = input.is_interpolated;
  if (interpolated !== undefined && interpolated !== null) {
    if (typeof interpolated !== 'boolean') {
      return bad(`is_interpolated: expected true or false, got ${describe(interpolated)}`);
    }
    reading.is_interpolated = interpolated;
  }
  return { ok: true, reading };
}

function bad(error: string): CheckedReading {
  return { ok: false, error };
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `string ${quote(value)}`;
  if (typeof value === 'number') return String(value);
  return typeName(value);
}
