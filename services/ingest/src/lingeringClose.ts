import type { Socket } from 'node:net';

/**
 * How long a refused client may go on sending after its answer: enough to
 * read the answer and stop, on any link a gateway uses; a client that does
 * not stop is cut off then.
 */
export const LINGER_MS = 2_000;

/**
 * Makes the server's close of `socket`, once the answer is written, a
 * lingering one (RFC 9112 §9.6): our side is shut for writing, what the
 * client still sends is read and dropped, and the socket goes when the
 * client closes its side or after `lingerMs`. Node would close at once, and
 * a close with unread bytes is a reset: the client's next write fails, and
 * an answer it had received but not yet read is lost with its socket.
 *
 * Node's server ends a `Connection: close` exchange with `destroySoon()`;
 * this socket's own replaces it. What arrives meanwhile still goes through
 * the server's parser into the answered request, which Node discards.
 */
export function closeLingering(socket: Socket, lingerMs = LINGER_MS): void {
  socket.destroySoon = function lingeringClose(this: Socket) {
    this.end();
    const timer = setTimeout(() => this.destroy(), lingerMs);
    this.once('close', () => clearTimeout(timer));
  };
}
