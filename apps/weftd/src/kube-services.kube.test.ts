// weftd in Kubernetes mode as a process, with the proxy's xDS client connected: a Service and its
// EndpointSlice become clusters and endpoints; scaling the slice (and flipping its conditions)
// pushes EDS only; headless and ExternalName Services become what Istio makes of them. The
// objects go in with kubectl, as a user writes them. (The registry alone: packages/kube's
// registry.kube.test.ts.)
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNode, type XdsClient as XdsClientType, XdsClient } from '@weft/proxy';
import { findOnPath, kubeCluster, kubeLocalDir, needsKube, holdClusterLock } from '@weft/testing';
import { TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/weftd.js', import.meta.url));
const kubectlBin = findOnPath('kubectl') ?? join(kubeLocalDir(), 'bin', 'kubectl');
const skip = needsKube() ?? (existsSync(kubectlBin) ? undefined : 'needs kubectl (on PATH, or built by kube-local into $KUBE_LOCAL_DIR/bin)');

const ns = `weft-test-kreg-xds-${randomBytes(3).toString('hex')}`;
const fqdn = (name: string) => `${name}.${ns}.svc.cluster.local`;
const cluster = (name: string, port: number) => `outbound|${port}||${fqdn(name)}`;

let kubeconfig: string;
let releaseLock: (() => Promise<void>) | undefined;
let dir: string;
let weftd: ChildProcess | undefined;
let exited: Promise<number | null>;
const lines: { msg: string; [k: string]: unknown }[] = [];
let monitoring: string;
let client: XdsClientType | undefined;
/** The proxy of the real pod (last test). */
let podClient: XdsClientType | undefined;

function kubectl(args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectlBin, [...args], { env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`kubectl ${args.join(' ')} exited ${code}: ${err}`))));
    child.stdin.end(input ?? '');
  });
}

const apply = (yaml: string) => kubectl(['apply', '-f', '-'], yaml);

