// `weftctl status`: every process of the local mesh as `weftctl up` supervises it (pid, state,
// restarts, uptime, last exit, log file), as `kubectl get pods` shows containers, and the config
// files weftd rejected. It reads mesh.json, so it answers while weftd itself is down.
import { alive } from '../up/processes.ts';
import type { MeshState, RunState } from '../up/state.ts';
import { NotAnsweringError, notAnsweringMessage, runningMesh, table } from './client.ts';
import { type ConfigProblem, rejectedConfig, rejectedConfigText } from './config-problems.ts';

export interface ComponentStatus {
  name: string;
  kind: 'weftd' | 'gateway' | 'sidecar' | 'app' | 'addon';
  pid: number;
  /** running, starting, restarting (waiting for its next start), crash-loop, exited, stopped. */
  state: string;
  restarts: number;
  /** Seconds since the current process started; absent when none runs. */
  uptimeSeconds?: number;
  lastExit?: RunState['lastExit'];
  /** When it restarts, while waiting. */
  nextStartAt?: string;
  logFile: string;
}

/** Every component in mesh.json, weftd first, then the gateway, each workload's app and sidecar, then the addons. */
export function componentStatuses(s: MeshState, now = Date.now()): ComponentStatus[] {
  const one = (name: string, kind: ComponentStatus['kind'], c: { pid: number; logFile: string; run?: RunState }): ComponentStatus => {
    const run = c.run;
    let state: string = run?.phase ?? 'running';
    if (state === 'waiting') state = run?.crashLoop ? 'crash-loop' : 'restarting';
    // mesh.json says what `weftctl up` last saw; a process that is gone is gone.
    if ((state === 'running' || state === 'starting') && !alive(c.pid)) state = 'exited';
    const runs = state === 'running' || state === 'starting';
    return {
      name,
      kind,
      pid: c.pid,
      state,
      restarts: run?.restarts ?? 0,
      ...(runs && run ? { uptimeSeconds: Math.max(0, Math.round((now - Date.parse(run.since)) / 1000)) } : {}),
      ...(run?.lastExit ? { lastExit: run.lastExit } : {}),
      ...(state === 'restarting' || state === 'crash-loop' ? (run?.nextStartAt ? { nextStartAt: run.nextStartAt } : {}) : {}),
      logFile: c.logFile,
    };
  };
  const out: ComponentStatus[] = [];
  if (s.weftd) out.push(one('weftd', 'weftd', s.weftd));
  if (s.ingress) out.push(one(s.ingress.name, 'gateway', s.ingress));
  const workloads = [...new Set([...s.apps.map((a) => a.workload), ...s.proxies.map((p) => p.name)])].sort();
  for (const w of workloads) {
    const app = s.apps.find((a) => a.workload === w);
    const proxy = s.proxies.find((p) => p.name === w);
    if (app) out.push(one(w, 'app', app));
    if (proxy) out.push(one(w, 'sidecar', proxy));
  }
  if (s.prometheus) out.push(one('prometheus', 'addon', s.prometheus));
  if (s.dashboard) out.push(one('dashboard', 'addon', s.dashboard));
  return out;
}

/** kubectl's ages: 45s, 3m12s, 2h5m, 3d4h. */
export function age(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60 ? `${seconds % 60}s` : ''}`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60) ? `${Math.floor((seconds % 3600) / 60)}m` : ''}`;
  return `${Math.floor(seconds / 86_400)}d${Math.floor((seconds % 86_400) / 3600) ? `${Math.floor((seconds % 86_400) / 3600)}h` : ''}`;
}

function stateText(c: ComponentStatus, now: number): string {
  if (c.nextStartAt) return `${c.state} (next start in ${Math.max(0, (Date.parse(c.nextStartAt) - now) / 1000).toFixed(1)}s)`;
  return c.state;
}

/** Exit status 0 when every component runs and weftd rejects no config file; 1 otherwise (so scripts can wait on it). */
export async function status(o: { stateDir: string; format: 'text' | 'json' }, io: { out: (s: string) => void; err: (s: string) => void }): Promise<number> {
  const s = await runningMesh(o.stateDir);
  const now = Date.now();
  const components = componentStatuses(s, now);
  let rejected: Map<string, ConfigProblem[]> | undefined;
  let weftdProblem: string | undefined;
  try {
    rejected = await rejectedConfig(s);
  } catch (e) {
    if (!(e instanceof NotAnsweringError)) throw e;
    weftdProblem = notAnsweringMessage(s, e);
  }
  const healthy = components.every((c) => c.state === 'running') && rejected?.size === 0;
  if (o.format === 'json') {
    io.out(`${JSON.stringify({ url: s.url, stateDir: s.stateDir, components, rejectedConfig: rejected ? Object.fromEntries(rejected) : null, ...(weftdProblem ? { weftd: weftdProblem } : {}) }, null, 2)}\n`);
    return healthy ? 0 : 1;
  }
  io.out(`mesh: ${s.url ?? 'starting'} (weftctl up pid ${s.pid}, since ${s.startedAt}; state ${s.stateDir})\n`);
  const rows = components.map((c) => [
    c.name,
    c.kind,
    String(c.pid),
    stateText(c, now),
    String(c.restarts),
    c.uptimeSeconds !== undefined ? age(c.uptimeSeconds) : '-',
    c.lastExit ? `${c.lastExit.reason} ${age(Math.max(0, Math.round((now - Date.parse(c.lastExit.at)) / 1000)))} ago` : '-',
    c.logFile,
  ]);
  io.out(table(['NAME', 'KIND', 'PID', 'STATE', 'RESTARTS', 'UPTIME', 'LAST EXIT', 'LOG'], rows));
  if (weftdProblem) io.out(`config: unknown: ${weftdProblem}\n`);
  else if (rejected && rejected.size > 0) io.out(rejectedConfigText(rejected));
  else io.out('config: every file in the config directory accepted\n');
  return healthy ? 0 : 1;
}
