import type { GatewayLimits, GatewayScope } from '@streamgauge/core';
import { describeScope } from '@streamgauge/core';
import { GatewayRegistry, NameTakenError, NodeOwnedError, UnknownNameError } from '@streamgauge/redis';
import type { Command } from 'commander';
import { withOpsRedis } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';

interface AddOptions {
  nodes?: string;
  district?: string;
  json?: boolean;
  readingsPerSecond?: string;
  requestsPerSecond?: string;
}

export function gatewaysCommand(program: Command): void {
  const gateways = program
    .command('gateways')
    .description('manage the tokens sensor gateways authenticate with');

  gateways
    .command('add')
    .description('issue a token for a gateway; it is printed once and only its hash is stored')
    .argument('<name>', 'gateway name (letters, digits, . _ -)')
    .option('--nodes <ids>', 'comma-separated node ids the gateway may send')
    .option('--district <id>', 'the district whose nodes the gateway may send')
    .option('--readings-per-second <n>', 'its own readings rate (0: no limit); default INGEST_RATE_READINGS')
    .option('--requests-per-second <n>', 'its own requests rate (0: no limit); default INGEST_RATE_REQUESTS')
    .option('--json', 'print {"name", "token"} as JSON')
    .action(async (name: string, options: AddOptions) => {
      const scope = scopeFrom(options);
      const limits = limitsFrom(options);
      await withRegistry(async (registry) => {
        const { token, record } = await registry.add(name, scope, limits).catch(translate);
        if (options.json) {
          console.log(JSON.stringify({ name: record.name, token }));
        } else {
          console.log(`gateway ${record.name} (${describeScope(record.scope)})`);
          console.log(`token: ${token}`);
          console.log('This token is shown once. Send it as "Authorization: Bearer <token>".');
        }
      });
    });

  gateways
    .command('list')
    .description('list gateways and their scopes (tokens are never shown)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withRegistry(async (registry) => {
        const records = await registry.list();
        if (options.json) {
          console.log(JSON.stringify(records.map(({ tokenHash: _, ...rest }) => rest)));
          return;
        }
        if (records.length === 0) {
          console.log('no gateways; add one with: streamgauge gateways add NAME --district D');
          return;
        }
        for (const r of records) {
          const state = r.revokedAt ? `revoked ${r.revokedAt}` : 'active';
          const limits = r.limits === undefined ? '' : `\tlimits ${JSON.stringify(r.limits)}`;
          console.log(`${r.name}\t${describeScope(r.scope)}\tcreated ${r.createdAt}\t${state}${limits}`);
        }
      });
    });

  gateways
    .command('revoke')
    .description('revoke a gateway token; requests with it get 403 from then on')
    .argument('<name>', 'gateway name')
    .action(async (name: string) => {
      await withRegistry(async (registry) => {
        const changed = await registry.revoke(name).catch(translate);
        console.log(changed ? `gateway ${name} revoked` : `gateway ${name} was already revoked`);
      });
    });
}

function limitsFrom(options: AddOptions): Partial<GatewayLimits> {
  const rate = (flag: string, value: string | undefined) => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
      throw new CommandError(EXIT.usage, `${flag}: expected a number ≥ 0, got ${JSON.stringify(value)}`);
    }
    return n;
  };
  const readingsPerSecond = rate('--readings-per-second', options.readingsPerSecond);
  const requestsPerSecond = rate('--requests-per-second', options.requestsPerSecond);
  return {
    ...(readingsPerSecond === undefined ? {} : { readingsPerSecond }),
    ...(requestsPerSecond === undefined ? {} : { requestsPerSecond }),
  };
}

function scopeFrom(options: AddOptions): GatewayScope {
  if ((options.nodes === undefined) === (options.district === undefined)) {
    throw new CommandError(EXIT.usage, 'give exactly one of --nodes ID,ID... or --district D');
  }
  if (options.district !== undefined) {
    const district = options.district.trim();
    if (district === '') throw new CommandError(EXIT.usage, '--district must not be empty');
    return { kind: 'district', district };
  }
  const nodes = [
    ...new Set(
      (options.nodes ?? '')
        .split(',')
        .map((id) => id.trim())
        .filter(Boolean),
    ),
  ];
  if (nodes.length === 0) throw new CommandError(EXIT.usage, '--nodes needs at least one node id');
  return { kind: 'nodes', nodes };
}

function withRegistry(work: (registry: GatewayRegistry) => Promise<void>): Promise<void> {
  return withOpsRedis((redis) => work(new GatewayRegistry(redis, { now: () => Date.now() })));
}

/** A registry's refusal (name taken, unknown, node owned, bad name) as the command's exit. */
export function translate(error: unknown): never {
  if (
    error instanceof NameTakenError ||
    error instanceof UnknownNameError ||
    error instanceof NodeOwnedError
  ) {
    throw new CommandError(EXIT.failure, error.message);
  }
  if (error instanceof RangeError) throw new CommandError(EXIT.usage, error.message);
  throw error;
}