interface SliceEndpoint {
  ip: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

/** An EndpointSlice this test manages (not the endpointslice controller), for exact control. */
function slice(name: string, service: string, endpoints: SliceEndpoint[], ports: { name: string; port: number }[]): string {
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    kubernetes.io/service-name: ${service}
    endpointslice.kubernetes.io/managed-by: weft-test
addressType: IPv4
endpoints:
${endpoints.map((e) => `- addresses: ["${e.ip}"]\n  conditions: {ready: ${e.ready ?? true}, serving: ${e.serving ?? e.ready ?? true}, terminating: ${e.terminating ?? false}}`).join('\n')}
ports:
${ports.map((p) => `- {name: ${p.name}, port: ${p.port}, protocol: TCP}`).join('\n')}
`;
}

const reviewsPorts = [
  { name: 'http', port: 8080 },
  { name: 'grpc-api', port: 7070 },
];

function waitForLine(match: (l: { msg: string; [k: string]: unknown }) => boolean, what: string, ms = 120_000): Promise<{ msg: string; [k: string]: unknown }> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = () => {
      const l = lines.find(match);
      if (l) return resolve(l);
      if (weftd?.exitCode !== null || Date.now() > end) return reject(new Error(`weftd did not log ${what}; it logged:\n${lines.slice(-30).map((x) => JSON.stringify(x)).join('\n')}`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

async function metric(type: string): Promise<number> {
  const text = await (await fetch(`${monitoring}/metrics`)).text();
  const m = new RegExp(`^pilot_xds_pushes\\{type="${type}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

interface PushCounts {
  cds: number;
  eds: number;
  lds: number;
  rds: number;
}

async function pushCounts(): Promise<PushCounts> {
  return { cds: await metric('cds'), eds: await metric('eds'), lds: await metric('lds'), rds: await metric('rds') };
}

interface LbEndpoint {
  endpoint?: { address?: { socket_address?: { address?: string; port_value?: number } } };
  health_status?: string | number;
}

/** `address:port [UNHEALTHY]` of one cluster's endpoints in the client's accepted config. */
function endpointsOf(name: string): string[] | undefined {
  const cla = client?.snapshot?.endpoints.get(name) as { endpoints?: { lb_endpoints?: LbEndpoint[] }[] } | undefined;
  if (!cla) return undefined;
  return (cla.endpoints ?? [])
    .flatMap((g) => g.lb_endpoints ?? [])
    .map((e) => {
      const a = e.endpoint?.address?.socket_address;
      const health = e.health_status === 'UNHEALTHY' || e.health_status === 2 ? ' UNHEALTHY' : '';
      return `${a?.address}:${a?.port_value}${health}`;
    })
    .sort();
}

async function until<T>(what: string, probe: () => T | undefined | false, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`waited ${ms} ms for ${what}; client: ${JSON.stringify(client?.status().types)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until weftd has pushed nothing for `quietMs` (other tests share the cluster and weftd watches all of it). */
async function quiet(quietMs = 1000): Promise<void> {
  let last = '';
  let since = Date.now();
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const status = (await (await fetch(`${monitoring}/debug/push_status`)).json()) as { version?: string };
    if (status.version !== last) {
      last = status.version ?? '';
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(skip !== undefined)('weftd --kubeconfig: Services and EndpointSlices to a connected xDS client', () => {
  beforeAll(async () => {
    kubeconfig = await kubeCluster();
    // Held for the whole suite: it only adds and removes its own namespace.
    releaseLock = await holdClusterLock('shared');
    await apply(`apiVersion: v1
kind: Namespace
metadata: {name: ${ns}, labels: {weft-test-kreg: ${ns}}}
`);
    await apply(`apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: ${ns}}
spec:
  ports:
  - {name: http, port: 9080, targetPort: 8080}
  - {name: grpc-api, port: 7070}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: ${ns}}
spec:
  clusterIP: None
  ports:
  - {name: tcp-db, port: 5432}
---
apiVersion: v1
kind: Service
metadata: {name: ratings-ext, namespace: ${ns}}
spec:
  type: ExternalName
  externalName: ratings.example.com
  ports:
  - {name: https, port: 443}
`);
    await apply(slice('reviews-1', 'reviews', [{ ip: '10.244.250.1' }, { ip: '10.244.250.2' }], reviewsPorts));
    await apply(slice('db-1', 'db', [{ ip: '10.244.250.9' }], [{ name: 'tcp-db', port: 5432 }]));

    // Other tests share the cluster: weftd sees only this namespace (discoverySelectors, as
    // istiod's), and the client only its namespace's services (a Sidecar), so that nothing else
    // in the cluster changes its clusters, listeners or routes.
    dir = await mkdtemp(join(tmpdir(), 'weft-kube-services-'));
    const config = join(dir, 'config');
    await mkdir(config);
    await writeFile(join(dir, 'mesh.yaml'), `discoverySelectors:\n- matchLabels: {weft-test-kreg: ${ns}}\n`);
    await writeFile(
      join(config, 'sidecar.yaml'),
      `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: ${ns}}
spec:
  egress:
  - hosts: ["./*"]
`,
    );
    // Selects the pod of the last test by a label only the cluster knows (its proxy sends none).
    await writeFile(
      join(config, 'policy.yaml'),
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-deny, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: kreg-web}}
  action: DENY
  rules:
  - to: [{operation: {ports: ["8080"]}}]
`,
    );
    weftd = spawn(
      process.execPath,
      [bin, '--kubeconfig', kubeconfig, '--system-namespace', ns, '--mesh-config', join(dir, 'mesh.yaml'), '--config-dir', config, '--xds-port', '0', '--monitoring-port', '0', '--no-ca', '--debounce-ms', '50'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    exited = new Promise((resolve) => weftd!.on('exit', (code) => resolve(code)));
    let pending = '';
    weftd.stderr!.on('data', (b: Buffer) => {
      pending += b.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const p of parts) {
        if (!p.trim()) continue;
        try {
          lines.push(JSON.parse(p));
        } catch {
          lines.push({ msg: p });
        }
      }
    });
    const ready = await waitForLine((l) => l.msg === 'weftd ready', 'ready');
    monitoring = `http://127.0.0.1:${ready.monitoringPort as number}`;
    client = new XdsClient({
      address: `127.0.0.1:${ready.xdsPort as number}`,
      node: buildNode({ type: 'sidecar', ip: '10.244.250.100', pod: 'client-1', namespace: ns, labels: { app: 'client' } }),
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
    });
    client.start();
  }, 20 * 60_000);

  afterAll(async () => {
    await podClient?.close();
    await client?.close();
    if (weftd && weftd.exitCode === null) {
      weftd.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
    if (kubeconfig) await kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => {});
    await releaseLock?.();
  });

  it('turns the Services into clusters and the EndpointSlice into endpoints, as Istio names them', async () => {
    await until('the reviews endpoints', () => endpointsOf(cluster('reviews', 9080))?.length === 2);
    expect(endpointsOf(cluster('reviews', 9080))).toEqual(['10.244.250.1:8080', '10.244.250.2:8080']);
    expect(endpointsOf(cluster('reviews', 7070))).toEqual(['10.244.250.1:7070', '10.244.250.2:7070']);
    const clusters = client!.snapshot!.clusters;
    const mine = [...clusters.keys()].filter((n) => n.endsWith(`.${ns}.svc.cluster.local`)).sort();
    expect(mine).toEqual([cluster('ratings-ext', 443), cluster('db', 5432), cluster('reviews', 7070), cluster('reviews', 9080)]);
    expect(clusters.get(cluster('reviews', 9080))).toMatchObject({ type: 'EDS', eds_cluster_config: { service_name: cluster('reviews', 9080) } });
    // Headless: to the address the client dialled, as Istio's passthrough.
    expect(clusters.get(cluster('db', 5432))).toMatchObject({ type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' });
    // ExternalName: a DNS cluster resolving the external name at the service port.
    const ext = clusters.get(cluster('ratings-ext', 443)) as { type?: string; load_assignment?: { endpoints?: { lb_endpoints?: LbEndpoint[] }[] } };
    expect(ext.type).toBe('STRICT_DNS');
    expect(ext.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address).toMatchObject({ address: 'ratings.example.com', port_value: 443 });
    // Outside the Sidecar's scope: nothing of other namespaces.
    expect([...clusters.keys()].filter((n) => n.startsWith('outbound|') && !n.endsWith(`.${ns}.svc.cluster.local`))).toEqual([]);
    expect(client!.snapshot!.listeners.has('0.0.0.0_9080')).toBe(true);
  });

  it('scaling the slice and flipping its conditions pushes EDS only', async () => {
    await quiet();
    const before = await pushCounts();
    const versions = { ...client!.snapshot!.versions };
    const steps: [string, SliceEndpoint[], string[]][] = [
      ['scaled up', [{ ip: '10.244.250.1' }, { ip: '10.244.250.2' }, { ip: '10.244.250.3' }], ['10.244.250.1:8080', '10.244.250.2:8080', '10.244.250.3:8080']],
      ['one not ready', [{ ip: '10.244.250.1' }, { ip: '10.244.250.2', ready: false }, { ip: '10.244.250.3' }], ['10.244.250.1:8080', '10.244.250.2:8080 UNHEALTHY', '10.244.250.3:8080']],
      ['one terminating', [{ ip: '10.244.250.1' }, { ip: '10.244.250.2', ready: false, serving: true, terminating: true }, { ip: '10.244.250.3' }], ['10.244.250.1:8080', '10.244.250.3:8080']],
      ['scaled down', [{ ip: '10.244.250.3' }], ['10.244.250.3:8080']],
    ];
    // The push that brought each step's endpoints, by the version the client accepted them at.
    const edsVersions: string[] = [];
    for (const [what, endpoints, expected] of steps) {
      await apply(slice('reviews-1', 'reviews', endpoints, reviewsPorts));
      await until(`the client's endpoints ${what}`, () => JSON.stringify(endpointsOf(cluster('reviews', 9080))) === JSON.stringify(expected));
      edsVersions.push(client!.snapshot!.versions[TypeUrl.ClusterLoadAssignment]!);
    }
    // A second slice of the Service adds to the first.
    await apply(slice('reviews-2', 'reviews', [{ ip: '10.244.250.4' }], reviewsPorts));
    await until('the second slice', () => endpointsOf(cluster('reviews', 9080))?.length === 2);
    expect(endpointsOf(cluster('reviews', 7070))).toEqual(['10.244.250.3:7070', '10.244.250.4:7070']);
    edsVersions.push(client!.snapshot!.versions[TypeUrl.ClusterLoadAssignment]!);
    // Each of those pushes was endpoints-only: not full, no type regenerated in full, EDS for the
    // changed hosts. (Istio config other tests apply elsewhere in the cluster may share a push with
    // one of ours and make it full: such a push names those configs.)
    for (const v of edsVersions) {
      const pushed = await waitForLine((l) => l.msg === 'pushed' && l.version === v, `the push of version ${v}`, 10_000);
      expect(pushed.edsHosts as number, `push ${v}`).toBeGreaterThanOrEqual(1);
      if (pushed.full && (pushed.configCount as number) > 0) continue;
      expect(pushed, `push ${v}`).toMatchObject({ full: false, types: [] });
    }
    await quiet(500);
    const after = await pushCounts();
    console.log(`pushes while the slices changed: ${JSON.stringify({ cds: after.cds - before.cds, eds: after.eds - before.eds, lds: after.lds - before.lds, rds: after.rds - before.rds })}`);
    expect(after.eds - before.eds).toBeGreaterThanOrEqual(steps.length + 1);
    expect({ cds: after.cds - before.cds, lds: after.lds - before.lds, rds: after.rds - before.rds }).toEqual({ cds: 0, lds: 0, rds: 0 });
    const now = client!.snapshot!.versions;
    for (const t of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.RouteConfiguration]) expect(now[t], t).toBe(versions[t]);
    expect(now[TypeUrl.ClusterLoadAssignment]).not.toBe(versions[TypeUrl.ClusterLoadAssignment]);
    const status = (await (await fetch(`${monitoring}/debug/push_status`)).json()) as { full: boolean; edsHosts: string[] };
    expect(status.full).toBe(false);
    expect(status.edsHosts).toContain(fqdn('reviews'));
  });

  it('a new Service is a full push: the client gets its clusters (CDS)', async () => {
    await quiet();
    const before = await pushCounts();
    await apply(`apiVersion: v1
kind: Service
metadata: {name: details, namespace: ${ns}}
spec:
  ports:
  - {name: http, port: 9080}
`);
    await until('the new cluster', () => client!.snapshot!.clusters.has(cluster('details', 9080)));
    expect((await pushCounts()).cds - before.cds).toBeGreaterThanOrEqual(1);
  });
  it("a pod's own proxy: its workload (labels from the cluster) and the Service selecting it give it inbound config", async () => {
    await apply(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${ns}}
spec:
  selector: {app: kreg-web}
  ports:
  - {name: tcp-web, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Pod
metadata: {name: kreg-web, namespace: ${ns}, labels: {app: kreg-web, version: v1}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {name: pause, image: "registry.k8s.io/pause:3.10", imagePullPolicy: IfNotPresent, ports: [{name: web, containerPort: 8080}]}
`);
    await kubectl(['wait', '--for=condition=Ready', `pod/kreg-web`, '-n', ns, '--timeout=90s']);
    const ip = (await kubectl(['get', 'pod', 'kreg-web', '-n', ns, '-o', 'jsonpath={.status.podIP}'])).trim();
    expect(ip).toMatch(/^10\.244\./);
    const ready = lines.find((l) => l.msg === 'weftd ready')!;
    // As an injected sidecar would connect, but with no labels of its own: they must come from the pod.
    podClient = new XdsClient({
      address: `127.0.0.1:${ready.xdsPort as number}`,
      node: buildNode({ type: 'sidecar', ip, pod: 'kreg-web', namespace: ns }),
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
    });
    podClient.start();
    await until('the inbound cluster of the pod', () => podClient!.snapshot?.clusters.has('inbound|8080||'));
    const inbound = podClient.snapshot!.listeners.get('virtualInbound') as { filter_chains?: { filters?: { name?: string }[] }[] } | undefined;
    const filters = (inbound?.filter_chains ?? []).flatMap((c) => (c.filters ?? []).map((f) => f.name));
    // The DENY policy selects app=kreg-web: only the pod's labels from the registry say so.
    expect(filters).toContain('envoy.filters.network.rbac');
    const clientInbound = client!.snapshot!.listeners.get('virtualInbound') as { filter_chains?: { filters?: { name?: string }[] }[] } | undefined;
    expect((clientInbound?.filter_chains ?? []).flatMap((c) => (c.filters ?? []).map((f) => f.name))).not.toContain('envoy.filters.network.rbac');
  });
});
