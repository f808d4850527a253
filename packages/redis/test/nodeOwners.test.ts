import { ManualClock } from '@streamgauge/core';
import { useRedis } from '@streamgauge/testkit';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { GatewayRegistry, NodeOwnedError, NodeOwners, RateLimits } from '../src/index.ts';

const clock = new ManualClock(Date.UTC(2026, 11, 3, 12));
const db = useRedis({ flushEach: true });

describe('NodeOwners', () => {
  it("binds new nodes to the claiming district within the hourly cap, counted per gateway and Redis' hour", async () => {
    const owners = new NodeOwners(db.client, clock);
    const claim = (gateway: string, nodes: string[], cap: number) =>
      owners.claim({ gateway, districts: new Map(nodes.map((n) => [n, 'SEL'])), newNodesPerHour: cap });
    expect(Object.fromEntries(await claim('a', ['N1', 'N2', 'N3'], 2))).toEqual({
      N1: { district: 'SEL' },
      N2: { district: 'SEL' },
      N3: {},
    });
    // Another gateway has its own count.
    expect((await claim('b', ['N3'], 2)).get('N3')).toEqual({ district: 'SEL' });
    expect((await claim('a', ['N4'], 2)).get('N4')).toEqual({});
    // The count is kept per hour of Redis' clock, for two hours: the next hour starts from zero.
    const [seconds] = await db.client.time();
    const counter = `{gateways}:joined:a:${Math.floor(Number(seconds) / 3600)}`;
    expect(await db.client.get(counter)).toBe('2');
    expect(await db.client.ttl(counter)).toBeGreaterThan(7_000);
    await db.client.del(counter);
    expect((await claim('a', ['N4'], 2)).get('N4')).toEqual({ district: 'SEL' });
  });

  it("never binds a gateway's named node to a district gateway, and lets its owner bind it", async () => {
    await new GatewayRegistry(db.client, clock).add('pump', { kind: 'nodes', nodes: ['P1'] });
    const owners = new NodeOwners(db.client);
    const byDistrict = await owners.claim({
      gateway: 'hostile',
      districts: new Map([['P1', 'X']]),
      newNodesPerHour: 100,
    });
    expect(byDistrict.get('P1')).toEqual({ gateway: 'pump' });
    const byOwner = await owners.claim({
      gateway: 'pump',
      districts: new Map([['P1', 'SEL']]),
      newNodesPerHour: -1,
    });
    expect(byOwner.get('P1')).toEqual({ gateway: 'pump', district: 'SEL' });
  });

  it('assigns, lists and releases; a node a live gateway names is not released', async () => {
    const registry = new GatewayRegistry(db.client, clock);
    await registry.add('pump', { kind: 'nodes', nodes: ['P1'] });
    const owners = new NodeOwners(db.client);
    await owners.assign(['A', 'P1'], 'SEL');
    expect(await owners.list()).toEqual([
      { node: 'A', district: 'SEL' },
      { node: 'P1', district: 'SEL', gateway: 'pump' },
    ]);
    await expect(owners.release(['A', 'P1'])).rejects.toThrow(new NodeOwnedError('P1', 'pump').message);
    expect((await owners.list()).length).toBe(2);
    await registry.revoke('pump');
    expect(await owners.release(['A', 'P1', 'NEVER'])).toBe(2);
    expect(await owners.list()).toEqual([]);
  });

  it('announces changes, so other processes forget what they remembered', async () => {
    const subscriber = new Redis(db.url);
    const heard: string[] = [];
    await subscriber.subscribe('streamgauge:gateways');
    subscriber.on('message', (_channel, message: string) => heard.push(message));
    try {
      const registry = new GatewayRegistry(db.client, clock);
      await registry.add('pump', { kind: 'nodes', nodes: ['P1'] });
      await new NodeOwners(db.client).assign(['A'], 'SEL');
      await registry.revoke('pump');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(heard).toEqual(['nodes', 'nodes', 'gateways']);
    } finally {
      subscriber.disconnect();
    }
  });
});

describe('GatewayRegistry and node ownership', () => {
  it('refuses a node another live gateway names, and hands it over once that one is revoked', async () => {
    const registry = new GatewayRegistry(db.client, clock);
    await registry.add('old', { kind: 'nodes', nodes: ['P1', 'P2'] });
    await expect(registry.add('new', { kind: 'nodes', nodes: ['P2', 'P3'] })).rejects.toThrow(
      'node "P2" is named by gateway "old"; revoke that gateway first',
    );
    expect(await db.client.hgetall('{gateways}:node-gateway')).toEqual({ P1: 'old', P2: 'old' });
    await registry.revoke('old');
    await registry.add('new', { kind: 'nodes', nodes: ['P2', 'P3'] });
    expect(await db.client.hgetall('{gateways}:node-gateway')).toEqual({ P1: 'old', P2: 'new', P3: 'new' });
  });

  it("releases a revoked gateway's nodes when its name is taken again without them", async () => {
    const registry = new GatewayRegistry(db.client, clock);
    await registry.add('pump', { kind: 'nodes', nodes: ['P1', 'P2'] });
    await registry.revoke('pump');
    await registry.add('pump', { kind: 'district', district: 'SEL' });
    expect(await db.client.hgetall('{gateways}:node-gateway')).toEqual({});
    await registry.revoke('pump');
    await registry.add('pump', { kind: 'nodes', nodes: ['P2'] });
    expect(await db.client.hgetall('{gateways}:node-gateway')).toEqual({ P2: 'pump' });
  });

  it('refuses node ids outside the alphabet', async () => {
    const registry = new GatewayRegistry(db.client, clock);
    await expect(registry.add('gw', { kind: 'nodes', nodes: ['ok', 'odd\u200b'] })).rejects.toThrow(
      RangeError,
    );
  });
});

describe('RateLimits', () => {
  it('gives a burst at once, then units at the rate; a refused take takes nothing', async () => {
    const limits = new RateLimits(db.client);
    const rate = { perSecond: 10, burst: 5 };
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) waits.push(await limits.take('bucket', rate, 1));
    expect(waits.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    // One unit comes back every 100 ms.
    expect(waits[5]).toBeGreaterThan(80);
    expect(waits[5]).toBeLessThanOrEqual(100);
    // More than is there: refused, with the wait for all of it, and nothing taken.
    const big = await limits.take('bucket', rate, 5);
    expect(big).toBeGreaterThan(450);
    expect(big).toBeLessThanOrEqual(500);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await limits.take('bucket', rate, 1)).toBe(0);
    // The key expires once the bucket is full again: idle senders cost nothing.
    const ttl = await db.client.pttl('bucket');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(501);
  });
});
