/** No answer came within the time allowed (`withTimeout`). */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}
