import { describe, expect, it } from 'vitest';
import { fieldMap, fieldRecord } from '../src/index.ts';

describe('fieldMap', () => {
  it('pairs names with values in order, names as strings, and ignores a name without a value', () => {
    expect([...fieldMap(['n', '3', 'src', 'gw', 'dangling'])]).toEqual([
      ['n', '3'],
      ['src', 'gw'],
    ]);
    expect(fieldMap<unknown>(['entries-added', 7, 'groups', 2]).get('entries-added')).toBe(7);
    expect(fieldRecord(['a', '1', 'a', '2'])).toEqual({ a: '2' });
    expect(fieldRecord([])).toEqual({});
  });
});
