/**
 * Fuzz test for POST /v1/readings: at least 10,000 generated hostile payloads
 * (wrong types, numbers as strings, NaN/Infinity, huge numbers, deep nesting,
 * invalid UTF-8, empty bodies, a 10 MB body, node ids outside the alphabet,
 * nodes another district or gateway owns, ...) must each get a 4xx, while
 * the service stays up and keeps accepting valid readings, and nothing but
 * those valid readings reaches the `readings` stream.
 *
 * Deterministic: every payload is generated from (seed, index). Re-run a
 * failure with FUZZ_SEED=<seed>; the failure report names the index.
 */
import { decodeEntry, type GatewayLimits, MEASUREMENTS, seededRandom, systemClock } from '@streamgauge/core';
import { GatewayRegistry, NodeOwners } from '@streamgauge/redis';
import { scanKeys, type TestRedis, testRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken, startTestIngest, type TestIngest, UNLIMITED } from './harness.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_2024) >>> 0;
const HOSTILE_COUNT = 10_000;
const ROUND_SIZE = 1_000;
const CONCURRENCY = 32;
const MAX_READINGS = 10_000;
const DAY_MS = 86_400_000;
const GATEWAY = 'fuzz';
const DISTRICT = 'FUZZ';
const VALID_NODE = 'FUZZ-OK';
const SCOPED_NODE = 'FUZZ-N1';
/** Nodes of another district: the fuzz gateway's district token may not write them. */
const FOREIGN_NODES = ['OTHER-1', 'OTHER-2'] as const;

// ---------------------------------------------------------------- randomness

type Rng = () => number;

/** The generator of payload `index`: reproducible one payload at a time. */
function rngFor(index: number): Rng {
  return seededRandom((SEED ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

function int(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)] as T;
}

/** Log-uniform integer in [lo, hi]: small and huge sizes both get drawn. */
function logInt(rng: Rng, lo: number, hi: number): number {
  return Math.min(hi, Math.floor(lo * (hi / lo) ** rng()));
}

// ---------------------------------------------------------- JSON with literals

const RAW = Symbol('raw JSON text');
interface RawJson {
  readonly [RAW]: string;
}

/** A value serialized verbatim, for what JSON.stringify cannot write (1e400, deep nesting). */
function raw(text: string): RawJson {
  return { [RAW]: text };
}

function toJson(value: unknown): string {
  if (typeof value === 'object' && value !== null) {
    if (RAW in value) return (value as RawJson)[RAW];
    if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
    const members = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

type Fields = Record<string, unknown>;

// ------------------------------------------------------------------ payloads

interface Payload {
  readonly category: string;
  readonly body: string | Buffer;
  /** null: no content-type header. */
  readonly contentType: string | null;
  /** undefined: the fuzz gateway's token; null: no header; else the exact header. */
  readonly authorization?: string | null;
  /** The statuses that are right for this payload (all 4xx). */
  readonly expect: readonly number[];
  /** For 422: how many items the body holds (each must be rejected). */
  readonly items?: number;
}

interface Context {
  readonly index: number;
  readonly now: number;
  readonly nodesToken: string;
  readonly revokedToken: string;
}

type Generator = (rng: Rng, ctx: Context) => Payload;

const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'Application/JSON'] as const;
const NDJSON_TYPES = ['application/x-ndjson', 'application/ndjson'] as const;

/** A past event time, as epoch ms or ISO-8601 with a zone. */
function pastTimestamp(rng: Rng, now: number): number | string {
  const ms = now - int(rng, 1_000, 90 * DAY_MS);
  const r = rng();
  if (r < 0.5) return ms;
  const iso = new Date(ms).toISOString();
  return r < 0.8 ? iso : iso.replace('Z', '+00:00');
}

/** A reading that would be accepted as is: hostile generators break it. */
function validFields(rng: Rng, ctx: Context): Fields {
  const fields: Fields = {
    node_id: `FUZZ-H${ctx.index}`,
    timestamp: pastTimestamp(rng, ctx.now),
  };
  const count = int(rng, 1, 3);
  for (let i = 0; i < count; i++) fields[pick(rng, MEASUREMENTS)] = Math.round(rng() * 1e6) / 1e3;
  if (rng() < 0.3) fields.data_quality_score = Math.round(rng() * 100) / 100;
  if (rng() < 0.3) fields.node_type = pick(rng, ['distribution', 'storage', 'monitoring']);
  if (rng() < 0.2) fields.node_name = `Fuzz node ${ctx.index}`;
  return fields;
}

/** Serializes items (JSON texts) as a single reading, an array, {"readings": [...]} or NDJSON. */
function wrapItems(
  rng: Rng,
  category: string,
  items: readonly string[],
  modes: readonly ('single' | 'array' | 'readings' | 'ndjson')[] = ['single', 'array', 'readings', 'ndjson'],
): Payload {
  const usable = modes.filter((m) => m !== 'single' || items.length === 1);
  const mode = pick(rng, usable);
  const expect = [422];
  switch (mode) {
    case 'single':
      return { category, body: items[0] as string, contentType: pick(rng, JSON_TYPES), expect, items: 1 };
    case 'array':
      return {
        category,
        body: `[${items.join(',')}]`,
        contentType: pick(rng, JSON_TYPES),
        expect,
        items: items.length,
      };
    case 'readings':
      return {
        category,
        body: `{"readings":[${items.join(',')}]}`,
        contentType: pick(rng, JSON_TYPES),
        expect,
        items: items.length,
      };
    case 'ndjson': {
      const sep = pick(rng, ['\n', '\r\n', '\n\n']);
      return {
        category,
        body: items.join(sep) + (rng() < 0.5 ? sep : ''),
        contentType: pick(rng, NDJSON_TYPES),
        expect,
        items: items.length,
      };
    }
  }
}

/** One reading made invalid in a way DATA_MODEL.md rejects. */
type Breaker = (rng: Rng, ctx: Context) => string;

const WRONG_TYPES: readonly unknown[] = [{}, { value: 1 }, [], [1], ['x'], true, false];

const breakNodeIdType: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  const r = rng();
  if (r < 0.1) delete fields.node_id;
  else if (r < 0.2) fields.node_id = null;
  else
    fields.node_id = pick(rng, [
      ctx.index,
      -ctx.index - 0.5,
      215542,
      raw('1e400'),
      raw('-1e400'),
      { id: `FUZZ-${ctx.index}` },
      [`FUZZ-${ctx.index}`],
      ...WRONG_TYPES,
    ]);
  return toJson(fields);
};

const BAD_ID_CHARS = [
  ' ',
  '\t',
  '\n',
  '\r',
  '\u000b',
  '\f',
  '\u00a0',
  '\u1680',
  '\u2000',
  '\u2028',
  '\u2029',
  '\u202f',
  '\u3000',
  '\ufeff',
  '{',
  '}',
  '\u0000',
  '\u0001',
  '\u001b',
  '\u007f',
  '\u0085',
  '\u009f',
] as const;

const breakNodeIdText: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  const r = rng();
  if (r < 0.1) fields.node_id = '';
  else if (r < 0.3) fields.node_id = pick(rng, ['N', 'é', '7', '-']).repeat(int(rng, 129, 5_000));
  else {
    const base = `FUZZ-${ctx.index}`;
    const at = int(rng, 0, base.length);
    const bad = Array.from({ length: int(rng, 1, 3) }, () => pick(rng, BAD_ID_CHARS)).join('');
    fields.node_id = base.slice(0, at) + bad + base.slice(at);
  }
  return toJson(fields);
};

