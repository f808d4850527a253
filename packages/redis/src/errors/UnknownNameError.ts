/** No gateway or viewer is registered under that name. */
export class UnknownNameError extends Error {
  override readonly name = 'UnknownNameError';
}
