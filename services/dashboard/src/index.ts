export type { Asset } from './assets.ts';
export { buildAssets } from './assets.ts';
export type { DashboardOptions, RunningDashboard } from './server.ts';
export { startDashboard } from './server.ts';