/** Characters outside the node id alphabet that pass as text: invisible, look-alike, pattern and key syntax. */
const UNSAFE_ID_CHARS = [
  '\u200b', // zero-width space
  '\u200d',
  '\u2060',
  '\u202e', // right-to-left override
  '\u061c',
  ':',
  '*',
  '?',
  '[',
  ']',
  '"',
  "'",
  '`',
  '/',
  '\\',
  '#',
  '%',
  'é',
  'ß',
  '\u0410', // Cyrillic A, a look-alike
  '😀',
] as const;

const breakNodeIdAlphabet: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  const base = `FUZZ-A${ctx.index}`;
  const r = rng();
  if (r < 0.15) fields.node_id = pick(rng, ['-', '.', '_']) + base;
  else {
    const at = int(rng, 0, base.length);
    const bad = Array.from({ length: int(rng, 1, 3) }, () => pick(rng, UNSAFE_ID_CHARS)).join('');
    fields.node_id = base.slice(0, at) + bad + base.slice(at);
  }
  return toJson(fields);
};

/** A valid reading of a node that is not the fuzz district gateway's: another district's, or a node-scoped gateway's. */
const notOwnNode: Breaker = (rng, ctx) =>
  toJson({ ...validFields(rng, ctx), node_id: pick(rng, [...FOREIGN_NODES, SCOPED_NODE]) });

function badTimestamp(rng: Rng, now: number): unknown {
  const ms = now - int(rng, 1_000, 30 * DAY_MS);
  const iso = new Date(ms).toISOString();
  const year = iso.slice(0, 4);
  const kind = int(rng, 0, 11);
  switch (kind) {
    case 0: // wrong types
      return pick(rng, [true, false, {}, { $date: iso }, [ms], [iso], { seconds: ms / 1000 }]);
    case 1: // fractional milliseconds
      return ms + 0.25 + rng() * 0.5;
    case 2: // seconds (or other too-small numbers)
      return pick(rng, [Math.floor(ms / 1000), 0, -1, -ms, 99_999_999_999, 1.7e9, raw('-0')]);
    case 3: // non-finite and huge
      return pick(rng, [raw('1e400'), raw('-1e400'), raw('1E999'), 1e20, 8.64e15 + 1, raw('9'.repeat(400))]);
    case 4: // ISO without a zone
      return pick(rng, [
        iso.slice(0, -1),
        iso.slice(0, 19),
        iso.slice(0, 19).replace('T', ' '),
        iso.slice(0, 10),
      ]);
    case 5: // not a calendar date
      return pick(rng, [
        '2024-02-30T00:00:00Z',
        '2023-02-29T12:00:00Z',
        '2024-04-31T00:00:00Z',
        '2024-06-31T08:00:00+02:00',
        `${year}-13-01T00:00:00Z`,
        `${year}-00-10T00:00:00Z`,
        `${year}-01-00T00:00:00Z`,
        `${year}-01-32T00:00:00Z`,
      ]);
    case 6: // not a time of day / zone
      return pick(rng, [
        `${iso.slice(0, 11)}24:00:00Z`,
        `${iso.slice(0, 11)}25:00:00Z`,
        `${iso.slice(0, 11)}12:60:00Z`,
        `${iso.slice(0, 11)}12:00:60Z`,
        `${iso.slice(0, 11)}12:00:61Z`,
        `${iso.slice(0, 19)}+24:00`,
        `${iso.slice(0, 19)}-25:00`,
        `${iso.slice(0, 19)}+05:60`,
      ]);
    case 7: // numbers as strings, free text
      return pick(rng, [String(ms), String(Math.floor(ms / 1000)), 'yesterday', 'now', '', ' ', 'null']);
    case 8: // malformed ISO
      return pick(rng, [
        `${iso}Z`,
        iso.replace('T', 'X'),
        iso.slice(2),
        `２０２４${iso.slice(4)}`,
        ` ${iso}`,
        `${iso} `,
        iso.replace('Z', '+0100x'),
      ]);
    case 9: // the future: one day and more ahead
      return pick(rng, [
        now + DAY_MS + int(rng, 0, 10 * DAY_MS),
        new Date(now + DAY_MS + int(rng, 0, 10 * DAY_MS)).toISOString(),
        '9999-12-31T23:59:59Z',
      ]);
    case 10: // before 1973
      return pick(rng, [
        '1970-01-01T00:00:00Z',
        '1972-12-31T23:59:59Z',
        '1900-06-01T00:00:00Z',
        '0001-01-01T00:00:00Z',
      ]);
    default: // absent
      return pick(rng, [undefined, null]);
  }
}

const breakTimestamp: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  fields.timestamp = badTimestamp(rng, ctx.now);
  return toJson(fields);
};

const BAD_MEASUREMENTS: readonly unknown[] = [
  '12',
  '12.5',
  '-3',
  '1e3',
  ' 1',
  '',
  'NaN',
  'Infinity',
  '-Infinity',
  raw('1e400'),
  raw('-1e400'),
  raw('1E999'),
  raw('-0.1e500'),
  ...WRONG_TYPES,
];

const breakMeasurement: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  fields[pick(rng, MEASUREMENTS)] = pick(rng, BAD_MEASUREMENTS);
  return toJson(fields);
};

