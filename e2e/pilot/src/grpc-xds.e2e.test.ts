// Pilot end to end with a real third-party xDS client: weftd as a process, three gRPC backends,
// proxyless @grpc/grpc-js-xds clients routed by a VirtualService, and a raw ADS client that NACKs.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, Metadata } from '@grpc/grpc-js';
import { register as registerXdsResolver } from '@grpc/grpc-js-xds';
import { createAdsClient, type DiscoveryRequest, type DiscoveryResponse__Output, TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoClient, startBackend } from './echo.ts';
import { JsonProcess } from '@weft/e2e-harness';

const weftdBin = fileURLToPath(new URL('../../../apps/weftd/bin/weftd.js', import.meta.url));

const host = 'echo.default.svc.cluster.local';
const servicePort = 7070;
const target = `xds:///${host}:${servicePort}`;

const serviceEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: echo
  namespace: default
spec:
  hosts: [${host}]
  ports:
  - number: ${servicePort}
    name: grpc
    protocol: GRPC
  resolution: STATIC
  location: MESH_INTERNAL
  workloadSelector:
    labels:
      app: echo
`;

const workloadEntry = (version: string, port: number) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: echo-${version}
  namespace: default
spec:
  address: 127.0.0.1
  labels:
    app: echo
    version: ${version}
  ports:
    grpc: ${port}
`;

const destinationRule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: echo
  namespace: default
spec:
  host: ${host}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
  - name: v3
    labels: {version: v3}
`;

/** Header `x-canary: yes` goes to `canary`; everything else is split by `weights` (subset -> weight). */
const virtualService = (canary: string, weights: Record<string, number>) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
  namespace: default
spec:
  hosts: [${host}]
  http:
  - name: canary
    match:
    - headers:
        x-canary:
          exact: "yes"
    route:
    - destination:
        host: ${host}
        subset: ${canary}
  - name: split
    route:
${Object.entries(weights)
  .map(([subset, weight]) => `    - destination:\n        host: ${host}\n        subset: ${subset}\n      weight: ${weight}`)
  .join('\n')}
`;

let dir: string;
let weftd: JsonProcess;
let monitoring: string;
let xdsAddress: string;
let client: EchoClient;
const backends: Awaited<ReturnType<typeof startBackend>>[] = [];

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(`${monitoring}${path}`);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

interface SyncStatus {
  id: string;
  mode: string;
  generator: string;
  types: Record<string, { status: string; sent: string; acked: string; nacked: string; nackReason: string }>;
}

