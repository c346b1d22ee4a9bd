// The pieces of a mesh on loopback, each a real process: weftd (pilot), weft-proxy sidecars,
// weft-ingress gateways and echo backends. Each workload gets its own loopback address
// (127.x.y.z), as in local mode; processes log JSON lines, which the tests wait on.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { JsonProcess } from '@weft/e2e-harness';

const root = fileURLToPath(new URL('../../../', import.meta.url));
export const bins = {
  weftd: join(root, 'apps/weftd/bin/weftd.js'),
  proxy: join(root, 'apps/proxy/bin/weft-proxy.js'),
  ingress: join(root, 'apps/ingress/bin/weft-ingress.js'),
  backend: fileURLToPath(new URL('./echo-backend.ts', import.meta.url)),
};

export { JsonProcess, type LogLine } from '@weft/e2e-harness';

export interface Weftd {
  proc: JsonProcess;
  xdsPort: number;
  monitoringPort: number;
  /** The CA's TLS port, when started with `ca`. */
  caPort?: number;
}

export interface WeftdOptions {
  /** Run the CA (Istio CSR service on a TLS port) with its root kept in `caDir`. */
  ca?: { caDir: string };
  /** Extra weftd flags. */
  extra?: string[];
}

export async function startWeftd(configDir: string, xdsPort = 0, options: WeftdOptions = {}): Promise<Weftd> {
  const proc = new JsonProcess('weftd', [
    bins.weftd,
    '--config-dir',
    configDir,
    '--xds-port',
    String(xdsPort),
    '--monitoring-port',
    '0',
    ...(options.ca ? ['--ca-dir', options.ca.caDir, '--ca-port', '0'] : ['--no-ca']),
    '--debounce-ms',
    '50',
    '--file-debounce-ms',
    '50',
    ...(options.extra ?? []),
  ]);
  const ready = await proc.waitFor((l) => l.msg === 'weftd ready', 'weftd ready');
  return { proc, xdsPort: Number(ready.xdsPort), monitoringPort: Number(ready.monitoringPort), ...(options.ca ? { caPort: Number(ready.caPort) } : {}) };
}

export interface Backend {
  proc: JsonProcess;
  name: string;
  version: string;
  address: string;
  port: number;
}

export async function startBackend(name: string, version: string, address: string, options: { tcp?: boolean; port?: number } = {}): Promise<Backend> {
  const args = [bins.backend, '--name', name, '--version', version, '--address', address, '--port', String(options.port ?? 0)];
  if (options.tcp) args.push('--tcp');
  const proc = new JsonProcess(`backend ${name}-${version}`, args);
  const l = await proc.waitFor((x) => x.msg === 'listening', 'listening');
  return { proc, name, version, address, port: Number(l.port) };
}

export interface ProxyProcess {
  proc: JsonProcess;
  ip: string;
  adminPort: number;
  healthPort: number;
  admin(path: string): Promise<{ status: number; text: string }>;
}

/** Starts weft-proxy (or weft-ingress with `ingress: true`) in local mode on `ip` and waits until it is ready. */
export async function startProxy(o: { xdsPort: number; ip: string; pod: string; labels: string; ingress?: boolean; extra?: string[] }): Promise<ProxyProcess> {
  const args = [
    o.ingress ? bins.ingress : bins.proxy,
    '--xds-address',
    `127.0.0.1:${o.xdsPort}`,
    '--ip',
    o.ip,
    '--pod',
    o.pod,
    '--namespace',
    'default',
    '--labels',
    o.labels,
    '--mode',
    'local',
    '--admin-port',
    '0',
    '--health-port',
    '0',
    '--drain-ms',
    '500',
    ...(o.extra ?? []),
  ];
  const proc = new JsonProcess(`${o.ingress ? 'weft-ingress' : 'weft-proxy'} ${o.pod}`, args);
  const admin = await proc.waitFor((l) => l.msg === 'admin listening', 'admin listening');
  await proc.waitFor((l) => l.msg === 'proxy ready', 'proxy ready');
  const adminPort = Number(admin.port);
  return {
    proc,
    ip: o.ip,
    adminPort,
    healthPort: Number(admin.healthPort),
    admin: async (path: string) => {
      const r = await request(`http://127.0.0.1:${adminPort}${path}`, { method: path === '/quitquitquit' ? 'POST' : 'GET' });
      return { status: r.statusCode, text: await r.body.text() };
    },
  };
}

/** A port free on `address` right now. */
export function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The backend's echo, when a backend answered. */
  echo: { name: string; version: string; headers: Record<string, string>; attempt: number; authority: string; path: string } | undefined;
  ms: number;
}

/** An application's HTTP client: requests go to its sidecar's outbound port, the Host header names the service. */
export class App {
  readonly agent: Agent;
  readonly origin: string;

  constructor(sidecarIp: string, port = 15001) {
    this.origin = `http://${sidecarIp}:${port}`;
    this.agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });
  }

  async get(host: string, path = '/', headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
    const start = performance.now();
    const r = await request(`${this.origin}${path}`, { method: method as 'GET', headers: { host, ...headers }, dispatcher: this.agent });
    const text = await r.body.text();
    const ms = performance.now() - start;
    let echo: Reply['echo'];
    if (r.headers['x-echo-name']) {
      try {
        echo = JSON.parse(text) as Reply['echo'];
      } catch {
        echo = undefined;
      }
    }
    return { status: r.statusCode, headers: r.headers, text, echo, ms };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** Writes YAML files into the config directory weftd watches. */
export async function writeConfig(dir: string, file: string, yaml: string): Promise<void> {
  await writeFile(join(dir, file), yaml);
}

/** weftd's /debug/syncz entries for one proxy. */
export async function syncz(monitoringPort: number, proxyId?: string): Promise<SynczEntry[]> {
  const r = await request(`http://127.0.0.1:${monitoringPort}/debug/syncz${proxyId ? `?proxy=${encodeURIComponent(proxyId)}` : ''}`);
  return (await r.body.json()) as SynczEntry[];
}

export interface SynczEntry {
  id: string;
  /** By type URL. */
  types: Record<string, { status: 'ACKED' | 'NACKED' | 'SENT' | 'NOT_SENT'; sent: string; acked: string; nacked: string; nackReason: string }>;
}
