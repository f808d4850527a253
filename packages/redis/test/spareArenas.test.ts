import { GrowingArena } from '@streamgauge/core';
import { describe, expect, it } from 'vitest';
import { SpareArenas } from '../src/log/spareArenas.ts';

const arena = (mb: number) => new GrowingArena(mb * 1024 * 1024);

describe('spare arenas', () => {
  it('hands out the largest kept, whatever the order they came back in', () => {
    const spares = new SpareArenas(3);
    const [small, large, middle] = [arena(1), arena(8), arena(4)];
    spares.give(large);
    spares.give(small);
    spares.give(middle);
    expect(spares.take()).toBe(large);
    expect(spares.take()).toBe(middle);
    expect(spares.take()).toBe(small);
    expect(spares.take()).toBeUndefined();
  });

  it('keeps a larger arena in place of the smallest once full, and drops a smaller one', () => {
    const spares = new SpareArenas(2);
    const [a, b, larger, smaller] = [arena(2), arena(4), arena(8), arena(1)];
    spares.give(a);
    spares.give(b);
    spares.give(larger);
    spares.give(smaller);
    expect(spares.take()).toBe(larger);
    expect(spares.take()).toBe(b);
    expect(spares.take()).toBeUndefined();
  });
});
