import type { ViewerRegistry } from '@streamgauge/redis';

/** Whether only this machine can reach an address the service listens on. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export type Access =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly status: 401 | 403; readonly message: string };

const REMEMBERED_MS = 2_000;
/** What ViewerRegistry issues: `sgv_` and 32 random bytes in base64url. */
const VIEWER_TOKEN = /^sgv_[A-Za-z0-9_-]{43}$/;

/**
 * Who may read: anyone when the service listens on loopback only, otherwise
 * holders of a viewer token. A token sent is checked either way, so a
 * gateway token is refused everywhere. Answers are remembered for 2 s, so
 * 100 clients polling do not each ask Redis; a revocation holds within that.
 */
export class ViewerAccess {
  readonly #viewers: ViewerRegistry;
  readonly #required: boolean;
  readonly #remembered = new Map<string, { access: Access; until: number }>();

  constructor(viewers: ViewerRegistry, required: boolean) {
    this.#viewers = viewers;
    this.#required = required;
  }

  get required(): boolean {
    return this.#required;
  }

  async check(token: string | undefined, now: number): Promise<Access> {
    if (token === undefined || token === '') {
      return this.#required
        ? {
            allowed: false,
            status: 401,
            message: 'a viewer token is required (Authorization: Bearer <token>)',
          }
        : { allowed: true };
    }
    // Not shaped like a viewer token: refused without asking Redis or remembering it.
    if (!VIEWER_TOKEN.test(token)) return { allowed: false, status: 401, message: 'not a viewer token' };
    const remembered = this.#remembered.get(token);
    if (remembered !== undefined && remembered.until > now) return remembered.access;
    const answer = await this.#viewers.authenticate(token);
    const access: Access =
      answer.status === 'valid'
        ? { allowed: true }
        : answer.status === 'revoked'
          ? { allowed: false, status: 403, message: `viewer ${answer.viewer.name} was revoked` }
          : { allowed: false, status: 401, message: 'not a viewer token' };
    if (this.#remembered.size > 10_000) this.#remembered.clear();
    this.#remembered.set(token, { access, until: now + REMEMBERED_MS });
    return access;
  }
}

/** The token of a request: `Authorization: Bearer`, or `access_token` (an EventSource cannot set headers). */
export function tokenOf(authorization: string | undefined, query: unknown): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (match) return match[1];
  const fromQuery = (query as { access_token?: unknown } | undefined)?.access_token;
  return typeof fromQuery === 'string' ? fromQuery : undefined;
}
