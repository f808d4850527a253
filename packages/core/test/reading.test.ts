import { describe, expect, it } from 'vitest';
import { checkReading, type ValidationPolicy } from '../src/index.ts';

const NOW = Date.UTC(2026, 10, 25, 12);
const policy: ValidationPolicy = { nowMs: NOW, maxFutureMs: 300_000 };
const base = { node_id: '215542', timestamp: NOW - 60_000 };

function accepted(raw: unknown) {
  const result = checkReading(raw, policy);
  if (!result.ok) throw new Error(`expected acceptance, got: ${result.error}`);
  return result.reading;
}
function rejected(raw: unknown) {
  const result = checkReading(raw, policy);
  if (result.ok) throw new Error(`expected rejection of ${JSON.stringify(raw)}`);
  return result.error;
}

describe('checkReading', () => {
  it('keeps every field at full precision', () => {
    const reading = accepted({
      ...base,
      flow_rate: 0.1 + 0.2,
      pressure: 10 / 3,
      temperature: -0,
      volume: JSON.parse('123456789.123456789'),
      data_quality_score: 1,
      district_id: 'SELARGIUS',
      node_name: 'Via Roma',
      node_type: 'distribution',
      is_interpolated: false,
      source_file: 'a.csv',
    });
    expect(reading).toEqual({
      node_id: '215542',
      timestamp: NOW - 60_000,
      flow_rate: 0.30000000000000004,
      pressure: 3.3333333333333335,
      temperature: -0,
      volume: 123456789.12345679,
      data_quality_score: 1,
      district_id: 'SELARGIUS',
      node_name: 'Via Roma',
      node_type: 'distribution',
      is_interpolated: false,
      source_file: 'a.csv',
    });
  });

  it('derives pressure from the two analog inputs only when pressure is absent', () => {
    expect(accepted({ ...base, pressure_1: 3, pressure_2: 4 }).pressure).toBe(3.5);
    expect(accepted({ ...base, pressure_2: 4 }).pressure).toBe(4);
    expect(accepted({ ...base, pressure_1: 1.7e308, pressure_2: 1.7e308 }).pressure).toBe(1.7e308);
    expect(accepted({ ...base, pressure: 9, pressure_1: 3, pressure_2: 4 }).pressure).toBe(9);
    expect(accepted({ ...base, flow_rate: 1 }).pressure).toBeUndefined();
  });

  it('treats null as absent and ignores unknown fields', () => {
    const reading = accepted({ ...base, flow_rate: null, pressure: 2, node_name: null, extra: 'x' });
    expect(reading).toEqual({ ...base, pressure: 2 });
  });

  it('accepts out-of-range values: they are data, and anomaly candidates', () => {
    expect(accepted({ ...base, flow_rate: -5, pressure: 1e300, temperature: 99 }).flow_rate).toBe(-5);
    expect(accepted({ ...base, node_type: 'pumping_station', flow_rate: 1 }).node_type).toBe(
      'pumping_station',
    );
  });

  it('names the field, the value and what was expected', () => {
    expect(rejected({ ...base, flow_rate: '12' })).toBe(
      'flow_rate: expected a finite number (L/s), got string "12"',
    );
    expect(rejected({ ...base, pressure: Number.NaN })).toBe(
      'pressure: expected a finite number (bar), got NaN',
    );
    expect(rejected({ ...base, temperature: Number.POSITIVE_INFINITY })).toContain('got Infinity');
    expect(rejected({ ...base, volume: { v: 1 } })).toContain(
      'volume: expected a finite number (m³), got object',
    );
    expect(rejected({ ...base, flow_rate: [1] })).toContain('got array');
    expect(rejected({ ...base, flow_rate: true })).toContain('got boolean');
  });

  it('requires a measurement; a quality score alone is not one', () => {
    expect(rejected({ ...base })).toContain('no measurement');
    expect(rejected({ ...base, data_quality_score: 0.9 })).toContain('no measurement');
    expect(rejected({ ...base, flow_rate: null, pressure: null })).toContain('no measurement');
  });

  it('rejects a missing, empty or malformed node_id', () => {
    expect(rejected({ timestamp: NOW, flow_rate: 1 })).toBe('node_id: is required');
    expect(rejected({ ...base, node_id: 215542, flow_rate: 1 })).toBe(
      'node_id: expected a string, got number 215542 (send "215542")',
    );
    expect(rejected({ ...base, node_id: '', flow_rate: 1 })).toContain('must not be empty');
    expect(rejected({ ...base, node_id: 'x'.repeat(129), flow_rate: 1 })).toContain('longer than 128');
  });

  it('takes node ids of ASCII letters, digits, ".", "_" and "-" only, and names the rule', () => {
    const rule = "use 1 to 128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit";
    for (const id of ['215542', 'NODE01', 'TANK01', 'INTERCON03', 'sel.pump-7_b', '7', 'x'.repeat(128)]) {
      expect(checkReading({ ...base, node_id: id, flow_rate: 1 }, policy).ok, id).toBe(true);
    }
    // Each shown with what makes it unsafe visible.
    const refused: [string, string][] = [
      ['odd\u200b', '"odd\\u200b"'],
      ['\u202eevil', '"\\u202eevil"'],
      ['a b', '"a b"'],
      ['a{b}', '"a{b}"'],
      ['a\u0000', '"a\\u0000"'],
      ['S\ud800', '"S\\ud800"'],
      ['node:1', '"node:1"'],
      ['n*', '"n*"'],
      ['n?', '"n?"'],
      ['n[1]', '"n[1]"'],
      ['"q"', '"\\"q\\""'],
      ["it's", '"it\'s"'],
      ['café', '"caf\\u00e9"'],
      ['-lead', '"-lead"'],
      ['.hidden', '".hidden"'],
      ['a/b', '"a/b"'],
    ];
    for (const [id, shown] of refused) {
      expect(rejected({ ...base, node_id: id, flow_rate: 1 }), id).toBe(
        `node_id: ${shown} is not a node id: ${rule}`,
      );
    }
    expect(rejected({ ...base, flow_rate: 1, node_name: '\udc00' })).toContain(
      'node_name: contains an unpaired',
    );
  });

  it('rejects missing, second-based and future timestamps', () => {
    expect(rejected({ node_id: 'n', flow_rate: 1 })).toBe('timestamp: is required');
    expect(rejected({ ...base, timestamp: 1_700_000_000, flow_rate: 1 })).toContain('epoch seconds');
    expect(accepted({ ...base, timestamp: NOW + 300_000, flow_rate: 1 }).timestamp).toBe(NOW + 300_000);
    expect(rejected({ ...base, timestamp: NOW + 300_001, flow_rate: 1 })).toContain('in the future');
  });

  it('checks metadata and quality types', () => {
    expect(rejected({ ...base, flow_rate: 1, data_quality_score: 1.5 })).toContain(
      'data_quality_score: expected a number from 0 to 1, got 1.5',
    );
    expect(rejected({ ...base, flow_rate: 1, district_id: 7 })).toBe('district_id: expected a string, got 7');
    expect(rejected({ ...base, flow_rate: 1, node_name: 'x'.repeat(257) })).toContain('longer than 256');
    expect(rejected({ ...base, flow_rate: 1, is_interpolated: 'yes' })).toContain('expected true or false');
  });

  it('rejects things that are not objects', () => {
    for (const raw of [null, 42, 'x', [], true])
      expect(rejected(raw)).toMatch(/^reading: expected a JSON object/);
  });

  it('does not let a __proto__ key change the reading', () => {
    const raw = JSON.parse(
      '{"node_id":"n","timestamp":1714564800000,"flow_rate":1,"__proto__":{"pressure":5}}',
    );
    expect(accepted(raw)).toEqual({ node_id: 'n', timestamp: 1714564800000, flow_rate: 1 });
  });
});
