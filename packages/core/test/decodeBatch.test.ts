import { describe, expect, it } from 'vitest';
import { BatchError, type BatchRules, decodeBatch, formatOf } from '../src/index.ts';

const NOW = Date.UTC(2026, 11, 3, 12);
const rules: BatchRules = { policy: { nowMs: NOW, maxFutureMs: 300_000 }, maxReadings: 3, unit: 'request' };
const bytes = (text: string) => new TextEncoder().encode(text);
const reading = (node: string) => JSON.stringify({ node_id: node, timestamp: NOW - 60_000, flow_rate: 1 });

describe('formatOf', () => {
  it('names the format of a content type, in any case and with parameters; refuses others, naming why', () => {
    expect(formatOf('Application/JSON; charset=utf-8')).toEqual({ format: 'json' });
    expect(formatOf('application/x-ndjson')).toEqual({ format: 'ndjson' });
    expect(formatOf('application/ndjson; charset="UTF-8"')).toEqual({ format: 'ndjson' });
    expect(formatOf('application/json; charset=latin1')).toEqual({
      unsupported: 'charset=latin1 is not supported: send UTF-8',
    });
    expect(formatOf('text/csv')).toEqual({
      unsupported: 'content-type "text/csv" is not supported: send application/json or application/x-ndjson',
    });
  });
});

describe('decodeBatch', () => {
  it('reads the same readings from JSON and NDJSON, item by item, with their positions', () => {
    const json = decodeBatch(bytes(`[${reading('A')},{"node_id":"B"},${reading('C')}]`), 'json', rules);
    const ndjson = decodeBatch(
      bytes(`${reading('A')}\n\n{"node_id":"B"}\n${reading('C')}\n`),
      'ndjson',
      rules,
    );
    for (const batch of [json, ndjson]) {
      expect(batch.items).toHaveLength(3);
      expect(batch.valid.map((v) => [v.index, v.reading.node_id])).toEqual([
        [0, 'A'],
        [2, 'C'],
      ]);
      expect(batch.rejected).toEqual([{ index: 1, error: expect.stringMatching(/^timestamp: /) }]);
    }
  });

  it('applies the sender scope to each valid reading', () => {
    const scoped = decodeBatch(bytes(`[${reading('A')},${reading('Z')}]`), 'json', {
      ...rules,
      scopeOf: (r) => (r.node_id === 'A' ? undefined : `node_id: "${r.node_id}" is not yours`),
    });
    expect(scoped.valid.map((v) => v.reading.node_id)).toEqual(['A']);
    expect(scoped.rejected).toEqual([{ index: 1, error: 'node_id: "Z" is not yours' }]);
  });

  it('refuses a batch it cannot take at all, saying why: unreadable, empty, too many', () => {
    const refusal = (body: string, format: 'json' | 'ndjson' = 'json') => {
      try {
        decodeBatch(bytes(body), format, rules);
      } catch (error) {
        if (error instanceof BatchError) return [error.reason, error.message];
        throw error;
      }
      throw new Error(`${body} was taken`);
    };
    expect(refusal('{not json')).toEqual([
      'unreadable',
      expect.stringMatching(/^the body is not valid JSON: /),
    ]);
    expect(refusal('')).toEqual(['unreadable', expect.stringMatching(/^the body is empty/)]);
    expect(refusal('\n\n', 'ndjson')).toEqual(['unreadable', 'the body has no readings (only blank lines)']);
    expect(refusal('[]')).toEqual(['empty', 'the request holds no readings']);
    expect(refusal(`[${[1, 2, 3, 4].map(() => reading('A')).join(',')}]`)).toEqual([
      'too-many',
      'the request holds 4 readings; at most 3 are taken per request',
    ]);
    // Invalid UTF-8 is refused, not turned into U+FFFD (which would alter node ids).
    expect(() => decodeBatch(new Uint8Array([0x5b, 0xc3, 0x28, 0x5d]), 'json', rules)).toThrow(
      'the body is not valid UTF-8',
    );
  });
});