const numbersAsStrings: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  const r = rng();
  if (r < 0.6) {
    const field = pick(rng, MEASUREMENTS);
    fields[field] = String(Math.round(rng() * 1e5) / 100);
  } else if (r < 0.8) {
    fields.timestamp = String(ctx.now - int(rng, 1_000, DAY_MS));
  } else {
    fields.data_quality_score = String(Math.round(rng() * 100) / 100);
  }
  return toJson(fields);
};

const nonFinite: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  const literal = raw(pick(rng, ['1e400', '-1e400', '1e309', '-1.8e308', '123456789e999']));
  fields[pick(rng, [...MEASUREMENTS, 'timestamp', 'data_quality_score', 'node_id'])] = literal;
  return toJson(fields);
};

const noMeasurement: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  for (const m of MEASUREMENTS) delete fields[m];
  const r = rng();
  if (r < 0.3) {
    for (const m of MEASUREMENTS) if (rng() < 0.5) fields[m] = null;
  } else if (r < 0.5) {
    fields.data_quality_score = 0.9;
  } else if (r < 0.8) {
    // Near-miss names are unknown fields, not measurements.
    const nearMiss = ['flow', 'Flow_Rate', 'flow_rate ', 'flowrate', 'pressure1', 'temp', 'FLOW_RATE'];
    fields[pick(rng, nearMiss)] = 12;
  }
  return toJson(fields);
};

const badQuality: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  fields.data_quality_score = pick(rng, [
    -0.01,
    -1e-9,
    1.0000001,
    1.01,
    2,
    100,
    -1,
    1e300,
    raw('1e400'),
    raw('-1e400'),
    '0.5',
    '1',
    ...WRONG_TYPES,
  ]);
  return toJson(fields);
};

const badMetadata: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  if (rng() < 0.25) {
    fields.is_interpolated = pick(rng, ['true', 'false', 1, 0, 'yes', {}, []]);
  } else {
    const field = pick(rng, ['district_id', 'node_name', 'node_type', 'source_file']);
    fields[field] = pick(rng, [
      1,
      0,
      -1.5,
      true,
      {},
      [],
      ['x'],
      raw('1e400'),
      'm'.repeat(int(rng, 257, 4_000)),
    ]);
  }
  return toJson(fields);
};

const outOfScope: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  fields.district_id = pick(rng, ['OTHER', 'fuzz', 'FUZZ2', 'FUZ', '', 'Selargius']);
  return toJson(fields);
};

const duplicateKeys: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  const good = toJson(fields).slice(0, -1);
  // JSON.parse keeps the last of duplicate keys: the bad value wins.
  const field = pick(rng, [...MEASUREMENTS, 'node_id', 'timestamp']);
  const bad = field === 'node_id' ? '5' : field === 'timestamp' ? 'true' : '"1"';
  return `${good},${JSON.stringify(field)}:${bad}}`;
};

const protoShaped: Breaker = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  const whole = toJson(fields);
  const { node_id, timestamp, ...rest } = fields;
  const measurements = toJson(rest);
  return pick(rng, [
    `{"__proto__":${whole}}`,
    `{"constructor":{"prototype":${whole}}}`,
    `{"prototype":${whole}}`,
    `{"__proto__":{"readings":[${whole}]}}`,
    `{"node_id":${toJson(node_id)},"timestamp":${toJson(timestamp)},"__proto__":${measurements}}`,
    `{"__proto__":{"node_id":${toJson(node_id)}},"timestamp":${toJson(timestamp)},"flow_rate":1}`,
    `{"__proto__":{"timestamp":${toJson(timestamp)}},"node_id":${toJson(node_id)},"flow_rate":1}`,
    `{"constructor":{"prototype":{"node_id":"x"}},"timestamp":${toJson(timestamp)},"flow_rate":1}`,
    `{"toString":1,"valueOf":"x","hasOwnProperty":null,"__defineGetter__":{},"flow_rate":1}`,
  ]);
};

const ITEM_BREAKERS: readonly Breaker[] = [
  breakNodeIdType,
  breakNodeIdText,
  breakTimestamp,
  breakMeasurement,
  numbersAsStrings,
  nonFinite,
  noMeasurement,
  badQuality,
  badMetadata,
  outOfScope,
  duplicateKeys,
  protoShaped,
  breakNodeIdAlphabet,
  notOwnNode,
  (rng) => pick(rng, ['null', '42', '"x"', 'true', '[]', '[1,2]', '{}', '-0', '""', '"readings"']),
];

/** A generator sending one broken reading (or a few) in every framing. */
function readings(category: string, breaker: Breaker): Generator {
  return (rng, ctx) => {
    const count = rng() < 0.7 ? 1 : int(rng, 2, 5);
    const items = Array.from({ length: count }, () => breaker(rng, ctx));
    return wrapItems(rng, category, items);
  };
}

