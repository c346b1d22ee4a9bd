// What a Sidecar resource saves: the bytes one sidecar is sent (LDS + RDS + CDS + EDS, the
// resources it holds once its config has settled) in a mesh of many namespaces, before and after a
// Sidecar in its namespace with egress hosts `./*` and `istio-system/*` (Istio's recommended way to
// scope a large mesh). weftd runs as a child process; the client is an Envoy-style state-of-the-world
// ADS client (wildcard CDS and LDS, then EDS and RDS for what they name) that ACKs everything, and a
// fresh connection is measured each time. Also prints the resource counts per type.
//
// Environment: BENCH_SIDECAR_NAMESPACES (default 20), BENCH_SIDECAR_SERVICES (services per
// namespace, default 50; each with 2 endpoints), BENCH_PILOT_DEBOUNCE_MS (10).
import { nodeId } from '@weft/mesh';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { credentials, Metadata } from '@grpc/grpc-js';
import { createAdsClient, type DiscoveryResponse__Output, decodeAny, TypeUrl } from '@weft/xds';
import { clusterNameAndType, edsType, routeNames, startWeftd, until, type Weftd } from './support.ts';

const namespaces = Number(process.env.BENCH_SIDECAR_NAMESPACES ?? 20);
const perNamespace = Number(process.env.BENCH_SIDECAR_SERVICES ?? 50);
const debounceMs = Number(process.env.BENCH_PILOT_DEBOUNCE_MS ?? 10);
const clientNamespace = 'ns-0';
const systemServices = 5;

function service(ns: string, i: number, base: number): string {
  const host = `svc-${i}.${ns}.svc.cluster.local`;
  const docs = [
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc-${i}, namespace: ${ns}}
spec:
  hosts: [${host}]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 9090, name: grpc, protocol: GRPC}]
  resolution: STATIC
  location: MESH_INTERNAL
  workloadSelector: {labels: {app: svc-${i}}}
`,
  ];
  // Loopback addresses: config only, nothing is ever sent to them.
  for (let j = 0; j < 2; j++) {
    const n = base * 2 + j;
    docs.push(`apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: svc-${i}-${j}, namespace: ${ns}}
spec:
  address: 127.${20 + Math.floor(n / 62500)}.${Math.floor(n / 250) % 250}.${(n % 250) + 1}
  labels: {app: svc-${i}, version: v${j + 1}}
  serviceAccount: svc-${i}
`);
  }
  return docs.join('---\n');
}

const sidecar = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: ${clientNamespace}}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
`;

const types = [
  ['LDS', TypeUrl.Listener],
  ['RDS', TypeUrl.RouteConfiguration],
  ['CDS', TypeUrl.Cluster],
  ['EDS', TypeUrl.ClusterLoadAssignment],
] as const;

interface Held {
  /** Per type URL: resource name -> encoded bytes (the latest version received). */
  resources: Map<string, Map<string, number>>;
  /** Every resource byte received, repeats included. */
  wire: number;
  ms: number;
}

function resourceName(type: string, value: Uint8Array, any: Parameters<typeof decodeAny>[0]): string {
  if (type === TypeUrl.Cluster) return clusterNameAndType(value).name;
  if (type === TypeUrl.Listener) return decodeAny(any, TypeUrl.Listener).name;
  if (type === TypeUrl.RouteConfiguration) return decodeAny(any, TypeUrl.RouteConfiguration).name;
  return decodeAny(any, TypeUrl.ClusterLoadAssignment).cluster_name;
}

/** One sidecar's connection until its config is complete and has been quiet for 500 ms. */
async function measure(weftd: Weftd, i: number): Promise<Held> {
  const client = createAdsClient(weftd.xds, credentials.createInsecure(), { 'grpc.max_receive_message_length': -1, 'grpc.use_local_subchannel_pool': 1 });
  const stream = client.StreamAggregatedResources(new Metadata());
  const held: Held = { resources: new Map(types.map(([, t]) => [t, new Map()])), wire: 0, ms: 0 };
  const names = new Map<string, string[]>();
  const nonces = new Map<string, string>();
  let last = performance.now();
  const start = last;
  stream.on('error', () => {});
  stream.on('data', (r: DiscoveryResponse__Output) => {
    const type = r.type_url;
    const map = held.resources.get(type);
    // SotW: Listener and Cluster responses are the whole set; RDS and EDS carry what changed.
    if (map && (type === TypeUrl.Listener || type === TypeUrl.Cluster)) map.clear();
    for (const a of r.resources) {
      held.wire += a.value.length;
      map?.set(resourceName(type, a.value, a), a.value.length);
    }
    stream.write({ type_url: type, version_info: r.version_info, response_nonce: r.nonce, resource_names: names.get(type) ?? [] });
    nonces.set(type, r.nonce);
    let follow: [string, string[]] | undefined;
    if (type === TypeUrl.Cluster) {
      follow = [TypeUrl.ClusterLoadAssignment, r.resources.map((a) => clusterNameAndType(a.value)).filter((c) => c.type === edsType).map((c) => c.name).sort()];
    } else if (type === TypeUrl.Listener) {
      follow = [TypeUrl.RouteConfiguration, [...new Set(r.resources.flatMap(routeNames))].sort()];
    }
    if (follow) {
      const [t, want] = follow;
      const before = names.get(t);
      if (before?.join('\n') !== want.join('\n')) {
        names.set(t, want);
        // Resources no longer named are no longer held.
        const m = held.resources.get(t)!;
        for (const n of [...m.keys()]) if (!want.includes(n)) m.delete(n);
        stream.write({ type_url: t, resource_names: want, response_nonce: before ? (nonces.get(t) ?? '') : '' });
      }
    }
    last = performance.now();
  });
  const ip = `127.200.0.${i + 1}`;
  stream.write({
    node: {
      id: nodeId({ type: 'sidecar', ip, pod: `client-${i}`, namespace: clientNamespace }),
      metadata: { fields: { NAMESPACE: { stringValue: clientNamespace, kind: 'stringValue' }, LABELS: { structValue: { fields: { app: { stringValue: 'client', kind: 'stringValue' } } }, kind: 'structValue' } } },
    },
    type_url: TypeUrl.Cluster,
    resource_names: [],
  });
  stream.write({ type_url: TypeUrl.Listener, resource_names: [] });
  const complete = () => types.every(([, t]) => nonces.has(t)) && performance.now() - last > 500;
  if (!(await until(complete, 120_000))) throw new Error('the sidecar did not get a complete config within 2 minutes');
  held.ms = last - start;
  stream.end();
  client.close();
  return held;
}

