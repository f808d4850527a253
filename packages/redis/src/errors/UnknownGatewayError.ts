/** No gateway is registered under that name. */
export class UnknownGatewayError extends Error {
  override readonly name = 'UnknownGatewayError';
}
