// Sidecar scoping through real processes: weftd, two client sidecars (namespace `open` without a
// Sidecar resource, namespace `front` with one) and echo backends on 127.10.22.x. What a user
// notices: the scoped sidecar is sent only the services its egress hosts import (its /clusters
// page), reaches them, and with outboundTrafficPolicy REGISTRY_ONLY gets 502 for everything else
// (a service outside its egress hosts, a host the mesh does not know), while ALLOW_ANY lets
// unknown destinations through to where they were going.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from './config.ts';
import { App, type Backend, type ProxyProcess, startBackend, startProxy, startWeftd, type Weftd, writeConfig } from './mesh.ts';

const ip = {
  open: '127.10.22.1',
  front: '127.10.22.2',
  local: '127.10.22.11',
  far: '127.10.22.21',
  system: '127.10.22.31',
  external: '127.10.22.50',
  fronted: '127.10.22.41',
};

let dir: string;
let configDir: string;
let weftd: Weftd;
const proxies: ProxyProcess[] = [];
const backends: Backend[] = [];
let open: App;
let front: App;
let frontSidecar: ProxyProcess;
let external: Backend;
let frontedSidecarProc: ProxyProcess;
let frontedPort: number;

function service(name: string, ns: string, b: Backend): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: ${ns}}
spec:
  hosts: [${name}.${ns}.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  location: MESH_INTERNAL
  workloadSelector: {labels: {app: ${name}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}-1, namespace: ${ns}}
spec:
  address: ${b.address}
  labels: {app: ${name}}
  ports: {http: ${b.port}}
`;
}

const sidecar = (policy: 'REGISTRY_ONLY' | 'ALLOW_ANY') => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: front}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
  outboundTrafficPolicy: {mode: ${policy}}
`;

beforeAll(async () => {
  dir = await mkdtemp(joinPath(tmpdir(), 'weft-e2e-scoping-'));
  configDir = joinPath(dir, 'config');
  await mkdir(configDir);
  const [local, far, system, ext, fronted] = await Promise.all([
    startBackend('local', 'v1', ip.local),
    startBackend('far', 'v1', ip.far),
    startBackend('telemetry', 'v1', ip.system),
    startBackend('external', 'v1', ip.external),
    startBackend('fronted', 'v1', ip.fronted),
  ]);
  backends.push(local!, far!, system!, ext!, fronted!);
  external = ext!;
  // fronted's mesh port 9080 is its sidecar's; a Sidecar ingress listener sends it to where the app listens.
  const frontedService = service('fronted', 'front', { ...fronted!, port: 9080 });
  const frontedSidecar = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: fronted, namespace: front}
spec:
  workloadSelector: {labels: {app: fronted}}
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:${fronted!.port}
  egress:
  - hosts: ["./*"]
`;
  await writeConfig(
    configDir,
    'mesh.yaml',
    join(service('local', 'front', local!), service('far', 'back', far!), service('telemetry', 'istio-system', system!), frontedService, frontedSidecar),
  );
  await writeConfig(configDir, 'sidecar.yaml', sidecar('REGISTRY_ONLY'));
  weftd = await startWeftd(configDir);
  const [o, f, fs] = await Promise.all([
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.open, pod: 'open-1', labels: 'app=open', extra: ['--namespace', 'open'] }),
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.front, pod: 'front-1', labels: 'app=front', extra: ['--namespace', 'front'] }),
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.fronted, pod: 'fronted-1', labels: 'app=fronted', extra: ['--namespace', 'front', '--app-address', ip.fronted] }),
  ]);
  proxies.push(o, f, fs);
  frontedSidecarProc = fs;
  frontedPort = fronted!.port;
  frontSidecar = f;
  open = new App(ip.open);
  front = new App(ip.front);
}, 60_000);

afterAll(async () => {
  await open?.close();
  await front?.close();
  await Promise.all(proxies.map((p) => p.proc.stop()));
  await Promise.all(backends.map((b) => b.proc.stop()));
  await weftd?.proc.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('Sidecar egress and outboundTrafficPolicy, as the sidecar behaves', () => {
  it('without a Sidecar: every exported service is reachable and unknown destinations pass through (mesh default ALLOW_ANY)', async () => {
    const far = await open.get('far.back.svc.cluster.local:9080', '/');
    expect(far.status).toBe(200);
    expect(far.echo?.name).toBe('far');
    const unknown = await open.get(`${ip.external}:${external.port}`, '/');
    expect(unknown.status).toBe(200);
    expect(unknown.echo?.name).toBe('external');
  });

  it('with egress ./* and istio-system/*: only those services are sent to the sidecar and reachable; REGISTRY_ONLY answers 502 for the rest', async () => {
    const clusters = (await frontSidecar.admin('/clusters')).text;
    expect(clusters).toContain('outbound|9080||local.front.svc.cluster.local');
    expect(clusters).toContain('outbound|9080||telemetry.istio-system.svc.cluster.local');
    expect(clusters).not.toContain('far.back.svc.cluster.local');
    expect((await front.get('local.front.svc.cluster.local:9080', '/')).echo?.name).toBe('local');
    expect((await front.get('telemetry.istio-system.svc.cluster.local:9080', '/')).echo?.name).toBe('telemetry');
    // A service outside its egress hosts, on a port the sidecar has a listener for: the route's catch-all blocks it.
    const far = await front.get('far.back.svc.cluster.local:9080', '/');
    expect(far.status).toBe(502);
    expect(far.echo).toBeUndefined();
    // A destination the mesh does not know, on a port of its own: BlackHoleCluster.
    const unknown = await front.get(`${ip.external}:${external.port}`, '/');
    console.log(`REGISTRY_ONLY: far.back -> ${far.status}, ${ip.external}:${external.port} -> ${unknown.status}`);
    expect(unknown.status).toBeGreaterThanOrEqual(500);
    expect(unknown.echo).toBeUndefined();
  });

  it("a Sidecar ingress listener: the workload's sidecar takes port 9080 and forwards it to the defaultEndpoint", async () => {
    const r = await front.get('fronted.front.svc.cluster.local:9080', '/');
    expect(r.status).toBe(200);
    expect(r.echo?.name).toBe('fronted');
    // Only fronted's sidecar listens on 9080 and the app on another port: the answer came through the
    // ingress listener, whose inbound cluster names the defaultEndpoint's port.
    const clusters = (await frontedSidecarProc.admin('/clusters')).text;
    expect(clusters).toMatch(new RegExp(`inbound\\|9080\\|\\|::${ip.fronted.replaceAll('.', '\\.')}:${frontedPort}::`));
    console.log(`Sidecar ingress: fronted.front:9080 -> ${r.status} from the app on ${ip.fronted}:${frontedPort}`);
  });

  it('switching the Sidecar to ALLOW_ANY lets unknown destinations through, without a restart', async () => {
    const start = performance.now();
    await writeConfig(configDir, 'sidecar.yaml', sidecar('ALLOW_ANY'));
    const passed = await until(async () => (await front.get(`${ip.external}:${external.port}`, '/')).echo?.name === 'external', 10_000);
    expect(passed).toBe(true);
    console.log(`ALLOW_ANY: ${ip.external}:${external.port} passes through ${(performance.now() - start).toFixed(0)} ms after the Sidecar edit`);
    // Still scoped: the far service is not in its config.
    expect((await frontSidecar.admin('/clusters')).text).not.toContain('far.back.svc.cluster.local');
  });
});