function deepArray(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

function deepObject(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

function deepMixed(depth: number): string {
  return `${'[{"a":'.repeat(depth)}0${'}]'.repeat(depth)}`;
}

const deepNesting: Generator = (rng, ctx) => {
  const depth = logInt(rng, 1_000, 100_000);
  const deep = pick(rng, [deepArray, deepObject, deepMixed])(depth);
  const category = 'deep nesting';
  const kind = int(rng, 0, 5);
  if (kind === 0)
    return { category, body: deep, contentType: pick(rng, JSON_TYPES), expect: [422], items: 1 };
  if (kind === 1) {
    // Unbalanced: never closed.
    const open = pick(rng, ['[', '{"a":', '[{"a":']).repeat(depth);
    return { category, body: open, contentType: pick(rng, [...JSON_TYPES, ...NDJSON_TYPES]), expect: [400] };
  }
  if (kind === 2) return wrapItems(rng, category, [deep], ['array', 'readings', 'ndjson']);
  // Inside a field of an otherwise valid reading, or in an unknown field of an invalid one.
  const fields = validFields(rng, ctx);
  if (kind === 5) {
    delete fields.timestamp;
    fields.extra = raw(deep);
  } else {
    fields[
      pick(rng, ['node_id', 'timestamp', 'flow_rate', 'pressure', 'data_quality_score', 'district_id'])
    ] = raw(deep);
  }
  return wrapItems(rng, category, [toJson(fields)]);
};

/** Invalid UTF-8 sequences: a lenient decoder would make them U+FFFD and accept the reading. */
const BAD_UTF8: readonly (readonly number[])[] = [
  [0xff],
  [0xfe],
  [0x80],
  [0xbf],
  [0xc3, 0x28],
  [0xa0, 0xa1],
  [0xe2, 0x28, 0xa1],
  [0xe2, 0x82, 0x28],
  [0xf0, 0x28, 0x8c, 0xbc],
  [0xf0, 0x90, 0x28, 0xbc],
  [0xc0, 0xaf], // overlong '/'
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf], // overlong
  [0xf0, 0x80, 0x80, 0xaf], // overlong
  [0xed, 0xa0, 0x80], // lone high surrogate U+D800
  [0xed, 0xbf, 0xbf], // lone low surrogate U+DFFF
  [0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80], // CESU-8 surrogate pair
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
  [0xfc, 0x84, 0x80, 0x80, 0x80, 0x80], // 6-byte form
  [0xe2, 0x82], // truncated sequence
  [0xf0, 0x9f, 0x98], // truncated emoji
];

const invalidUtf8: Generator = (rng, ctx) => {
  const lines = Array.from({ length: rng() < 0.6 ? 1 : int(rng, 2, 4) }, (_, i) =>
    toJson({ ...validFields(rng, ctx), node_id: `FUZZ-U${ctx.index}-${i}` }),
  );
  const ndjson = rng() < 0.4;
  const text = ndjson ? lines.join('\n') : lines.length === 1 ? (lines[0] as string) : `[${lines.join(',')}]`;
  const bytes = Buffer.from(text, 'utf8');
  const bad = Buffer.from(pick(rng, BAD_UTF8));
  let at: number;
  const where = rng();
  if (where < 0.5) {
    // Inside the node id, where it would alter the reading's identity.
    at = bytes.indexOf('FUZZ-U') + int(rng, 0, 6);
  } else if (where < 0.7) at = bytes.length;
  else if (where < 0.8) at = 0;
  else at = int(rng, 0, bytes.length);
  const body = Buffer.concat([bytes.subarray(0, at), bad, bytes.subarray(at)]);
  return {
    category: 'invalid UTF-8',
    body,
    contentType: ndjson ? pick(rng, NDJSON_TYPES) : pick(rng, JSON_TYPES),
    expect: [400],
  };
};

function mustNotParse(text: string): boolean {
  try {
    JSON.parse(text);
    return false;
  } catch {
    return true;
  }
}

const truncated: Generator = (rng, ctx) => {
  const full = Array.from({ length: int(rng, 1, 4) }, () => toJson(validFields(rng, ctx)));
  if (rng() < 0.3) {
    // NDJSON where every line is cut short.
    const lines = full.map((line) => line.slice(0, int(rng, 1, line.length - 1)));
    return {
      category: 'truncated JSON',
      body: lines.filter((l) => l.trim() !== '' && mustNotParse(l.trim())).join('\n') || '{',
      contentType: pick(rng, NDJSON_TYPES),
      expect: [400],
    };
  }
  const text = pick(rng, [full[0] as string, `[${full.join(',')}]`, `{"readings":[${full.join(',')}]}`]);
  const cut = text.slice(0, int(rng, 1, text.length - 1));
  return { category: 'truncated JSON', body: cut, contentType: pick(rng, JSON_TYPES), expect: [400] };
};

const malformedSyntax: Generator = (rng, ctx) => {
  const fields = validFields(rng, ctx);
  const good = toJson(fields);
  const inner = good.slice(1, -1);
  const body = pick(rng, [
    `{${inner},"flow_rate":NaN}`,
    `{${inner},"pressure":Infinity}`,
    `{${inner},"pressure":-Infinity}`,
    `{${inner},"flow_rate":+1}`,
    `{${inner},"flow_rate":.5}`,
    `{${inner},"flow_rate":5.}`,
    `{${inner},"flow_rate":0x10}`,
    `{${inner},"flow_rate":012}`,
    `{${inner},"flow_rate":undefined}`,
    `{${inner},}`,
    `{${inner}/* comment */}`,
    `// comment\n${good}`,
    good.replace(/"/g, "'"),
    good.replace(/"([a-z_]+)":/g, '$1:'),
    good.replace('":', '"'),
    good.replace('"node_id":"', '"node_id":"\\x41'),
    good.replace('"node_id":"', '"node_id":"\\u12'),
    good.replace('"node_id":"', '"node_id":"\u0001'),
    good.replace('"node_id":"', '"node_id":"\t'),
    `${good}}`,
    `${good}]`,
    `[${good}`,
    `[${good},,${good}]`,
    `${good}${good}`,
    `${good}\n${good}`,
    `${good} x`,
  ]);
  return { category: 'malformed JSON syntax', body, contentType: pick(rng, JSON_TYPES), expect: [400] };
};

const brokenNdjson: Generator = (rng, ctx) => {
  const broken = Array.from({ length: int(rng, 1, 20) }, () => {
    const line = toJson(validFields(rng, ctx));
    return pick(rng, [
      line.slice(0, int(rng, 1, line.length - 1)),
      `${line}}`,
      `${line},`,
      `${line} ${line}`,
      line.replace(/"/g, "'"),
      'NaN',
      'Infinity',
      'undefined',
      "'x'",
      '{',
      ']',
      '[1,]',
      '{"a" 1}',
      '"unterminated',
      '01',
      '.5',
      '+1',
      '0x10',
      'nul',
      'tru',
    ]);
  }).filter((line) => mustNotParse(line.trim()));
  if (broken.length === 0) broken.push('{');
  const sep = pick(rng, ['\n', '\r\n', '\n\n \n']);
  return {
    category: 'NDJSON, every line broken',
    body: broken.join(sep),
    contentType: pick(rng, NDJSON_TYPES),
    expect: [400],
  };
};

const GARBAGE_ALPHABET = [...'{}[]":,0123456789.eE+-truefalsn \n\t\\'];

const garbage: Generator = (rng) => {
  const length = logInt(rng, 1, 8_192);
  let body: string | Buffer;
  if (rng() < 0.5) {
    body = Buffer.alloc(length);
    for (let i = 0; i < length; i++) body[i] = int(rng, 0, 255);
  } else {
    // JSON-ish noise: it may parse, but it can never spell "node_id".
    let text = '';
    for (let i = 0; i < length; i++) text += pick(rng, GARBAGE_ALPHABET);
    body = text;
  }
  const ndjson = rng() < 0.4;
  return {
    category: 'garbage bytes',
    body,
    contentType: ndjson ? pick(rng, NDJSON_TYPES) : pick(rng, JSON_TYPES),
    expect: [400, 422],
  };
};

const empty: Generator = (rng) => {
  const r = rng();
  if (r < 0.2) return { category: 'empty body', body: Buffer.alloc(0), contentType: null, expect: [400] };
  return {
    category: 'empty body',
    body: rng() < 0.5 ? '' : Buffer.alloc(0),
    contentType: pick(rng, [...JSON_TYPES, ...NDJSON_TYPES]),
    expect: [400],
  };
};

const whitespaceOnly: Generator = (rng) => {
  const unit = pick(rng, [' ', '\n', '\r\n', '\t', '  \n\n  ', '\u00a0', '\u2028', '\ufeff', '\u3000', '\r']);
  return {
    category: 'whitespace-only body',
    body: unit.repeat(logInt(rng, 1, 10_000)),
    contentType: pick(rng, [...JSON_TYPES, ...NDJSON_TYPES]),
    expect: [400],
  };
};

const SCALARS = [
  '42',
  '"x"',
  'null',
  'true',
  'false',
  '-0',
  '0',
  '""',
  '1e400',
  '"readings"',
  '[]',
  '{"readings":[]}',
];

const topLevelScalar: Generator = (rng) => {
  const ndjson = rng() < 0.3;
  const scalar = pick(rng, SCALARS.slice(0, 10));
  if (ndjson) {
    // As NDJSON a scalar line parses, so it is an item that gets rejected.
    const lines = Array.from({ length: int(rng, 1, 5) }, () => pick(rng, SCALARS.slice(0, 10)));
    return {
      category: 'top-level scalar',
      body: lines.join('\n'),
      contentType: pick(rng, NDJSON_TYPES),
      expect: [422],
      items: lines.length,
    };
  }
  return {
    category: 'top-level scalar',
    body: pick(rng, [scalar, ...SCALARS.slice(10)]),
    contentType: pick(rng, JSON_TYPES),
    expect: [400],
  };
};

const readingsNotArray: Generator = (rng, ctx) => {
  const value = pick(rng, [
    '5',
    '"x"',
    'null',
    'true',
    '{}',
    `{"0":${toJson(validFields(rng, ctx))}}`,
    toJson(validFields(rng, ctx)),
    '1e400',
  ]);
  const body = pick(rng, [`{"readings":${value}}`, `{"readings":[],"readings":${value}}`]);
  return { category: '"readings" not an array', body, contentType: pick(rng, JSON_TYPES), expect: [400] };
};

const mixedBatch: Generator = (rng, ctx) => {
  const items = Array.from({ length: int(rng, 2, 60) }, () => pick(rng, ITEM_BREAKERS)(rng, ctx));
  return wrapItems(rng, 'batch, all items invalid', items, ['array', 'readings', 'ndjson']);
};

const tooMany: Generator = (rng, ctx) => {
  const count = MAX_READINGS + int(rng, 1, 2_000);
  const item = pick(rng, ['{}', '0', 'null', toJson(validFields(rng, ctx))]);
  const items = new Array<string>(count).fill(item);
  const mode = int(rng, 0, 2);
  const body =
    mode === 0 ? `[${items.join(',')}]` : mode === 1 ? `{"readings":[${items.join(',')}]}` : items.join('\n');
  return {
    category: `more than ${MAX_READINGS} readings`,
    body,
    contentType: mode === 2 ? pick(rng, NDJSON_TYPES) : pick(rng, JSON_TYPES),
    expect: [413],
  };
};

const UNSUPPORTED_TYPES = [
  'text/plain',
  'text/json',
  'application/xml',
  'application/jsonx',
  'application/vnd.api+json',
  'application/json-seq',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  'multipart/form-data; boundary=fuzz',
  'application/ndjsonx',
  'json',
  'x',
] as const;

const unsupportedType: Generator = (rng, ctx) => {
  const body = toJson({ ...validFields(rng, ctx), node_id: `FUZZ-CT${ctx.index}` });
  if (rng() < 0.15) {
    return {
      category: 'unsupported content type',
      body: Buffer.from(body),
      contentType: null,
      expect: [415],
    };
  }
  return {
    category: 'unsupported content type',
    body,
    contentType: pick(rng, UNSUPPORTED_TYPES),
    expect: [415],
  };
};

const badAuth: Generator = (rng, ctx) => {
  const fields = { ...validFields(rng, ctx), node_id: SCOPED_NODE };
  const body = toJson(fields);
  const randomToken = `sg_${Array.from({ length: 43 }, () => pick(rng, [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'])).join('')}`;
  const r = rng();
  let authorization: string | null;
  let expectStatus = 401;
  if (r < 0.15) authorization = null;
  else if (r < 0.3) authorization = `Bearer ${randomToken}`;
  else if (r < 0.4) authorization = `Bearer ${ctx.nodesToken}x`;
  else if (r < 0.5) authorization = `Bearer ${ctx.nodesToken.slice(0, -1)}`;
  else if (r < 0.65) {
    authorization = `Bearer ${ctx.revokedToken}`;
    expectStatus = 403;
  } else
    authorization = pick(rng, [
      '',
      'Bearer',
      'Bearer ',
      `Basic ${Buffer.from('fuzz:fuzz').toString('base64')}`,
      `Token ${ctx.nodesToken}`,
      `Bearer ${ctx.nodesToken} ${ctx.nodesToken}`,
      `Bearer "${ctx.nodesToken}"`,
      `Bearer ${ctx.nodesToken},`,
      ctx.nodesToken,
    ]);
  return {
    category: 'bad or missing token',
    body,
    contentType: pick(rng, JSON_TYPES),
    authorization,
    expect: [expectStatus],
  };
};

const outsideNodesScope: Generator = (rng, ctx) => {
  const node = pick(rng, ['FUZZ-N2', 'fuzz-n1', 'FUZZ-N10', 'FUZZ-N', VALID_NODE]);
  const items = Array.from({ length: int(rng, 1, 3) }, () =>
    toJson({ ...validFields(rng, ctx), node_id: node }),
  );
  const payload = wrapItems(rng, 'node outside the token scope', items);
  return { ...payload, authorization: `Bearer ${ctx.nodesToken}` };
};

/** Generators with weights (how many slots of the schedule each gets). */
const GENERATORS: readonly (readonly [Generator, number])[] = [
  [readings('node_id wrong type', breakNodeIdType), 6],
  [readings('node_id whitespace/brace/control/too long', breakNodeIdText), 6],
  [readings('node_id outside the alphabet', breakNodeIdAlphabet), 6],
  [readings('node of another district or gateway', notOwnNode), 4],
  [readings('timestamp invalid', breakTimestamp), 10],
  [readings('measurement wrong type', breakMeasurement), 6],
  [readings('numbers as strings', numbersAsStrings), 4],
  [readings('NaN/Infinity literals', nonFinite), 4],
  [readings('no measurement / missing fields', noMeasurement), 4],
  [readings('data_quality_score outside 0..1', badQuality), 3],
  [readings('metadata wrong type / too long', badMetadata), 3],
  [readings('district outside the token scope', outOfScope), 2],
  [readings('duplicate keys', duplicateKeys), 2],
  [readings('prototype-pollution shaped', protoShaped), 4],
  [outsideNodesScope, 2],
  [mixedBatch, 5],
  [deepNesting, 4],
  [invalidUtf8, 5],
  [truncated, 4],
  [malformedSyntax, 4],
  [brokenNdjson, 3],
  [garbage, 4],
  [empty, 2],
  [whitespaceOnly, 2],
  [topLevelScalar, 3],
  [readingsNotArray, 2],
  [unsupportedType, 2],
  [tooMany, 1],
  [badAuth, 2],
];

const SCHEDULE: readonly Generator[] = GENERATORS.flatMap(([generator, weight]) =>
  new Array<Generator>(weight).fill(generator),
);

/** Oversized and extreme payloads, sent once each (beyond the generated ones). */
function specials(): Payload[] {
  return [
    {
      category: 'deep nesting (huge)',
      body: deepArray(1_000_000),
      contentType: 'application/json',
      expect: [422],
      items: 1,
    },
    {
      category: 'deep nesting (huge)',
      body: deepObject(400_000),
      contentType: 'application/json',
      expect: [422],
      items: 1,
    },
    {
      category: 'deep nesting (huge)',
      body: '['.repeat(2_000_000),
      contentType: 'application/x-ndjson',
      expect: [400],
    },
  ];
}

// --------------------------------------------------------------- the test

interface Failure {
  readonly index: number | string;
  readonly category: string;
  readonly problem: string;
  readonly prefix: string;
}

function prefixOf(body: string | Buffer): string {
  const text = typeof body === 'string' ? body : body.toString('latin1');
  return `${JSON.stringify(text.slice(0, 120))}${text.length > 120 ? ` …(${text.length} chars)` : ''}`;
}

function headersFor(payload: Payload, token: string): Record<string, string> {
  const headers: Record<string, string> = {};
  if (payload.contentType !== null) headers['content-type'] = payload.contentType;
  if (payload.authorization === undefined) headers.authorization = `Bearer ${token}`;
  else if (payload.authorization !== null) headers.authorization = payload.authorization;
  return headers;
}

async function runPool<T>(
  items: readonly T[],
  limit: number,
  worker: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await worker(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/**
 * The gateways the payloads come from: the fuzz district's, a node-scoped
 * one, a revoked one; and nodes of another district. `limits`: the first
 * two gateways' own rates.
 */
async function arrangeGateways(redisUrl: string, limits?: GatewayLimits) {
  const token = await issueToken(redisUrl, GATEWAY, { district: DISTRICT }, limits);
  const nodesToken = await issueToken(redisUrl, 'fuzz-nodes', { nodes: [SCOPED_NODE] }, limits);
  const revokedToken = await issueToken(redisUrl, 'fuzz-revoked', { district: DISTRICT });
  const admin = new Redis(redisUrl);
  try {
    await new GatewayRegistry(admin, systemClock).revoke('fuzz-revoked');
    await new NodeOwners(admin).assign(FOREIGN_NODES, 'OTHER');
  } finally {
    admin.disconnect();
  }
  return { token, nodesToken, revokedToken };
}

describe('ingest fuzz: hostile payloads get a 4xx', () => {
  let redis: TestRedis;
  let ingest: TestIngest;
  let token: string;
  let nodesToken: string;
  let revokedToken: string;

  beforeAll(async () => {
    redis = await testRedis();
    // Thousands of requests a second from one token and one address: the
    // limits have tests of their own (hardening.test.ts).
    ingest = await startTestIngest(redis.url, { INGEST_AUTH_FAILURES_PER_MINUTE: '0' });
    ({ token, nodesToken, revokedToken } = await arrangeGateways(redis.url, UNLIMITED));
    // The service connects to Redis in the background and answers 503 until then.
    for (let i = 0; i < 100; i++) {
      const response = await fetch(`${ingest.url}/readyz`);
      await response.arrayBuffer();
      if (response.status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  afterAll(async () => {
    await ingest?.close();
    await redis?.close();
  });

  it(`answers ${HOSTILE_COUNT}+ generated hostile payloads with a 4xx and keeps accepting readings (seed ${SEED})`, async () => {
    const started = Date.now();
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const failures: Failure[] = [];
    const counts = new Map<string, number>();
    let sent = 0;
    const validTimestamps: number[] = [];
    const t0 = Date.now() - 60_000;

    const check = async (index: number | string, payload: Payload): Promise<void> => {
      sent++;
      counts.set(payload.category, (counts.get(payload.category) ?? 0) + 1);
      const fail = (problem: string) =>
        failures.push({ index, category: payload.category, problem, prefix: prefixOf(payload.body) });
      let response: Response;
      try {
        response = await fetch(`${ingest.url}/v1/readings`, {
          method: 'POST',
          headers: headersFor(payload, token),
          body: payload.body,
        });
      } catch (error) {
        fail(`fetch threw: ${(error as Error).message} (${String((error as { cause?: unknown }).cause)})`);
        return;
      }
      const text = await response.text();
      const { status } = response;
      if (status < 400 || status >= 500) {
        fail(`status ${status} (expected 4xx): ${text.slice(0, 200)}`);
        return;
      }
      if (!payload.expect.includes(status)) {
        fail(`status ${status} (expected ${payload.expect.join(' or ')}): ${text.slice(0, 200)}`);
        return;
      }
      if (status === 422) {
        const reply = JSON.parse(text) as { accepted?: unknown; duplicates?: unknown; rejected?: unknown };
        const rejected = Array.isArray(reply.rejected) ? reply.rejected.length : -1;
        if (reply.accepted !== 0 || reply.duplicates !== 0 || rejected < 1) {
          fail(`422 with an unexpected reply: ${text.slice(0, 200)}`);
        } else if (payload.items !== undefined && rejected !== payload.items) {
          fail(`422 rejecting ${rejected} of ${payload.items} items: ${text.slice(0, 200)}`);
        }
      }
    };

    let validSeq = 0;
    const sendValid = async (label: string): Promise<void> => {
      const k = validSeq++;
      const rng = rngFor(-1 - k);
      const timestamp = t0 - k;
      const fields: Fields = {
        node_id: VALID_NODE,
        timestamp: rng() < 0.5 ? timestamp : new Date(timestamp).toISOString(),
        flow_rate: Math.round(rng() * 1e5) / 100,
        pressure: Math.round(rng() * 2000) / 100,
      };
      const mode = int(rng, 0, 3);
      const json = toJson(fields);
      const body =
        mode === 0 ? json : mode === 1 ? `[${json}]` : mode === 2 ? `{"readings":[${json}]}` : `${json}\n`;
      const response = await fetch(`${ingest.url}/v1/readings`, {
        method: 'POST',
        headers: {
          'content-type': mode === 3 ? 'application/x-ndjson' : 'application/json',
          authorization: `Bearer ${token}`,
        },
        body,
      });
      const reply = await response.text();
      expect(
        { status: response.status, reply: JSON.parse(reply) as unknown },
        `valid reading ${label} (seed ${SEED}): ${body}`,
      ).toEqual({ status: 200, reply: { accepted: 1, duplicates: 0, rejected: [] } });
      validTimestamps.push(timestamp);
    };

    const ctxFor = (index: number): Context => ({ index, now: Date.now(), nodesToken, revokedToken });

    for (let round = 0; round * ROUND_SIZE < HOSTILE_COUNT; round++) {
      const first = round * ROUND_SIZE;
      const indices = Array.from(
        { length: Math.min(ROUND_SIZE, HOSTILE_COUNT - first) },
        (_, i) => first + i,
      );
      // One valid reading rides along with the hostile load of each round.
      const validAt = Math.floor(seededRandom(SEED + round)() * indices.length);
      const tasks: (number | 'valid')[] = [...indices.slice(0, validAt), 'valid', ...indices.slice(validAt)];
      await runPool(tasks, CONCURRENCY, async (task) => {
        if (task === 'valid') return sendValid(`during round ${round}`);
        const generator = SCHEDULE[task % SCHEDULE.length] as Generator;
        return check(task, generator(rngFor(task), ctxFor(task)));
      });
      await sendValid(`after round ${round}`);

      if (round === 4) {
        // Extremes, one at a time.
        for (const [i, payload] of specials().entries()) await check(`special-${i}`, payload);
        await sendValid('after the extreme payloads');

        // Exactly one 10 MB body: the limit is 5 MiB, so 413 (possibly before the upload ends).
        const big = Buffer.alloc(10 * 1024 * 1024, 0x20);
        big.write('[', 0);
        big.write(']', big.length - 1);
        const bigPayload: Payload = {
          category: '10 MB body',
          body: big,
          contentType: 'application/json',
          expect: [413],
        };
        const before = failures.length;
        await check('10MB', bigPayload);
        const broke = failures.slice(before).find((f) => f.problem.startsWith('fetch threw'));
        if (broke !== undefined) {
          // Closing the socket mid-upload is acceptable only if the service still answers.
          failures.splice(failures.indexOf(broke), 1);
          console.warn(`10 MB body: ${broke.problem}; checking that the service still accepts readings`);
        }
        await sendValid('after the 10 MB body');
      }
    }

    const health = await fetch(`${ingest.url}/healthz`);
    expect(health.status, 'GET /healthz after the fuzz').toBe(200);
    await health.arrayBuffer();
    await sendValid('at the end');

    const elapsed = Date.now() - started;
    const summary = [...counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([category, n]) => `  ${String(n).padStart(5)}  ${category}`)
      .join('\n');
    console.log(
      `fuzz seed ${SEED}: ${sent} hostile payloads, ${validTimestamps.length} valid readings, ${elapsed} ms\n${summary}`,
    );

    const order = (f: Failure) => (typeof f.index === 'number' ? f.index : Number.MAX_SAFE_INTEGER);
    const report = [...failures]
      .sort((a, b) => order(a) - order(b))
      .slice(0, 10)
      .map((f) => `#${f.index} [${f.category}] ${f.problem}\n    payload: ${f.prefix}`)
      .join('\n');
    expect(
      failures.length,
      `seed ${SEED}: ${failures.length} hostile payloads mishandled; first:\n${report}`,
    ).toBe(0);
    expect(sent, `seed ${SEED}: hostile payloads sent`).toBeGreaterThanOrEqual(10_000);

    // Nothing from the payloads reached the log: only the valid readings.
    const client = new Redis(redis.url);
    try {
      const entries = await client.xrange('readings', '-', '+');
      const stored = entries.flatMap(([id, fields]) => decodeEntry(id, fields).readings);
      const sources = new Set(entries.map(([id, fields]) => decodeEntry(id, fields).source));
      expect(stored.length, `seed ${SEED}: readings in the stream`).toBe(validTimestamps.length);
      expect(
        stored.filter((r) => r.node_id !== VALID_NODE || r.district_id !== DISTRICT),
        `seed ${SEED}: readings other than the valid ones`,
      ).toEqual([]);
      expect(stored.map((r) => r.timestamp).sort((a, b) => a - b)).toEqual(
        [...validTimestamps].sort((a, b) => a - b),
      );
      expect([...sources]).toEqual([GATEWAY]);

      const keys = await scanKeys(client);
      const unexpected = keys.filter(
        (key) =>
          key !== 'readings' &&
          key !== 'seen:{readings}:before' &&
          key !== 'seen:{readings}:hours' &&
          !key.startsWith('{gateways}:') &&
          !/^seen:\{readings\}:s\d+$/.test(key),
      );
      expect(unexpected, `seed ${SEED}: keys written by hostile payloads`).toEqual([]);
      // The dedupe hashes (one per 20 minutes of event time) hold identities of the valid node only.
      const seenNodes = new Set<string>();
      for (const key of keys.filter((k) => /^seen:\{readings\}:s\d+$/.test(k))) {
        for (const node of await client.hkeys(key)) seenNodes.add(node);
      }
      expect([...seenNodes], `seed ${SEED}: nodes in the dedupe hashes`).toEqual([VALID_NODE]);
      // No node bound or counted but the valid one, and those arranged above.
      expect(await client.hgetall('{gateways}:node-district'), `seed ${SEED}: node districts`).toEqual({
        [VALID_NODE]: DISTRICT,
        'OTHER-1': 'OTHER',
        'OTHER-2': 'OTHER',
      });
      expect(await client.hgetall('{gateways}:node-gateway')).toEqual({ [SCOPED_NODE]: 'fuzz-nodes' });
      const joined = keys.filter((key) => key.startsWith('{gateways}:joined:'));
      expect(joined.length, `seed ${SEED}: join counters`).toBeLessThanOrEqual(2);
      for (const key of joined) {
        expect(key.startsWith(`{gateways}:joined:${GATEWAY}:`)).toBe(true);
        expect(await client.get(key)).toBe('1');
      }
    } finally {
      client.disconnect();
    }

    expect(Object.getOwnPropertyNames(Object.prototype).sort(), 'Object.prototype was not polluted').toEqual(
      prototypeBefore,
    );
  }, 120_000);
});

/**
 * The same hostile payloads from gateways held to their limits, and from an
 * address that fails authentication over and over: every answer is the
 * payload's own 4xx or a 429 with Retry-After, never a 5xx, and nothing but
 * valid readings is stored.
 */
describe('ingest fuzz: hostile payloads under rate limits', () => {
  const COUNT = 1_500;
  let redis: TestRedis;
  let ingest: TestIngest;
  let token: string;
  let nodesToken: string;
  let revokedToken: string;

  beforeAll(async () => {
    redis = await testRedis();
    ingest = await startTestIngest(redis.url, {
      // The valid token stays known, so the address being blocked cannot hide it.
      INGEST_AUTH_CACHE_SECONDS: '3600',
      INGEST_RATE_REQUESTS: '200',
      INGEST_RATE_READINGS: '2000',
      INGEST_AUTH_FAILURES_PER_MINUTE: '20',
    });
    ({ token, nodesToken, revokedToken } = await arrangeGateways(redis.url));
  });

  afterAll(async () => {
    await ingest?.close();
    await redis?.close();
  });

  it(`answers ${COUNT} hostile payloads with their 4xx or a 429, and stores nothing of them (seed ${SEED})`, async () => {
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    let own = 0;
    const indices = Array.from({ length: COUNT }, (_, i) => HOSTILE_COUNT + i);
    await runPool(indices, 16, async (index) => {
      const generator = SCHEDULE[index % SCHEDULE.length] as Generator;
      const payload = generator(rngFor(index), { index, now: Date.now(), nodesToken, revokedToken });
      let response: Response;
      try {
        response = await fetch(`${ingest.url}/v1/readings`, {
          method: 'POST',
          headers: headersFor(payload, token),
          body: payload.body,
        });
      } catch (error) {
        // A body the server closed on mid-upload (a 401 or 429 from the headers) is an answer too.
        if (typeof payload.body !== 'string' && payload.body.length > 1_000_000) return;
        problems.push(`#${index} [${payload.category}] fetch threw: ${(error as Error).message}`);
        return;
      }
      const text = await response.text();
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (payload.expect.includes(response.status)) own++;
      if (response.status === 429) {
        if (!/^\d+$/.test(response.headers.get('retry-after') ?? '')) {
          problems.push(`#${index} [${payload.category}] 429 without Retry-After`);
        }
      } else if (!payload.expect.includes(response.status)) {
        problems.push(`#${index} [${payload.category}] status ${response.status}: ${text.slice(0, 160)}`);
      }
    });
    const summary = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}: ${v}`);
    console.log(`fuzz under limits, seed ${SEED}: ${summary.join(', ')}`);
    expect(problems.slice(0, 10), `seed ${SEED}: ${problems.length} payloads mishandled`).toEqual([]);
    expect(statuses.get(429) ?? 0, 'some payloads were over a limit').toBeGreaterThan(0);
    // Within the limits, each still gets its own answer: a 429 is not a catch-all.
    expect(own, `seed ${SEED}: payloads answered with their own 4xx`).toBeGreaterThan(COUNT / 4);

    // The gateway is not locked out: after its Retry-After a valid reading is taken.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const response = await ingest.post(
      JSON.stringify({ node_id: VALID_NODE, timestamp: Date.now() - 1_000, flow_rate: 1 }),
      { token },
    );
    expect(response.status, await response.text()).toBe(200);
    const client = new Redis(redis.url);
    try {
      const entries = await client.xrange('readings', '-', '+');
      const stored = entries.flatMap(([id, fields]) => decodeEntry(id, fields).readings);
      expect(stored.map((r) => r.node_id)).toEqual([VALID_NODE]);
    } finally {
      client.disconnect();
    }
  }, 60_000);
});

/**
 * Service bugs the fuzzing found, now fixed: each test states the correct
 * behaviour, so a regression fails here.
 */
describe('ingest fuzz: bugs the fuzzing found (regressions)', () => {
  let redis: TestRedis;
  let ingest: TestIngest;
  let token: string;

  beforeAll(async () => {
    redis = await testRedis();
    ingest = await startTestIngest(redis.url);
    token = await issueToken(redis.url, GATEWAY, { district: DISTRICT }, UNLIMITED);
  });

  afterAll(async () => {
    await ingest?.close();
    await redis?.close();
  });

  it('rejects ISO years 0073-0099 instead of reading them as 1973-1999 (Date.UTC maps 0-99 to 19xx)', async () => {
    const response = await ingest.post(
      '{"node_id":"BUG-Y","timestamp":"0073-06-01T00:00:00Z","flow_rate":1}',
      {
        token,
      },
    );
    const reply = await response.text();
    expect(response.status, reply).toBe(422);
  });

  it('rejects a node_id holding a lone surrogate (its Redis keys would hold U+FFFD instead)', async () => {
    const now = Date.now();
    const first = await ingest.post(`{"node_id":"BUG-S\\ud800","timestamp":${now},"flow_rate":1}`, { token });
    const firstReply = await first.text();
    expect(first.status, firstReply).toBe(422);
  });

  it('stores the derived pressure of two huge finite pressures as a number, not null', async () => {
    const response = await ingest.post(
      `{"node_id":"BUG-P","timestamp":${Date.now()},"pressure_1":1.7e308,"pressure_2":1.7e308}`,
      { token },
    );
    expect(response.status, await response.text()).toBe(200);
    const client = new Redis(redis.url);
    try {
      const entries = await client.xrange('readings', '-', '+');
      const stored = entries.flatMap(([id, fields]) => decodeEntry(id, fields).readings);
      const reading = stored.find((r) => r.node_id === 'BUG-P');
      expect(reading?.pressure).toBe(1.7e308);
    } finally {
      client.disconnect();
    }
  });
});
