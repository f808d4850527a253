export type { DashboardOptions, RunningDashboard } from './server.ts';
export { startDashboard } from './server.ts';
