import { isNodeId, NODE_ID_RULE } from '@streamgauge/core';
import { NodeOwnedError, NodeOwners } from '@streamgauge/redis';
import type { Command } from 'commander';
import { configFromEnv, opsRedis } from '../context.ts';
import { CommandError, EXIT } from '../exitCodes.ts';

export function nodesCommand(program: Command): void {
  const nodes = program
    .command('nodes')
    .description('which district and gateway own each node; how nodes join and move');

  nodes
    .command('list')
    .description('list nodes with an owner: their district and the gateway that names them')
    .option('--district <id>', 'only the nodes of this district')
    .option('--json', 'print JSON')
    .action(async (options: { district?: string; json?: boolean }) => {
      await withOwners(async (owners) => {
        const all = await owners.list();
        const listed =
          options.district === undefined ? all : all.filter((n) => n.district === options.district);
        if (options.json) {
          console.log(JSON.stringify(listed));
          return;
        }
        if (listed.length === 0) {
          console.log(
            'no nodes with an owner; they join when a gateway first sends them, or: streamgauge nodes assign ID --district D',
          );
          return;
        }
        for (const n of listed) {
          console.log(`${n.node}\tdistrict ${n.district ?? '-'}\tgateway ${n.gateway ?? '-'}`);
        }
      });
    });

  nodes
    .command('assign')
    .description(
      "bind nodes to a district, whatever they were bound to: that district's gateways may then write them",
    )
    .argument('<ids...>', 'node ids (space or comma separated)')
    .requiredOption('--district <id>', 'the district')
    .action(async (ids: string[], options: { district: string }) => {
      const district = options.district.trim();
      if (district === '') throw new CommandError(EXIT.usage, '--district must not be empty');
      const list = nodeIds(ids);
      await withOwners(async (owners) => {
        await owners.assign(list, district);
        console.log(`${list.length} node${list.length === 1 ? '' : 's'} assigned to district ${district}`);
      });
    });

  nodes
    .command('release')
    .description('unbind nodes from their district (and from a revoked gateway), so they join anew')
    .argument('<ids...>', 'node ids (space or comma separated)')
    .action(async (ids: string[]) => {
      const list = nodeIds(ids);
      await withOwners(async (owners) => {
        const released = await owners.release(list).catch((error: unknown) => {
          if (error instanceof NodeOwnedError) throw new CommandError(EXIT.failure, error.message);
          throw error;
        });
        console.log(`${released} of ${list.length} node${list.length === 1 ? '' : 's'} released`);
      });
    });
}

function nodeIds(args: readonly string[]): string[] {
  const ids = [
    ...new Set(
      args
        .flatMap((a) => a.split(','))
        .map((id) => id.trim())
        .filter(Boolean),
    ),
  ];
  const bad = ids.find((id) => !isNodeId(id));
  if (bad !== undefined)
    throw new CommandError(EXIT.usage, `node id ${JSON.stringify(bad)}: use ${NODE_ID_RULE}`);
  if (ids.length === 0) throw new CommandError(EXIT.usage, 'give at least one node id');
  return ids;
}

async function withOwners(work: (owners: NodeOwners) => Promise<void>): Promise<void> {
  const redis = await opsRedis(configFromEnv());
  try {
    await work(new NodeOwners(redis));
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}
