// The application's own probes, run by the proxy for the kubelet (Istio's pilot-agent app probes).
// The injector rewrites each HTTP and TCP probe to GET the status port's
// `/app-health/<container>/{readyz,livez,startupz}` and hands the originals to the proxy in
// ISTIO_KUBE_APP_PROBERS; the proxy, whose traffic capture lets through, probes the application at
// the pod's address and answers with what it found: the application's status (a redirect counts
// as success, as the kubelet's does), or 500 when it cannot be reached in time.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, isIPv6 } from 'node:net';

/** One original probe, as the injector writes it. */
export interface AppProber {
  httpGet?: { path?: string; port: number; scheme?: string; host?: string; httpHeaders?: { name: string; value: string }[] };
  tcpSocket?: { port: number; host?: string };
  timeoutSeconds?: number;
}

export class AppProbersError extends Error {}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65536;

/** ISTIO_KUBE_APP_PROBERS: `{"/app-health/<c>/readyz": {"httpGet": {...}, "timeoutSeconds": 1}, ...}`. */
export function parseAppProbers(text: string): Map<string, AppProber> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new AppProbersError(`ISTIO_KUBE_APP_PROBERS is not JSON: ${(e as Error).message}`);
  }
  if (!isObj(v)) throw new AppProbersError('ISTIO_KUBE_APP_PROBERS must be a JSON object of path -> probe');
  const out = new Map<string, AppProber>();
  for (const [path, p] of Object.entries(v)) {
    if (!path.startsWith('/app-health/')) throw new AppProbersError(`ISTIO_KUBE_APP_PROBERS: ${JSON.stringify(path)} is not an /app-health/ path`);
    if (!isObj(p)) throw new AppProbersError(`ISTIO_KUBE_APP_PROBERS ${path}: not an object`);
    const http = p.httpGet;
    const tcp = p.tcpSocket;
    if (isObj(http) && isPort(http.port)) out.set(path, p as AppProber);
    else if (isObj(tcp) && isPort(tcp.port)) out.set(path, p as AppProber);
    else throw new AppProbersError(`ISTIO_KUBE_APP_PROBERS ${path}: needs httpGet or tcpSocket with a numeric port`);
  }
  return out;
}

export interface ProbeResult {
  status: number;
  body: string;
}

/**
 * Where a probe to `target` comes from: Istio's inbound-passthrough source (127.0.0.6, ::6) when the
 * target is the pod's own address. The capture rules send the proxy's own traffic to a local
 * non-loopback address into the inbound listener (so that an app calling its own service goes
 * through its sidecar), except from that source: without it the probe would be served by the
 * inbound sidecar, counted in istio_requests_total as `source_workload="unknown"`, and refused as
 * plaintext under STRICT mTLS. Loopback targets (local mode) need nothing.
 */
export function probeSourceAddress(target: string): string | undefined {
  if (target === 'localhost' || target.startsWith('127.') || target === '::1') return undefined;
  return isIPv6(target) ? '::6' : '127.0.0.6';
}

/** Runs one probe against the application at `address` (the pod's IP). Never throws. */
export function runAppProbe(prober: AppProber, address: string, incomingHost: string | undefined): Promise<ProbeResult> {
  const timeoutMs = Math.max(1, prober.timeoutSeconds ?? 1) * 1000;
  if (prober.tcpSocket) {
    const { port, host } = prober.tcpSocket;
    return new Promise((resolve) => {
      const target = host || address;
      const localAddress = probeSourceAddress(target);
      const socket = connect({ host: target, port, timeout: timeoutMs, ...(localAddress ? { localAddress } : {}) });
      socket.once('connect', () => {
        socket.destroy();
        resolve({ status: 200, body: '' });
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve({ status: 500, body: `tcp probe to port ${port} timed out\n` });
      });
      socket.once('error', (err) => resolve({ status: 500, body: `tcp probe to port ${port} failed: ${err.message}\n` }));
    });
  }
  const h = prober.httpGet!;
  const https = h.scheme === 'HTTPS';
  const path = h.path ? (h.path.startsWith('/') ? h.path : `/${h.path}`) : '/';
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/weft', accept: '*/*' };
  // The kubelet's Host (the pod's IP and the status port) names the application's port instead.
  if (incomingHost) headers.host = incomingHost.replace(/:\d+$/, `:${h.port}`);
  for (const { name, value } of h.httpHeaders ?? []) headers[name.toLowerCase()] = value;
  const target = h.host || address;
  const localAddress = probeSourceAddress(target);
  return new Promise((resolve) => {
    const req = (https ? httpsRequest : httpRequest)(
      { host: target, port: h.port, path, method: 'GET', headers, timeout: timeoutMs, ...(localAddress ? { localAddress } : {}), ...(https ? { rejectUnauthorized: false } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          // The kubelet keeps at most 10 KiB of a probe's body; so does this.
          if (size < 10 * 1024) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 500;
          resolve({ status: status >= 300 && status < 400 ? 200 : status, body: Buffer.concat(chunks).toString('utf8').slice(0, 10 * 1024) });
        });
        res.on('error', (err) => resolve({ status: 500, body: `http probe failed: ${err.message}\n` }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ status: 500, body: `http probe to port ${h.port}${path} failed: ${err.message}\n` }));
    req.end();
  });
}