/** Calls in parallel batches; returns the count of answers per version. */
async function callMany(n: number, headers: Record<string, string> = {}, concurrency = 25): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let issued = 0;
  const worker = async () => {
    while (issued < n) {
      issued++;
      const reply = await client.version(headers);
      counts[reply.version] = (counts[reply.version] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}

beforeAll(async () => {
  for (const v of ['v1', 'v2', 'v3']) backends.push(await startBackend(v));
  dir = await mkdtemp(join(tmpdir(), 'weft-e2e-pilot-'));
  const config = join(dir, 'config');
  await mkdir(config);
  await writeFile(join(config, 'echo-service.yaml'), [serviceEntry, ...backends.map((b, i) => workloadEntry(`v${i + 1}`, b.port)), destinationRule].join('---\n'));
  await writeFile(join(config, 'echo-routes.yaml'), virtualService('v3', { v1: 90, v2: 10 }));

  weftd = new JsonProcess('weftd', [weftdBin, '--config-dir', config, '--xds-port', '0', '--monitoring-port', '0', '--no-ca']);
  const ready = await weftd.waitFor((l) => l.msg === 'weftd ready', 'ready');
  const xds = await weftd.waitFor((l) => l.msg === 'xds listening', 'xds listening');
  expect(xds.port).toBe(ready.xdsPort);
  xdsAddress = `127.0.0.1:${xds.port as number}`;
  monitoring = `http://127.0.0.1:${ready.monitoringPort as number}`;

  const bootstrap = join(dir, 'grpc-bootstrap.json');
  await writeFile(
    bootstrap,
    JSON.stringify({
      xds_servers: [{ server_uri: xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: {
        id: 'sidecar~127.0.0.1~echo-client-1.default~default.svc.cluster.local',
        locality: {},
        metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: 'echo-client' } },
      },
    }),
  );
  // grpc-js-xds reads its bootstrap once, when the first xds: channel resolves.
  process.env.GRPC_XDS_BOOTSTRAP = bootstrap;
  registerXdsResolver();
  client = new EchoClient(target, credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  const code = await weftd?.stop();
  for (const b of backends) b.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  expect(code).toBe(0);
});

describe('proxyless gRPC through weftd', () => {
  it('splits 2,000 calls 90/10 between v1 and v2, within 3 points', async () => {
    const counts = await callMany(2000);
    const total = (counts.v1 ?? 0) + (counts.v2 ?? 0);
    expect(total).toBe(2000);
    expect(counts.v3 ?? 0).toBe(0);
    const v1Share = (counts.v1 ?? 0) / 2000;
    expect(Math.abs(v1Share - 0.9)).toBeLessThanOrEqual(0.03);
    expect(Math.abs((counts.v2 ?? 0) / 2000 - 0.1)).toBeLessThanOrEqual(0.03);
    console.log(`split of 2000 calls: v1 ${counts.v1}, v2 ${counts.v2}`);
  });

  it('sends every call marked x-canary: yes to the matched version', async () => {
    expect(await callMany(300, { 'x-canary': 'yes' })).toEqual({ v3: 300 });
  });

  it('shows the client in /debug/syncz with every type acknowledged', async () => {
    const syncz = await getJson<SyncStatus[]>('/debug/syncz');
    const proxyless = syncz.find((s) => s.id === 'sidecar~127.0.0.1~echo-client-1.default~default.svc.cluster.local');
    expect(proxyless).toBeDefined();
    expect(proxyless!.generator).toBe('grpc');
    expect(Object.keys(proxyless!.types).sort()).toEqual([TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration].sort());
    for (const t of Object.values(proxyless!.types)) expect(t.status).toBe('ACKED');
  });

  it('reaches the service by every target form Istio accepts, the VirtualService applying to each', async () => {
    for (const form of ['echo', 'echo:7070', 'echo.default:7070', 'echo.default.svc:7070', `${host}`]) {
      const c = new EchoClient(`xds:///${form}`, credentials.createInsecure());
      try {
        expect((await c.version({ 'x-canary': 'yes' })).version, form).toBe('v3');
        expect(['v1', 'v2'], form).toContain((await c.version()).version);
      } finally {
        c.close();
      }
    }
  });

  it('re-routes within 1 s of editing the VirtualService file, without restarting the client', async () => {
    const written = performance.now();
    await writeFile(join(dir, 'config', 'echo-routes.yaml'), virtualService('v1', { v3: 100 }));
    let rerouted: number | undefined;
    while (performance.now() - written < 5000) {
      const reply = await client.version();
      if (reply.version === 'v3') {
        rerouted = performance.now() - written;
        break;
      }
    }
    expect(rerouted, 'calls never reached v3 after the edit').toBeDefined();
    console.log(`re-routed ${rerouted!.toFixed(0)} ms after the VirtualService file was written`);
    expect(rerouted!).toBeLessThan(1000);
    // And it stays re-routed: the whole split and the header route follow the new file.
    expect(await callMany(200)).toEqual({ v3: 200 });
    expect(await callMany(50, { 'x-canary': 'yes' })).toEqual({ v1: 50 });
  });

  it('keeps a NACKing client on its last good config, shows the reason in /debug/syncz, and keeps sending later updates', async () => {
    // A raw ADS client that behaves like a proxyless gRPC client but rejects one route update.
    const ads = createAdsClient(xdsAddress, credentials.createInsecure());
    const stream = ads.StreamAggregatedResources(new Metadata());
    const responses: DiscoveryResponse__Output[] = [];
    const waiters: ((r: DiscoveryResponse__Output) => void)[] = [];
    stream.on('data', (r: DiscoveryResponse__Output) => {
      const w = waiters.shift();
      if (w) w(r);
      else responses.push(r);
    });
    stream.on('error', () => {});
    const next = (ms = 5000) =>
      new Promise<DiscoveryResponse__Output>((resolve, reject) => {
        const r = responses.shift();
        if (r) return resolve(r);
        const timer = setTimeout(() => reject(new Error('no response')), ms);
        waiters.push((v) => {
          clearTimeout(timer);
          resolve(v);
        });
      });
    const id = 'sidecar~127.0.0.1~nacker-1.default~default.svc.cluster.local';
    const listenerName = `${host}:${servicePort}`;
    const send = (r: DiscoveryRequest) => stream.write(r);
    send({
      node: { id, metadata: { fields: { GENERATOR: { stringValue: 'grpc', kind: 'stringValue' }, NAMESPACE: { stringValue: 'default', kind: 'stringValue' } } } },
      type_url: TypeUrl.RouteConfiguration,
      resource_names: [listenerName],
    });
    const good = await next();
    expect(good.resources).toHaveLength(1);
    send({ type_url: TypeUrl.RouteConfiguration, resource_names: [listenerName], version_info: good.version_info, response_nonce: good.nonce });

    await writeFile(join(dir, 'config', 'echo-routes.yaml'), virtualService('v2', { v1: 50, v2: 50 }));
    const rejected = await next();
    expect(Number(rejected.version_info)).toBeGreaterThan(Number(good.version_info));
    const reason = 'route configuration rejected by the e2e client: weighted clusters not acceptable here';
    send({
      type_url: TypeUrl.RouteConfiguration,
      resource_names: [listenerName],
      version_info: good.version_info,
      response_nonce: rejected.nonce,
      error_detail: { code: 3, message: reason },
    });

    let mine: SyncStatus | undefined;
    for (let i = 0; i < 100; i++) {
      mine = (await getJson<SyncStatus[]>('/debug/syncz')).find((s) => s.id === id);
      if (mine?.types[TypeUrl.RouteConfiguration]?.status === 'NACKED') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(mine?.types[TypeUrl.RouteConfiguration]).toMatchObject({
      status: 'NACKED',
      acked: good.version_info,
      nacked: rejected.version_info,
      nackReason: reason,
    });
    const metrics = await (await fetch(`${monitoring}/metrics`)).text();
    expect(metrics).toMatch(/^pilot_total_xds_rejects\{type="rds"\} 1$/m);

    // The rejected version is not sent again; the next change is.
    await writeFile(join(dir, 'config', 'echo-routes.yaml'), virtualService('v2', { v1: 100 }));
    const later = await next();
    expect(Number(later.version_info)).toBeGreaterThan(Number(rejected.version_info));
    send({ type_url: TypeUrl.RouteConfiguration, resource_names: [listenerName], version_info: later.version_info, response_nonce: later.nonce });
    for (let i = 0; i < 100; i++) {
      mine = (await getJson<SyncStatus[]>('/debug/syncz')).find((s) => s.id === id);
      if (mine?.types[TypeUrl.RouteConfiguration]?.status === 'ACKED') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(mine?.types[TypeUrl.RouteConfiguration]).toMatchObject({ status: 'ACKED', acked: later.version_info, nacked: rejected.version_info, nackReason: reason });
    stream.end();
    ads.close();

    // Meanwhile the grpc-js-xds client followed every update.
    expect(await callMany(100)).toEqual({ v1: 100 });
  });
});
