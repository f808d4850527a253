import { describe, expect, it } from 'vitest';
import { EvaluatedTypes } from '../src/anomaly/evaluatedTypes.ts';
import type { AnomalyType, Breach } from '../src/index.ts';
import { AnomalyLifecycle } from '../src/index.ts';

const start = Date.UTC(2026, 10, 1);

const listed = (evaluated: EvaluatedTypes) => {
  const types: AnomalyType[] = [];
  evaluated.forEach((type) => {
    types.push(type);
  });
  return types;
};

describe('EvaluatedTypes', () => {
  it('lists the types in the order first added, once each, and forgets them on clear', () => {
    const evaluated = new EvaluatedTypes();
    evaluated.add('offline');
    evaluated.add('low_flow');
    evaluated.add('stuck_sensor');
    evaluated.add('low_flow');
    evaluated.add('high_flow');
    expect(listed(evaluated)).toEqual(['offline', 'low_flow', 'stuck_sensor', 'high_flow']);
    expect(evaluated.has('low_flow')).toBe(true);
    expect(evaluated.has('no_flow')).toBe(false);
    evaluated.clear();
    expect(listed(evaluated)).toEqual([]);
    expect(evaluated.has('low_flow')).toBe(false);
    evaluated.add('high_flow');
    evaluated.add('low_flow');
    expect(listed(evaluated)).toEqual(['high_flow', 'low_flow']);
  });

  it('closes clear anomalies in the order their rules ran, as a Set of the same types does', () => {
    const breach = (type: AnomalyType): Breach => ({
      type,
      rule: 'threshold',
      value: 1,
      expected: {},
      score: 1,
      strong: true,
      unlikely: true,
    });
    const closing = (
      order: AnomalyType[],
      evaluated: (types: AnomalyType[]) => Parameters<AnomalyLifecycle['update']>[2],
    ) => {
      const life = new AnomalyLifecycle('N1', { clearMs: 0, confirmReadings: 1 });
      life.update(start, [breach('high_flow'), breach('stuck_sensor')], evaluated(order));
      return life.update(start + 60_000, [], evaluated(order)).map((e) => `${e.event} ${e.anomaly.type}`);
    };
    const asTypes = (types: AnomalyType[]) => {
      const evaluated = new EvaluatedTypes();
      for (const type of types) evaluated.add(type);
      return evaluated;
    };
    for (const order of [
      ['stuck_sensor', 'high_flow'],
      ['high_flow', 'stuck_sensor'],
    ] as AnomalyType[][]) {
      const expected = order.map((type) => `close ${type}`);
      expect(closing(order, asTypes)).toEqual(expected);
      expect(closing(order, (types) => new Set(types))).toEqual(expected);
    }
  });
});
