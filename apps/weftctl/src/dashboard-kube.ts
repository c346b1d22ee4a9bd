// `weftctl dashboard [weft|prometheus|grafana|jaeger] --kubeconfig FILE`: an addon of the cluster on a
// local loopback port, as `istioctl dashboard` gives it. Nothing is exposed on the cluster: each
// addon is a ClusterIP Service reached over the API server's portforward subresource with the
// user's kubeconfig, and the local port refuses other local users (@weft/guard). `weft` runs the
// Weft dashboard here, on this machine, reading weftd's monitoring port (15014) and the Prometheus
// addon through two such forwards; the cluster runs no dashboard.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Server } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { OwnerGuard } from '@weft/guard';
import { silentLogger } from '@weft/model';
import { repoRoot } from './up/mesh.ts';

/** What each name reaches: the Service (namespace istio-system unless --namespace), its port, and the path to open. */
export const kubeDashboardTargets = {
  prometheus: { service: 'prometheus', port: 9090, path: '/' },
  grafana: { service: 'grafana', port: 3000, path: '/' },
  jaeger: { service: 'tracing', port: 80, path: '/' },
  weftd: { service: 'weftd', port: 15014, path: '/debug' },
} as const;

export type KubeDashboardName = keyof typeof kubeDashboardTargets | 'weft';

export interface KubeDashboardOptions {
  kubeconfig: string | undefined;
  namespace: string;
  /** Local port (0: any free one). */
  port: number;
  /** Resolves when the user stops it (Ctrl-C). */
  until: Promise<void>;
  /** Told the URL once it answers. */
  onUrl: (url: string) => void;
  progress: (line: string) => void;
}

const dashboardBin = join(repoRoot, 'apps/dashboard/bin/weft-dashboard.js');

type Kube = typeof import('@weft/kube');
type KubeConfig = ReturnType<Kube['loadKubeConfig']>;

/**
 * Where the Prometheus addon is: the Service `prometheus` in `namespace` (the addon's place,
 * istio-system, as Istio's), else a Service labelled app=prometheus anywhere (the addon deployed
 * into another namespace or under another name), the one in `namespace` first.
 */
async function findPrometheus(kube: Kube, kc: KubeConfig, namespace: string): Promise<{ namespace: string; service: string }> {
  const found = await kube.findService(kc, { namespace, name: 'prometheus', labelSelector: 'app=prometheus' });
  if (!found) throw new Error(`no Service prometheus in ${namespace} and none labelled app=prometheus in any namespace (the addon: kubectl apply -k deploy/addons/prometheus/base)`);
  return found;
}

/** Serves one addon (or the Weft dashboard) locally until `o.until` resolves; returns the exit code. */
export async function runKubeDashboard(name: KubeDashboardName, o: KubeDashboardOptions): Promise<number> {
  const kube = await import('@weft/kube');
  const kc = kube.loadKubeConfig(o.kubeconfig);
  const ownerUid = process.getuid?.();
  const guard = ownerUid === undefined ? undefined : new OwnerGuard({ ownerUid, logger: silentLogger });
  const protect = (what: string) => (server: Server) => guard?.protect(server, what);
  const onError = (m: string) => o.progress(`forward: ${m}`);
  const forwards: { close(): Promise<void> }[] = [];
  let child: ChildProcess | undefined;
  try {
    if (name !== 'weft') {
      const t = kubeDashboardTargets[name];
      const where = name === 'prometheus' ? await findPrometheus(kube, kc, o.namespace) : { namespace: o.namespace, service: t.service };
      const f = await kube.forwardService(kc, { ...where, port: t.port, localPort: o.port, protect: protect(name), onError });
      forwards.push(f);
      o.progress(`${name}: Service ${where.namespace}/${where.service}:${t.port} (pod ${f.target.pod}:${f.target.port}) on ${f.url}`);
      o.onUrl(`${f.url}${t.path}`);
      await o.until;
      return 0;
    }
    // The Weft dashboard: weftd's monitoring port and Prometheus through forwards of their own, the dashboard process here.
    const weftd = await kube.forwardService(kc, { namespace: o.namespace, service: 'weftd', port: 15014, protect: protect('weftd monitoring'), onError });
    forwards.push(weftd);
    o.progress(`weftd: Service ${o.namespace}/weftd:15014 (pod ${weftd.target.pod}) on ${weftd.url}`);
    let prometheusUrl: string | undefined;
    try {
      const where = await findPrometheus(kube, kc, o.namespace);
      const p = await kube.forwardService(kc, { ...where, port: 9090, protect: protect('prometheus'), onError });
      forwards.push(p);
      prometheusUrl = p.url;
      o.progress(`prometheus: Service ${where.namespace}/${where.service}:9090 (pod ${p.target.pod}) on ${p.url}`);
    } catch (e) {
      o.progress(`prometheus: ${(e as Error).message}; the graph stays empty until the Prometheus addon runs (kubectl apply -k deploy/addons/prometheus/base)`);
    }
    const kubeconfig = o.kubeconfig ?? process.env.KUBECONFIG?.split(':')[0] ?? join(homedir(), '.kube', 'config');
    const args = [dashboardBin, '--address', '127.0.0.1', '--port', String(o.port), '--weftd-url', weftd.url, '--kubeconfig', kubeconfig, ...(prometheusUrl ? ['--prometheus-url', prometheusUrl] : []), ...(ownerUid !== undefined ? ['--owner-uid', String(ownerUid)] : [])];
    child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const ready = new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child!.stderr! });
      lines.on('line', (line) => {
        try {
          const l = JSON.parse(line) as { msg?: string; url?: string; port?: number; level?: string };
          if (l.msg === 'dashboard ready') resolve(l.url ?? `http://127.0.0.1:${l.port}/`);
          else if (l.level === 'error') o.progress(`dashboard: ${line}`);
        } catch {
          o.progress(`dashboard: ${line}`);
        }
      });
      child!.once('exit', (code, signal) => reject(new Error(`the dashboard process exited (${signal ?? `code ${code}`}) before it was ready`)));
    });
    o.onUrl(await ready);
    await Promise.race([o.until, new Promise<void>((resolve) => child!.once('exit', () => resolve()))]);
    return child.exitCode !== null && child.exitCode !== 0 ? 1 : 0;
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    await Promise.all(forwards.map((f) => f.close()));
  }
}
