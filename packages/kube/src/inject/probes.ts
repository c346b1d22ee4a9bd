// Application probes through the sidecar: with mutual TLS in force, the kubelet's plain-text probe
// to the application's port would be refused by the proxy, so the injector points each HTTP and TCP
// probe at the proxy's status port (15020) under `/app-health/<container>/{readyz,livez,startupz}`
// and hands the original probes to the proxy in ISTIO_KUBE_APP_PROBERS, which probes the
// application itself (Istio's app_probe.go). gRPC probes and lifecycle hooks are left as they are.
import type { V1Container, V1Probe } from '@kubernetes/client-node';

/** The environment variable carrying the original probes (Istio's name and format). */
export const appProbersEnv = 'ISTIO_KUBE_APP_PROBERS';

/** One original probe as the proxy runs it: the action with named ports resolved, and its timeout. */
export interface AppProber {
  httpGet?: { path: string; port: number; scheme: 'HTTP' | 'HTTPS'; host?: string; httpHeaders?: { name: string; value: string }[] };
  tcpSocket?: { port: number; host?: string };
  timeoutSeconds: number;
}

/** `/app-health/<container>/<kind>`: the path the rewritten probe asks the status port for. */
export function appHealthPath(container: string, kind: 'readyz' | 'livez' | 'startupz'): string {
  return `/app-health/${container}/${kind}`;
}

const kinds = [
  ['readinessProbe', 'readyz'],
  ['livenessProbe', 'livez'],
  ['startupProbe', 'startupz'],
] as const;

function resolvePort(port: number | string | undefined, container: V1Container): number | undefined {
  if (typeof port === 'number') return port;
  if (typeof port !== 'string' || port === '') return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/**
 * The prober for one probe, or undefined when it is not rewritten (gRPC/exec, a named port the
 * container does not declare, or a probe already pointing at the status port). Kubernetes' defaults
 * (scheme HTTP, timeout 1 s) are written out, so that a pod the API server already defaulted and the
 * same pod read from a file give the same value.
 */
function proberOf(probe: V1Probe | undefined, container: V1Container, statusPort: number): AppProber | undefined {
  if (!probe) return undefined;
  const timeoutSeconds = probe.timeoutSeconds ?? 1;
  if (probe.httpGet) {
    const port = resolvePort(probe.httpGet.port, container);
    if (port === undefined || port === statusPort) return undefined;
    const path = probe.httpGet.path ?? '/';
    const httpGet: NonNullable<AppProber['httpGet']> = { path: path.startsWith('/') ? path : `/${path}`, port, scheme: probe.httpGet.scheme === 'HTTPS' ? 'HTTPS' : 'HTTP' };
    if (probe.httpGet.host) httpGet.host = probe.httpGet.host;
    if (probe.httpGet.httpHeaders?.length) httpGet.httpHeaders = probe.httpGet.httpHeaders.map((h) => ({ name: h.name, value: h.value }));
    return { httpGet, timeoutSeconds };
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, container);
    if (port === undefined || port === statusPort) return undefined;
    return { tcpSocket: { port, ...(probe.tcpSocket.host ? { host: probe.tcpSocket.host } : {}) }, timeoutSeconds };
  }
  return undefined;
}

/** The probe the kubelet runs instead: an HTTP GET of the status port, other settings kept. */
function rewritten(probe: V1Probe, path: string, statusPort: number): V1Probe {
  const { httpGet: _h, tcpSocket: _t, ...rest } = probe;
  return { ...rest, httpGet: { path, port: statusPort, scheme: 'HTTP' } };
}

/**
 * Rewrites the probes of `containers` (not the proxy's) in place and returns the original probes
 * by path, or undefined when there are none.
 */
export function rewriteAppProbes(containers: V1Container[], proxyName: string, statusPort: number): Record<string, AppProber> | undefined {
  const out: Record<string, AppProber> = {};
  for (const c of containers) {
    if (c.name === proxyName) continue;
    for (const [field, kind] of kinds) {
      const prober = proberOf(c[field], c, statusPort);
      if (!prober) continue;
      const path = appHealthPath(c.name, kind);
      out[path] = prober;
      c[field] = rewritten(c[field]!, path, statusPort);
    }
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
