/** A gateway or viewer of that name is registered and not revoked. */
export class NameTakenError extends Error {
  override readonly name = 'NameTakenError';
}
