import { connect } from 'node:net';
import { RedisServer, redisServerOnPath } from '@streamgauge/testkit';
import { Redis, ReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  DeadLetterGoneError,
  isUnavailable,
  LeaseLostError,
  PayloadGoneError,
  RedisUnavailableError,
  ScriptRefusal,
} from '../src/index.ts';

/** The error a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure');
}

describe('isUnavailable', () => {
  it('is false for our own errors and for bugs: retrying cannot fix them', () => {
    expect(isUnavailable(new LeaseLostError('readings'))).toBe(false);
    expect(isUnavailable(new PayloadGoneError('run r1: the payload is gone'))).toBe(false);
    expect(isUnavailable(new DeadLetterGoneError('readings/1-0'))).toBe(false);
    expect(isUnavailable(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(false);
    expect(isUnavailable(new RangeError('Maximum call stack size exceeded'))).toBe(false);
    expect(isUnavailable(new Error('boom'))).toBe(false);
    expect(isUnavailable('a string')).toBe(false);
    expect(isUnavailable(undefined)).toBe(false);
  });

  it('is true for RedisUnavailableError and for replies naming a server condition, false for other replies', () => {
    expect(isUnavailable(new RedisUnavailableError(new Error('Connection is closed.')))).toBe(true);
    for (const reply of [
      'LOADING Redis is loading',
      'OOM command not allowed',
      'READONLY replica',
      'BUSY script',
    ]) {
      expect(isUnavailable(new ReplyError(reply)), reply).toBe(true);
    }
    expect(isUnavailable(new ReplyError('LEASE_LOST {readings}:lease is held by other'))).toBe(false);
    // What runScript makes of such a reply: a verdict, never a reason to wait and retry.
    expect(
      isUnavailable(new ScriptRefusal('commitShard', 'LEASE_LOST', '{readings}:lease is held by other')),
    ).toBe(false);
    expect(isUnavailable(new ReplyError('WRONGTYPE Operation against a key'))).toBe(false);
  });

  it('is true for what ioredis and the socket throw when Redis cannot be reached', async () => {
    // Not connected, offline queue off (ingest's fail-fast connection).
    const offline = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    offline.on('error', () => {});
    const notWriteable = await failure(offline.get('k'));
    expect(notWriteable.message).toMatch(/Stream isn't writeable/);
    expect(isUnavailable(notWriteable)).toBe(true);
    offline.disconnect();

    // Retries exhausted while the connection is refused.
    const refused = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    refused.on('error', () => {});
    const exhausted = await failure(refused.get('k'));
    expect(exhausted.name).toBe('MaxRetriesPerRequestError');
    expect(isUnavailable(exhausted)).toBe(true);
    refused.disconnect();

    // A closed connection.
    const closed = new Redis('redis://127.0.0.1:1', { lazyConnect: true, retryStrategy: () => null });
    closed.on('error', () => {});
    closed.disconnect();
    const gone = await failure(closed.get('k'));
    expect(gone.message).toMatch(/Connection is closed/);
    expect(isUnavailable(gone)).toBe(true);

    // The socket's own error.
    const socket = await new Promise<Error>((resolve) => {
      const s = connect(1, '127.0.0.1');
      s.on('error', resolve);
    });
    expect((socket as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(isUnavailable(socket)).toBe(true);
    // What ioredis rejects commands with when a connection or a cluster is lost.
    for (const message of [
      'Command aborted due to connection close',
      "Cluster isn't ready and enableOfflineQueue options is false",
      'Cluster is disconnected.',
    ]) {
      expect(isUnavailable(new Error(message)), message).toBe(true);
    }
    for (const code of ['ECONNRESET', 'EPIPE', 'ETIMEDOUT']) {
      expect(isUnavailable(Object.assign(new Error(`write ${code}`), { code })), code).toBe(true);
    }
  });

  it.skipIf(!redisServerOnPath())('is true for a command that timed out (Redis hangs)', async () => {
    const server = await RedisServer.start();
    const client = new Redis(server.url, { commandTimeout: 200 });
    try {
      await client.ping();
      server.pause();
      const timedOut = await failure(client.get('k'));
      expect(timedOut.message).toMatch(/Command timed out/);
      expect(isUnavailable(timedOut)).toBe(true);
    } finally {
      server.resume();
      client.disconnect();
      await server.dispose();
    }
  });
});
