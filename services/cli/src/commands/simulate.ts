import { GatewaySimulator } from '@streamgauge/simulator';
import type { Command } from 'commander';
import { CommandError, EXIT } from '../exitCodes.ts';
import { runUntilSignal } from '../lifetime.ts';

export interface SimulateOptions {
  nodes: string;
  rate: string;
  url: string;
  token?: string;
}

export function parsePositive(name: string, value: string, integer: boolean): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new CommandError(
      EXIT.usage,
      `--${name}: expected a positive ${integer ? 'whole ' : ''}number, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

export function simulateCommand(program: Command): void {
  program
    .command('simulate')
    .description('send simulated readings of a district through the HTTP API')
    .option('--nodes <n>', 'number of loggers', '12')
    .option('--rate <r>', 'readings per second, all loggers together', '12')
    .option('--url <url>', 'ingest base URL', 'http://127.0.0.1:8080')
    .option('--token <token>', 'gateway token (streamgauge gateways add ...)')
    .action(async (options: SimulateOptions) => {
      const simulator = new GatewaySimulator({
        url: options.url.replace(/\/$/, ''),
        ...(options.token !== undefined && { token: options.token }),
        nodes: parsePositive('nodes', options.nodes, true),
        rate: parsePositive('rate', options.rate, false),
        onError: (message) => console.error(`simulate: ${message}`),
      });
      simulator.start();
      const report = setInterval(() => console.log(`simulate: ${JSON.stringify(simulator.stats)}`), 10_000);
      await runUntilSignal(async () => {
        clearInterval(report);
        await simulator.stop();
        console.log(`simulate: ${JSON.stringify(simulator.stats)}`);
      });
    });
}