async function configRevision(weftd: Weftd, has: (key: string) => boolean): Promise<number | undefined> {
  const v = (await (await fetch(`${weftd.monitoring}/debug/config_versions`)).json()) as { revision: number; objects: Record<string, unknown> };
  return Object.keys(v.objects).some(has) ? v.revision : undefined;
}

async function pushedRevision(weftd: Weftd): Promise<number> {
  const s = (await (await fetch(`${weftd.monitoring}/debug/push_status`)).json()) as { configRevision?: number };
  return s.configRevision ?? -1;
}

const kb = (n: number) => `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KiB`;

function sum(held: Held, type: string): { bytes: number; count: number } {
  const m = held.resources.get(type)!;
  let bytes = 0;
  for (const b of m.values()) bytes += b;
  return { bytes, count: m.size };
}

const dir = await mkdtemp(join(tmpdir(), 'weft-bench-sidecar-'));
const configDir = join(dir, 'config');
await mkdir(configDir);
let weftd: Weftd | undefined;
try {
  const docs: string[] = [];
  let base = 0;
  for (let n = 0; n < namespaces; n++) for (let i = 0; i < perNamespace; i++) docs.push(service(`ns-${n}`, i, base++));
  for (let i = 0; i < systemServices; i++) docs.push(service('istio-system', i, base++));
  await writeFile(join(configDir, 'mesh.yaml'), docs.join('---\n'));
  const total = namespaces * perNamespace + systemServices;
  console.log(`sidecar scoping: one sidecar in ${clientNamespace}; ${namespaces} namespaces x ${perNamespace} services + ${systemServices} in istio-system = ${total} services (2 ports, 2 endpoints each)`);
  weftd = await startWeftd(configDir, debounceMs);
  const w = weftd;

  const before = await measure(w, 0);
  await writeFile(join(configDir, 'sidecar.yaml'), sidecar);
  let revision: number | undefined;
  const deadline = performance.now() + 30_000;
  while (revision === undefined && performance.now() < deadline) {
    revision = await configRevision(w, (k) => k.includes('Sidecar'));
    if (revision === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  if (revision === undefined) throw new Error('weftd did not take the Sidecar within 30 s');
  while ((await pushedRevision(w)) < revision) {
    if (performance.now() > deadline) throw new Error('weftd did not push the Sidecar within 30 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  const after = await measure(w, 1);

  console.log('');
  console.log('type   before (no Sidecar)            after (egress ./* istio-system/*)   after/before');
  let tb = 0;
  let ta = 0;
  for (const [label, t] of types) {
    const b = sum(before, t);
    const a = sum(after, t);
    tb += b.bytes;
    ta += a.bytes;
    console.log(
      `${label}    ${kb(b.bytes).padStart(10)} (${String(b.count).padStart(5)} resources)   ${kb(a.bytes).padStart(10)} (${String(a.count).padStart(5)} resources)      ${((100 * a.bytes) / (b.bytes || 1)).toFixed(1)}%`,
    );
  }
  console.log(`total  ${kb(tb).padStart(10)}                     ${kb(ta).padStart(10)}                          ${((100 * ta) / (tb || 1)).toFixed(1)}%  (${(tb / (ta || 1)).toFixed(1)}x smaller)`);
  console.log(`on the wire until settled: ${kb(before.wire)} -> ${kb(after.wire)}; config complete after ${before.ms.toFixed(0)} ms -> ${after.ms.toFixed(0)} ms`);
} finally {
  await weftd?.stop();
  await rm(dir, { recursive: true, force: true });
}
