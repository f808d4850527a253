/** A gateway of that name is registered and not revoked. */
export class GatewayExistsError extends Error {
  override readonly name = 'GatewayExistsError';
}
