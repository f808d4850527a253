import { RedisUnavailableError } from '@streamgauge/redis';
import { describe, expect, it } from 'vitest';
import { RedisBudget } from '../src/redisBudget.ts';

const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

describe('RedisBudget', () => {
  it('bounds all of a request’s calls together, not each: slow answers add up', async () => {
    const budget = new RedisBudget(600);
    const started = performance.now();
    // Each call alone is within 600 ms; the second finds only ~200 ms left.
    expect(await budget.before(after(400, 'lookup'))).toBe('lookup');
    const error = await budget.append(after(400, 'appended')).catch((e: unknown) => e);
    const took = performance.now() - started;
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect((error as RedisUnavailableError).stored).toBe('unknown');
    expect(took).toBeGreaterThan(580);
    expect(took).toBeLessThan(700);
  });

  it('says nothing was stored when the time runs out before the write', async () => {
    const budget = new RedisBudget(300);
    await budget.before(after(250, 1));
    const error = await budget.before(after(250, 2)).catch((e: unknown) => e);
    expect((error as RedisUnavailableError).stored).toBe('none');
    // Spent: a later call is cut at once.
    const started = performance.now();
    await expect(budget.append(after(250, 3))).rejects.toBeInstanceOf(RedisUnavailableError);
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('passes other errors through, and a refused append keeps what it says it stored', async () => {
    const budget = new RedisBudget(1_000);
    const bug = new TypeError('a bug');
    await expect(budget.before(Promise.reject(bug))).rejects.toBe(bug);
    const partial = new RedisUnavailableError(new Error('Connection is closed.'), 'partial');
    await expect(budget.append(Promise.reject(partial))).rejects.toBe(partial);
    const refused = await budget.before(Promise.reject(partial)).catch((e: unknown) => e);
    expect((refused as RedisUnavailableError).stored).toBe('none');
  });
});
