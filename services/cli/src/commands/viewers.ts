import { ViewerRegistry } from '@streamgauge/redis';
import type { Command } from 'commander';
import { withOpsRedis } from '../context.ts';
import { translate } from './gateways.ts';

export function viewersCommand(program: Command): void {
  const viewers = program
    .command('viewers')
    .description('manage the read-only tokens that open the dashboard and its API');

  viewers
    .command('add')
    .description('issue a viewer token; it is printed once and only its hash is stored')
    .argument('<name>', 'viewer name (letters, digits, . _ -)')
    .option('--json', 'print {"name", "token"} as JSON')
    .action(async (name: string, options: { json?: boolean }) => {
      await withRegistry(async (registry) => {
        const { token, record } = await registry.add(name).catch(translate);
        if (options.json) {
          console.log(JSON.stringify({ name: record.name, token }));
        } else {
          console.log(`viewer ${record.name}`);
          console.log(`token: ${token}`);
          console.log(
            'This token is shown once. The dashboard asks for it; API clients send "Authorization: Bearer <token>".',
          );
        }
      });
    });

  viewers
    .command('list')
    .description('list viewers (tokens are never shown)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withRegistry(async (registry) => {
        const records = (await registry.list()).map(({ tokenHash: _, ...rest }) => rest);
        if (options.json) console.log(JSON.stringify(records));
        else if (records.length === 0) console.log('no viewers; add one with: streamgauge viewers add NAME');
        else
          for (const r of records) {
            console.log(`${r.name}  created ${r.createdAt}${r.revokedAt ? `  REVOKED ${r.revokedAt}` : ''}`);
          }
      });
    });

  viewers
    .command('revoke')
    .description('revoke a viewer token (the dashboard refuses it within 2 s)')
    .argument('<name>', 'viewer name')
    .action(async (name: string) => {
      await withRegistry(async (registry) => {
        const revoked = await registry.revoke(name).catch(translate);
        console.log(revoked ? `viewer ${name} revoked` : `viewer ${name} was already revoked`);
      });
    });
}

function withRegistry(work: (registry: ViewerRegistry) => Promise<void>): Promise<void> {
  return withOpsRedis((redis) => work(new ViewerRegistry(redis, { now: () => Date.now() })));
}
