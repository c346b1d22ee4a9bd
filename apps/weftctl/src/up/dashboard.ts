// The Weft dashboard in local mode: `weftctl up` runs apps/dashboard (weft-dashboard) beside the
// mesh as a supervised component, reading weftd, Prometheus and the proxies' admin ports from
// mesh.json, and receiving the proxies' spans on its OTLP port. That port is picked before weftd
// starts (weftd's mesh config names it) and kept across restarts of the dashboard; the page's port
// is picked at the first start and kept too. When the user gave no mesh config, weftd gets one
// whose tracing provider is that port, sampling every request as Istio's demo profile does.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogLine } from './processes.ts';
import type { DashboardState, MeshState, RunState } from './state.ts';
import type { ListenAddress, Supervised } from './supervisor.ts';

/** mesh.ts's way of starting a supervised component. */
export type SpawnDashboard = (
  name: string,
  args: () => string[],
  file: string,
  how: { ready: (l: LogLine) => boolean; entry: () => { pid: number; run?: RunState } | undefined; listens?: () => ListenAddress[] },
) => Supervised;

export interface DashboardContext {
  /** The weft-dashboard bin. */
  bin: string;
  stateDir: string;
  /** The mesh's state: `dashboard` is set in it once the dashboard serves. */
  state: MeshState;
  spawn: SpawnDashboard;
  /** Writes mesh.json. */
  save: () => Promise<void>;
  progress: (component: string, text: string) => void;
  /** The OTLP port, picked before weftd starts (supervisor.ts freePort). */
  otlpPort: number;
  /** Whether weftd's mesh config is tracingMeshConfig (false: the user gave one, which decides where spans go). */
  tracing: boolean;
  /** `--owner-uid UID` (local mode's trust boundary), or none. */
  ownerFlags: readonly string[];
  logLevel: string;
  timeoutMs: number;
}

/**
 * Istio MeshConfig sending every proxy's spans to the dashboard over OTLP/HTTP: an
 * `opentelemetry` extension provider at 127.0.0.1:<otlpPort>/v1/traces, the default tracing
 * provider, 100% sampling (Istio's demo profile; its default profile samples 1%).
 */
export function tracingMeshConfig(otlpPort: number): string {
  return `# Written by weftctl up: the proxies' spans go to the Weft dashboard's OTLP receiver.
enableTracing: true
defaultConfig:
  tracing:
    sampling: 100
extensionProviders:
- name: weft-dashboard
  opentelemetry:
    service: 127.0.0.1
    port: ${otlpPort}
    http:
      path: /v1/traces
defaultProviders:
  tracing: [weft-dashboard]
`;
}

/** Writes tracingMeshConfig into the state directory; returns its path (for weftd --mesh-config). */
export async function writeTracingMeshConfig(stateDir: string, otlpPort: number): Promise<string> {
  const file = join(stateDir, 'tracing-mesh-config.yaml');
  await writeFile(file, tracingMeshConfig(otlpPort));
  return file;
}

const readyLine = (l: LogLine) => l.msg === 'dashboard ready';

/**
 * Starts the dashboard; resolves once it serves (state.dashboard set, a progress line with its
 * URL), or undefined after a progress line saying why it could not: the mesh runs without it.
 */
export async function startDashboard(c: DashboardContext): Promise<DashboardState | undefined> {
  const s = c.spawn(
    'dashboard',
    () => [c.bin, '--state-dir', c.stateDir, '--port', String(c.state.dashboard?.port ?? 0), '--otlp-port', String(c.otlpPort), '--log-level', c.logLevel, ...c.ownerFlags],
    'dashboard.log',
    {
      ready: readyLine,
      entry: () => c.state.dashboard,
      listens: () => [...(c.state.dashboard ? [{ address: '127.0.0.1', port: c.state.dashboard.port, what: 'the dashboard' }] : []), { address: '127.0.0.1', port: c.otlpPort, what: "the dashboard's OTLP receiver" }],
    },
  );
  try {
    const l = await s.waitFor(readyLine, 'it served', c.timeoutMs);
    const port = Number(l.port);
    c.state.dashboard = { pid: s.pid, port, url: `http://127.0.0.1:${port}/`, otlpPort: c.otlpPort, logFile: s.logFile, run: s.status() };
    await c.save();
    const traces = c.tracing ? `traces on OTLP/HTTP 127.0.0.1:${c.otlpPort}` : `its OTLP/HTTP receiver on 127.0.0.1:${c.otlpPort} gets traces only if your --mesh-config sends them there`;
    c.progress('dashboard', `${c.state.dashboard.url} (${traces}; Prometheus at ${c.state.dashboard.url}prometheus/; \`weftctl dashboard --open\`)`);
    return c.state.dashboard;
  } catch (e) {
    // Not restarted: an addon that cannot start says so once, and the mesh goes on.
    s.stop()?.signal('SIGKILL');
    c.progress('dashboard', `could not start, the mesh runs without it: ${(e as Error).message}; see ${s.logFile}`);
    return undefined;
  }
}
