// `weftctl dashboard [weft|prometheus] [--open]`: the URL of the local mesh's dashboard, or of
// Prometheus' own UI through the dashboard (which adds Prometheus' basic auth, so no password is
// asked), from mesh.json; with --open, opened in the desktop's browser (xdg-open) when there is one.
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { type KubeDashboardName, runKubeDashboard } from '../dashboard-kube.ts';
import { runningMesh } from '../up/state.ts';

export const dashboardTargets = ['weft', 'prometheus'] as const;
export type DashboardTarget = (typeof dashboardTargets)[number];

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** The executable `name` on $PATH, or undefined. */
async function onPath(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const file = join(dir, name);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Prints (and opens) the URL; 1 with the reason when the mesh or the component does not run. */
export async function dashboard(o: { stateDir: string; target: DashboardTarget; open: boolean }, io: Io): Promise<number> {
  const s = await runningMesh(o.stateDir);
  let url: string;
  if (o.target === 'weft') {
    if (!s.dashboard) {
      io.err(`weftctl: the local mesh in ${o.stateDir} runs without the dashboard (it could not start, or the mesh is still starting); see ${join(o.stateDir, 'logs', 'dashboard.log')}\n`);
      return 1;
    }
    url = s.dashboard.url;
  } else if (s.dashboard && s.prometheus) url = `${s.dashboard.url}prometheus/`;
  else if (s.prometheus) {
    // Without the dashboard, Prometheus itself: its basic auth asks for the password.
    url = s.prometheus.url;
    io.err(`weftctl: the dashboard is not running; Prometheus asks for user weft and the password in ${s.prometheus.passwordFile}\n`);
  } else {
    io.err('weftctl: Prometheus is not part of the local mesh (not installed: `apt-get install -y prometheus`, then start `weftctl up` again)\n');
    return 1;
  }
  io.out(`${url}\n`);
  if (o.open) await openUrl(url, io);
  return 0;
}

/** Opens `url` in the desktop's browser (xdg-open), saying so when there is none. */
async function openUrl(url: string, io: Io): Promise<void> {
  const opener = await onPath('xdg-open');
  if (!opener) {
    io.err('weftctl: xdg-open is not installed (`apt-get install -y xdg-utils`); open the URL above in a browser\n');
    return;
  }
  // Detached and not waited for: the browser outlives this command.
  const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
  child.on('error', (e) => io.err(`weftctl: could not run ${opener}: ${e.message}\n`));
  child.unref();
}

/**
 * `weftctl dashboard NAME --kubeconfig FILE`: the addon on a local port through port-forwards
 * (dashboard-kube.ts) until Ctrl-C; the URL on stdout once it answers, progress on stderr.
 */
export async function dashboardOnCluster(name: KubeDashboardName, o: { kubeconfig: string | undefined; namespace: string; port: number; open: boolean }, io: Io): Promise<number> {
  let stop!: () => void;
  const until = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const onSignal = () => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await runKubeDashboard(name, {
      kubeconfig: o.kubeconfig,
      namespace: o.namespace,
      port: o.port,
      until,
      progress: (line) => io.err(`dashboard: ${line}\n`),
      onUrl: (url) => {
        io.out(`${url}\n`);
        io.err('dashboard: serving until Ctrl-C\n');
        if (o.open) void openUrl(url, io);
      },
    });
  } catch (e) {
    io.err(`weftctl: dashboard ${name}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
