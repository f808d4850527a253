import type { Reading } from '@streamgauge/core';

export interface PostOptions {
  /** Readings per request. */
  readonly batch?: number;
  readonly token?: string;
  /** Resend a request answered 503 until it gets a 200, as a gateway does. */
  readonly resendUnavailable?: boolean;
  /** Counts every response by status. */
  readonly statuses?: Map<number, number>;
}

/**
 * Posts readings to ingest's HTTP API, `batch` per request, in order; throws
 * on any answer but 200 (and 503 when resending). A 429 is resent after its
 * Retry-After, as a gateway does. Returns what ingest said it accepted and
 * found duplicate.
 */
export async function postReadings(
  url: string,
  readings: readonly Reading[],
  options: PostOptions = {},
): Promise<{ accepted: number; duplicates: number }> {
  const batch = options.batch ?? 1000;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let accepted = 0;
  let duplicates = 0;
  for (let i = 0; i < readings.length; i += batch) {
    const body = JSON.stringify(readings.slice(i, i + batch));
    for (;;) {
      const response = await fetch(`${url}/v1/readings`, { method: 'POST', headers, body });
      options.statuses?.set(response.status, (options.statuses.get(response.status) ?? 0) + 1);
      const text = await response.text();
      if (response.status === 200) {
        const reply = JSON.parse(text) as { accepted: number; duplicates: number };
        accepted += reply.accepted;
        duplicates += reply.duplicates;
        break;
      }
      if (response.status === 429) {
        await new Promise((r) => setTimeout(r, Number(response.headers.get('retry-after') ?? 1) * 1000));
        continue;
      }
      if (response.status !== 503 || !options.resendUnavailable) {
        throw new Error(`ingest answered ${response.status}: ${text}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { accepted, duplicates };
}
