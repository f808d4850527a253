import { startDashboard } from '@streamgauge/dashboard';
import type { Command } from 'commander';
import { configFromEnv } from '../context.ts';
import { runUntilSignal } from '../lifetime.ts';
import { createLogger } from '../logger.ts';

export function dashboardCommand(program: Command): void {
  program
    .command('dashboard')
    .description('serve the dashboard page, its read API and live events (reads only Redis)')
    .option('--port <port>', 'port to listen on (DASHBOARD_PORT, default 8090)')
    .option(
      '--host <host>',
      'address to listen on (DASHBOARD_HOST, default 0.0.0.0; off loopback a viewer token is required)',
    )
    .action(async (options: { port?: string; host?: string }) => {
      const config = configFromEnv({ DASHBOARD_PORT: options.port, DASHBOARD_HOST: options.host });
      const logger = createLogger(config, 'dashboard');
      const dashboard = await startDashboard(config, logger);
      console.log(`dashboard  ${dashboard.url}/`);
      await runUntilSignal(() => dashboard.stop());
    });
}
