// `weftctl up`: the local mesh in the foreground. One line per component as it comes up, then
// `ready: <url>`; Ctrl-C (SIGINT) or SIGTERM stops every process it started.
import { checkLoopbackNet } from './topology.ts';
import { type LocalMeshOptions, startLocalMesh } from './mesh.ts';
import { type SupervisionEvent, seconds } from './supervisor.ts';

export interface UpFlags {
  stateDir: string;
  port?: string | undefined;
  loopbackNet?: string | undefined;
  logLevel?: string | undefined;
  /** Istio MeshConfig YAML for weftd (access logs, tracing...). */
  meshConfig?: string | undefined;
  timeout?: string | undefined;
  /** Start with an empty config directory (drop what `weftctl apply` added in earlier runs). */
  fresh?: boolean | undefined;
  /** Keep weftd's plaintext, unauthenticated xDS port open. */
  plaintextXds?: boolean | undefined;
  /** Without the addons (Prometheus, the dashboard). */
  noAddons?: boolean | undefined;
}

export interface UpIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

export class UpUsageError extends Error {}

function pad(s: string, n: number): string {
  return s.length >= n ? `${s} ` : s + ' '.repeat(n - s.length);
}

/** The line `weftctl up` prints for a supervision event. */
export function supervisionLine(e: SupervisionEvent): string {
  switch (e.type) {
    case 'exited':
      return e.restartInMs === undefined
        ? `${e.name} ${e.reason}; see ${e.logFile}`
        : `${e.name} ${e.reason} after ${seconds(e.ranMs)}; restarting in ${seconds(e.restartInMs)} (log ${e.logFile})`;
    case 'restarted':
      return `${e.name} started again (pid ${e.pid}, restart ${e.restarts})`;
    case 'ready':
      return `${e.name} is back (pid ${e.pid}, restart ${e.restarts}; ${seconds(e.downMs)} after it exited)`;
    case 'crash-loop':
      return `CRASH LOOP: ${e.name} exited ${e.failures} times in a row, each soon after starting (last: ${e.reason}); retrying every ${seconds(e.retryEveryMs)} while the rest of the mesh keeps running; see ${e.logFile}; Ctrl-C stops everything`;
    case 'ports-busy':
      return `cannot restart ${e.name}: ${e.busy.map((b) => `${b.address}:${b.port} (${b.what})`).join(', ')} in use by another process; retrying in ${seconds(e.restartInMs)} (free it, or Ctrl-C to stop the mesh)`;
    case 'start-failed':
      return `could not start ${e.name} again: ${e.error}; retrying in ${seconds(e.restartInMs)}`;
  }
}

/** Runs until a signal; resolves to the exit status. */
export async function up(flags: UpFlags, io: UpIo): Promise<number> {
  let ingressPort: number | undefined;
  if (flags.port !== undefined) {
    ingressPort = Number(flags.port);
    if (!Number.isInteger(ingressPort) || ingressPort < 0 || ingressPort > 65535) throw new UpUsageError(`--port must be a port number (0 picks a free one), not ${JSON.stringify(flags.port)}`);
    if (ingressPort > 0 && ingressPort < 1024) throw new UpUsageError(`--port ${ingressPort} is a privileged port; weftctl up runs without root, choose 1024 or above (or 0)`);
  }
  if (flags.loopbackNet !== undefined) {
    const problem = checkLoopbackNet(flags.loopbackNet);
    if (problem) throw new UpUsageError(`--loopback-net: ${problem}`);
  }
  const levelFlag = flags.logLevel;
  if (levelFlag !== undefined && levelFlag !== 'debug' && levelFlag !== 'info' && levelFlag !== 'warn' && levelFlag !== 'error') throw new UpUsageError(`--log-level must be debug, info, warn or error, not ${JSON.stringify(levelFlag)}`);
  const level: LocalMeshOptions['logLevel'] = levelFlag;
  let timeoutMs: number | undefined;
  if (flags.timeout !== undefined) {
    const s = Number(flags.timeout.replace(/s$/, ''));
    if (!Number.isFinite(s) || s <= 0) throw new UpUsageError(`--timeout must be a number of seconds, not ${JSON.stringify(flags.timeout)}`);
    timeoutMs = s * 1000;
  }

  // Signals from the start: one during startup stops what has started.
  let signalled: NodeJS.Signals | undefined;
  let onSignal: ((s: NodeJS.Signals) => void) | undefined;
  const handler = (s: NodeJS.Signals) => {
    if (signalled) return;
    signalled = s;
    onSignal?.(s);
  };
  // SIGHUP too: a closed terminal must not leave the mesh running without its owner (and
  // writing to that closed terminal must not end `up` before it has stopped the mesh).
  const ignore = () => {};
  process.stdout.on('error', ignore);
  process.stderr.on('error', ignore);
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('SIGHUP', handler);
  try {
    return await runMesh();
  } finally {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
    process.off('SIGHUP', handler);
  }

  async function runMesh(): Promise<number> {
    const t0 = Date.now();
    const since = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
    io.out(`Starting the local mesh (state in ${flags.stateDir}; logs in ${flags.stateDir}/logs)\n`);
    const abort = new AbortController();
    onSignal = () => abort.abort();
    let mesh: Awaited<ReturnType<typeof startLocalMesh>>;
    try {
      mesh = await startLocalMesh({
        stateDir: flags.stateDir,
        ...(ingressPort !== undefined ? { ingressPort } : {}),
        ...(flags.loopbackNet ? { loopbackNet: flags.loopbackNet } : {}),
        ...(level ? { logLevel: level } : {}),
        ...(flags.meshConfig ? { meshConfig: flags.meshConfig } : {}),
        ...(timeoutMs ? { timeoutMs } : {}),
        ...(flags.fresh ? { fresh: true } : {}),
        ...(flags.plaintextXds ? { plaintextXds: true } : {}),
        ...(flags.noAddons ? { addons: false } : {}),
        onProgress: (component, text) => io.out(`  ${pad(since(), 6)} ${pad(component, 14)} ${text}\n`),
        signal: abort.signal,
      });
    } catch (e) {
      if (signalled) {
        io.out(`Interrupted (${signalled}) while starting; everything started was stopped.\n`);
        return 130;
      }
      io.err(`weftctl up: ${(e as Error).message}\n`);
      return 1;
    }
    if (signalled) {
      await mesh.stop(3000);
      io.out(`Interrupted (${signalled}); stopped.\n`);
      return 130;
    }
    mesh.onSupervision((e) => io.err(`weftctl up: ${supervisionLine(e)}\n`));
    const seeIt = mesh.state.dashboard ? ` weftctl dashboard --open (${mesh.state.dashboard.url});` : '';
    io.out(`  ${pad(since(), 6)} ${pad('done', 14)} try:${seeIt} weftctl proxy-status; weftctl apply -f examples/bookinfo/networking/virtual-service-all-v1.yaml; Ctrl-C stops everything\n`);
    io.out(`ready: ${mesh.url}\n`);

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      if (signalled) resolve(signalled);
      else onSignal = resolve;
    });
    io.out(`Stopping the local mesh (${signal})...\n`);
    const { killed } = await mesh.stop();
    if (killed.length > 0) io.out(`Stopped (killed after the grace period: ${killed.join(', ')}).\n`);
    else io.out('Stopped.\n');
    return 0;
  }
}
