/** A node that a live node-scoped gateway names: it stays with that gateway. */
export class NodeOwnedError extends Error {
  override readonly name = 'NodeOwnedError';
  readonly node: string;
  readonly gateway: string;

  constructor(node: string, gateway: string) {
    super(
      `node ${JSON.stringify(node)} is named by gateway ${JSON.stringify(gateway)}; revoke that gateway first`,
    );
    this.node = node;
    this.gateway = gateway;
  }
}
