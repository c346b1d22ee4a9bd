// Where a running local mesh is described for the other commands (`apply`, `proxy-status`,
// `proxy-config`, `describe`): <state dir>/mesh.json, written by `weftctl up` as components come up
// and removed when it stops. The state directory is --state-dir, else $WEFT_STATE_DIR, else
// ~/.weft/local.
import { readFileSync } from 'node:fs';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { alive } from './processes.ts';

/**
 * How a component has run under `weftctl up`'s supervision (written on every start, exit and
 * restart): what `weftctl status` and `proxy-status` show. Absent in a mesh.json from before
 * supervision.
 */
export interface RunState {
  /** starting: spawned, not yet ready; running: ready; waiting: exited, restarts at `nextStartAt`; exited: not restarted (the mesh was still starting); stopped: by Ctrl-C or `weftctl down`. */
  phase: 'starting' | 'running' | 'waiting' | 'exited' | 'stopped';
  /** Times it was started again after exiting. */
  restarts: number;
  /** When the current process (or the last one) started, ISO time. */
  since: string;
  /** Exits in a row each soon after its start (reset by a run that lasts); the backoff grows with it. */
  failures: number;
  /** `failures` reached the crash-loop threshold: it keeps being retried at the longest backoff. */
  crashLoop: boolean;
  lastExit?: { at: string; reason: string; ranMs: number };
  nextStartAt?: string;
}

export interface ProxyState {
  /** `sidecar` or `router` (the ingress gateway). */
  type: 'sidecar' | 'router';
  /** The workload (WorkloadEntry) name, also the pod name. */
  name: string;
  namespace: string;
  /** pilot's node id: sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local. */
  nodeId: string;
  address: string;
  serviceAccount: string;
  labels: Record<string, string>;
  pid: number;
  adminAddress: string;
  adminPort: number;
  healthPort?: number;
  logFile: string;
  run?: RunState;
}

export interface AppState {
  /** The workload it serves (`reviews-v2`). */
  workload: string;
  service: string;
  version: string;
  address: string;
  port: number;
  pid: number;
  logFile: string;
  run?: RunState;
}

export interface WeftdState {
  pid: number;
  /** The plaintext (unauthenticated) xDS port; absent when it is off (`weftctl up` without --plaintext-xds). */
  xdsPort?: number;
  caPort: number;
  monitoringPort: number;
  logFile: string;
  /** Where its ports listen when not 127.0.0.1 (a mesh of network-namespace pods). */
  address?: string;
  run?: RunState;
}

/** The Prometheus addon (apps/weftctl/src/up/prometheus.ts): absent when it is off or not installed. */
export interface PrometheusState {
  pid: number;
  /** On 127.0.0.1. */
  port: number;
  /** http://127.0.0.1:<port>/prometheus/ (every path is under /prometheus/, so a reverse proxy can serve it there). */
  url: string;
  /** Basic auth: user `weft`, this file's content the password (mode 0600). */
  passwordFile: string;
  logFile: string;
  run?: RunState;
}

/** The Weft dashboard (apps/dashboard, apps/weftctl/src/up/dashboard.ts): absent when the addons are off or it could not start. */
export interface DashboardState {
  pid: number;
  /** The page and API on 127.0.0.1. */
  port: number;
  /** http://127.0.0.1:<port>/ */
  url: string;
  /** Its OTLP/HTTP trace receiver on 127.0.0.1 (POST /v1/traces), where the proxies export spans. */
  otlpPort: number;
  logFile: string;
  run?: RunState;
}

export interface MeshState {
  /** The `weftctl up` process (or the one that called startLocalMesh). */
  pid: number;
  /** Its start time (/proc/<pid>/stat), so that a reused pid is not taken for it. */
  pidStart?: string;
  startedAt: string;
  /** Set once every proxy is synced and the page answers. */
  readyAt?: string;
  url?: string;
  stateDir: string;
  configDir: string;
  caDir: string;
  weftd?: WeftdState;
  ingress?: ProxyState & { httpPort: number };
  proxies: ProxyState[];
  apps: AppState[];
  prometheus?: PrometheusState;
  dashboard?: DashboardState;
}

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.WEFT_STATE_DIR || join(homedir(), '.weft', 'local'));
}

export function stateFile(stateDir: string): string {
  return join(stateDir, 'mesh.json');
}

export async function writeState(s: MeshState): Promise<void> {
  const file = stateFile(s.stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(s, null, 2)}\n`);
  await rename(tmp, file);
}

export async function readState(stateDir: string): Promise<MeshState | undefined> {
  try {
    return JSON.parse(await readFile(stateFile(stateDir), 'utf8')) as MeshState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${stateFile(stateDir)} cannot be read: ${(e as Error).message}`);
  }
}

/** A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); undefined when it is gone. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that started the mesh described by `s` still runs. */
export function meshOwnerAlive(s: MeshState): boolean {
  if (!alive(s.pid)) return false;
  return s.pidStart === undefined || processStart(s.pid) === s.pidStart;
}

/** Every pid the state names. */
export function statePids(s: MeshState): number[] {
  return [...(s.weftd ? [s.weftd.pid] : []), ...(s.ingress ? [s.ingress.pid] : []), ...s.proxies.map((p) => p.pid), ...s.apps.map((a) => a.pid), ...(s.prometheus ? [s.prometheus.pid] : []), ...(s.dashboard ? [s.dashboard.pid] : [])];
}

/** The environment variable every component of a mesh carries: its state directory. */
export const meshEnvVar = 'WEFT_LOCAL_MESH';

/** Whether `pid` is a component of the mesh kept in `stateDir` (its environment says so): pids are reused. */
export async function isMeshProcess(pid: number, stateDir: string): Promise<boolean> {
  if (!alive(pid)) return false;
  try {
    const env = await readFile(`/proc/${pid}/environ`, 'utf8');
    return env.split('\0').includes(`${meshEnvVar}=${stateDir}`);
  } catch {
    return false;
  }
}

/**
 * Every process whose environment names the mesh of `stateDir`, mesh.json or not: a component
 * restarted after mesh.json was last written, or a process a component started.
 */
export async function markedProcesses(stateDir: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    if (await isMeshProcess(Number(entry), stateDir)) out.push(Number(entry));
  }
  return out;
}

export class NoMeshError extends Error {}

/** The running mesh in `stateDir`; throws NoMeshError (with what to do) when there is none. */
export async function runningMesh(stateDir: string): Promise<MeshState> {
  const s = await readState(stateDir);
  if (!s || !meshOwnerAlive(s)) throw new NoMeshError(`no local mesh is running (state directory ${stateDir}); start one with \`weftctl up\``);
  if (!s.weftd) throw new NoMeshError(`the local mesh in ${stateDir} is still starting; try again in a moment`);
  return s;
}
