import { ManualClock } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { describe, expect, it } from 'vitest';
import { GatewayRegistry, hashToken, NameTakenError, UnknownNameError } from '../src/index.ts';

const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));
const db = useRedis({ flushEach: true });

describe('GatewayRegistry', () => {
  it('issues a token, stores only its hash, and authenticates with it', async () => {
    const registry = new GatewayRegistry(db.client, clock);
    const { token, record } = await registry.add('sel-gw', { kind: 'district', district: 'SEL' });
    expect(token).toMatch(/^sg_[A-Za-z0-9_-]{43}$/);
    const dump = JSON.stringify(await db.client.hgetall('{gateways}:by-name'));
    expect(dump).not.toContain(token);
    expect(dump).toContain(hashToken(token));
    expect(await registry.authenticate(token)).toEqual({ status: 'valid', gateway: record });
    expect(await registry.authenticate(`${token}x`)).toEqual({ status: 'unknown' });
  });

  it('refuses a second gateway of the same name until the first is revoked', async () => {
    const registry = new GatewayRegistry(db.client, clock);
    const first = await registry.add('gw', { kind: 'nodes', nodes: ['A', 'B'] });
    await expect(registry.add('gw', { kind: 'nodes', nodes: ['C'] })).rejects.toBeInstanceOf(NameTakenError);
    expect(await registry.revoke('gw')).toBe(true);
    expect(await registry.revoke('gw')).toBe(false);
    const revoked = await registry.authenticate(first.token);
    expect(revoked.status).toBe('revoked');
    const second = await registry.add('gw', { kind: 'nodes', nodes: ['C'] });
    expect((await registry.authenticate(second.token)).status).toBe('valid');
    expect((await registry.authenticate(first.token)).status).toBe('revoked');
    expect((await registry.list()).map((g) => [g.name, g.scope])).toEqual([
      ['gw', { kind: 'nodes', nodes: ['C'] }],
    ]);
  });

  it('reports unknown names and invalid names', async () => {
    const registry = new GatewayRegistry(db.client, clock);
    await expect(registry.revoke('nope')).rejects.toBeInstanceOf(UnknownNameError);
    await expect(registry.add('bad name', { kind: 'district', district: 'D' })).rejects.toThrow(RangeError);
  });
});
