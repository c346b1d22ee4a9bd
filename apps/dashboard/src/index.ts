// @weft/dashboard: the dashboard process (see README.md). Exported for weftctl and tests.
export { type DashboardOptions, startDashboard, type Dashboard } from './server/dashboard.ts';
