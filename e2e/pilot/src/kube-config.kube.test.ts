// weftd in Kubernetes mode against real API servers: a weftd process started with --kubeconfig,
// the proxy's xDS client connected to it, config written with kubectl.
//
// - The shared cluster (kube-local, shared lock): a VirtualService applied with kubectl reaches the
//   client's routes and leaves them when deleted; an invalid object stored while no webhook
//   guarded the namespace is logged with kind/namespace/name and never replaces the accepted one.
// - A private API server (etcd + kube-apiserver from kube-local's binaries, @weft/testing's
//   startPrivateApiServer): an empty cluster, so the CRDs can be installed after weftd starts, and
//   one whose API server can really be stopped and started again while weftd watches. The shared
//   cluster's API server cannot be: every other suite uses it.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { JsonProcess, type LogLine } from '@weft/e2e-harness';
import { buildNode, XdsClient } from '@weft/proxy';
import {
  installWeftCrds as installCrds,
  kubeCluster,
  kubectlOk as kubectl,
  kubectlPath,
  needsKube,
  noteSkip,
  type PrivateApiServer,
  privateApiServerUnmet,
  startPrivateApiServer,
  holdClusterLock,
} from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const weftdBin = fileURLToPath(new URL('../../../apps/weftd/bin/weftd.js', import.meta.url));


const serviceEntry = (ns: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: ${ns}}
spec:
  hosts: [ratings.${ns}.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{address: 127.0.0.1}]
`;

/** A VirtualService whose first route is named `route` (what the client's routes show); weights -5 make it invalid (galley), not structurally. */
const virtualService = (ns: string, name: string, route: string, weights: [number, number] = [100, 0]) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${ns}}
spec:
  hosts: [${name}.${ns}.svc.cluster.local]
  http:
  - name: ${route}
    match: [{headers: {x-weft-test: {exact: "yes"}}}]
    route:
    - destination: {host: ${name}.${ns}.svc.cluster.local}
      weight: ${weights[0]}
    - destination: {host: ${name}.${ns}.svc.cluster.local}
      weight: ${weights[1]}
`;

class Weftd {
  readonly proc: JsonProcess;
  xdsPort = 0;
  monitoringPort = 0;
  constructor(kubeconfig: string) {
    this.proc = new JsonProcess('weftd', [weftdBin, '--kubeconfig', kubeconfig, '--no-ca', '--xds-port', '0', '--monitoring-port', '0', '--debounce-ms', '50']);
  }
  async ready(ms = 90_000): Promise<void> {
    const line = await this.proc.waitFor((l) => l.msg === 'weftd ready', 'weftd ready', ms);
    this.xdsPort = line.xdsPort as number;
    this.monitoringPort = line.monitoringPort as number;
  }
  async json<T>(path: string): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${this.monitoringPort}${path}`);
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }
  /** The store, as /debug/configz shows it, limited to one namespace. */
  async configz(ns: string): Promise<{ kind: string; metadata: { name: string; namespace: string; resourceVersion?: string }; spec: unknown }[]> {
    const all = await this.json<{ kind: string; metadata: { name: string; namespace: string }; spec: unknown }[]>('/debug/configz');
    return all.filter((c) => c.metadata.namespace === ns);
  }
  /** Log lines from index `from` on matching. */
  logged(match: (l: LogLine) => boolean, from = 0): LogLine[] {
    return this.proc.lines.slice(from).filter(match);
  }
}

function xdsClient(port: number, ns: string): XdsClient {
  const client = new XdsClient({ address: `127.0.0.1:${port}`, node: buildNode({ type: 'sidecar', ip: '127.0.0.51', pod: 'probe', namespace: ns }), initialBackoffMs: 100, maxBackoffMs: 1000 });
  client.start();
  return client;
}

/**
 * Route names in the client's route configurations, for the virtual host serving `host`: the
 * snapshot the proxy routes with (weft-proxy gets virtual hosts as resources of their own, VHDS,
 * and puts them back into their route configurations).
 */
function routeNames(client: XdsClient, host: string): string[] {
  const out: string[] = [];
  for (const rc of client.snapshot?.routes.values() ?? []) {
    for (const vh of rc.virtual_hosts ?? []) if (vh.domains?.includes(host)) for (const r of vh.routes ?? []) out.push(r.name ?? '');
  }
  return out;
}

async function eventually(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`not within ${ms / 1000} s: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const suffix = () => randomBytes(3).toString('hex');

const noKubectl = kubectlPath() ? undefined : 'needs kubectl (on PATH, or built into $KUBE_LOCAL_DIR/bin by deploy/kube-local/build.sh)';
const kubeSkip = needsKube() ?? noteSkip(noKubectl);

describe.skipIf(kubeSkip !== undefined)('weftd --kubeconfig on the shared cluster', () => {
  const ns = `weft-test-kubecfg-${suffix()}`;
  let kubeconfig: string;
  let release: (() => Promise<void>) | undefined;
  let weftd: Weftd;
  let client: XdsClient;
  const host = `ratings.${ns}.svc.cluster.local`;

  beforeAll(async () => {
    kubeconfig = await kubeCluster();
    release = await holdClusterLock('shared');
    await installCrds(kubeconfig);
    await kubectl(kubeconfig, ['create', 'namespace', ns]);
    // Stored before weftd (and before any validating webhook in this namespace): never valid.
    await kubectl(kubeconfig, ['apply', '-f', '-'], virtualService(ns, 'broken', 'never', [105, -5]));
    weftd = new Weftd(kubeconfig);
    await weftd.ready();
    client = xdsClient(weftd.xdsPort, ns);
    await client.ready();
  }, 20 * 60_000);

  afterAll(async () => {
    await client?.close();
    await weftd?.proc.stop();
    if (kubeconfig) await kubectl(kubeconfig, ['delete', 'namespace', ns, '--wait=false']).catch(() => {});
    await release?.();
  });

  it('logs an object that was invalid before weftd started with kind/namespace/name and the reason, and leaves it out', async () => {
    const line = await weftd.proc.waitFor((l) => l.msg.startsWith('config rejected') && l.namespace === ns && l.name === 'broken', 'the rejection of broken');
    expect(line).toMatchObject({ level: 'error', scope: 'kube-config', kind: 'VirtualService', namespace: ns, name: 'broken' });
    expect(line.problems).toEqual(['spec.http[0].route[1].weight: weight -5 < 0']);
    expect((await weftd.configz(ns)).map((c) => c.metadata.name)).not.toContain('broken');
    const status = await weftd.json<{ rejected: { namespace: string; name: string }[] }>('/debug/kube_config');
    expect(status.rejected).toContainEqual(expect.objectContaining({ namespace: ns, name: 'broken' }));
  });

  it('a VirtualService applied with kubectl reaches the connected client, an invalid edit does not replace it, deleting it removes it', async () => {
    await kubectl(kubeconfig, ['apply', '-f', '-'], `${serviceEntry(ns)}---\n${virtualService(ns, 'ratings', 'from-kubectl')}`);
    await eventually('route from-kubectl at the client', () => routeNames(client, host).includes('from-kubectl'));
    const accepted = (await weftd.configz(ns)).find((c) => c.kind === 'VirtualService' && c.metadata.name === 'ratings')!;
    expect(accepted.metadata.resourceVersion).toBe((await kubectl(kubeconfig, ['get', 'virtualservice', 'ratings', '-n', ns, '-o', 'jsonpath={.metadata.resourceVersion}'])).trim());

    // An invalid edit (no webhook guards this namespace, so the API server takes it).
    const from = weftd.proc.lines.length;
    await kubectl(kubeconfig, ['apply', '-f', '-'], virtualService(ns, 'ratings', 'invalid-edit', [105, -5]));
    const rejected = await weftd.proc.waitFor((l) => l.msg === 'config rejected; the last accepted version stays in force' && l.name === 'ratings', 'the rejection of the edit', 20_000, from);
    expect(rejected).toMatchObject({ kind: 'VirtualService', namespace: ns, name: 'ratings', problems: ['spec.http[0].route[1].weight: weight -5 < 0'] });
    await new Promise((r) => setTimeout(r, 500));
    expect(routeNames(client, host)).toContain('from-kubectl');
    expect(routeNames(client, host)).not.toContain('invalid-edit');
    expect((await weftd.configz(ns)).find((c) => c.kind === 'VirtualService' && c.metadata.name === 'ratings')).toEqual(accepted);

    // Fixed: accepted.
    await kubectl(kubeconfig, ['apply', '-f', '-'], virtualService(ns, 'ratings', 'fixed', [80, 20]));
    await eventually('route fixed at the client', () => routeNames(client, host).includes('fixed'));
    expect(weftd.logged((l) => l.msg === 'config accepted' && l.name === 'ratings', from)).toHaveLength(1);

    await kubectl(kubeconfig, ['delete', 'virtualservice', 'ratings', '-n', ns]);
    await eventually('route fixed gone from the client', () => !routeNames(client, host).includes('fixed'));
    expect((await weftd.configz(ns)).map((c) => `${c.kind}/${c.metadata.name}`)).toEqual(['ServiceEntry/ratings']);
  });
});

const privateSkip = noteSkip(privateApiServerUnmet() ?? noKubectl);

describe.skipIf(privateSkip !== undefined)('weftd --kubeconfig on a private API server', () => {
  const ns = `weft-test-kubecfg-${suffix()}`;
  let api: PrivateApiServer;
  let weftd: Weftd;
  let client: XdsClient;
  const host = (name: string) => `${name}.${ns}.svc.cluster.local`;

  beforeAll(async () => {
    api = await startPrivateApiServer();
    await kubectl(api.kubeconfig, ['create', 'namespace', ns]);
    weftd = new Weftd(api.kubeconfig);
    await weftd.ready();
    client = xdsClient(weftd.xdsPort, ns);
    await client.ready();
  }, 5 * 60_000);

  afterAll(async () => {
    await client?.close();
    await weftd?.proc.stop();
    await api?.close();
  }, 60_000);

  it('starts on a cluster without the CRDs (one line per kind) and picks each kind up once its CRD is installed', async () => {
    const missing = weftd.logged((l) => l.msg === 'CRD not installed; skipping its kind until it is');
    expect(missing.map((l) => l.crd).sort()).toEqual([
      'authorizationpolicies.security.istio.io',
      'destinationrules.networking.istio.io',
      'gatewayclasses.gateway.networking.k8s.io',
      'gateways.gateway.networking.k8s.io',
      'gateways.networking.istio.io',
      'grpcroutes.gateway.networking.k8s.io',
      'httproutes.gateway.networking.k8s.io',
      'peerauthentications.security.istio.io',
      'referencegrants.gateway.networking.k8s.io',
      'requestauthentications.security.istio.io',
      'serviceentries.networking.istio.io',
      'sidecars.networking.istio.io',
      'virtualservices.networking.istio.io',
      'workloadentries.networking.istio.io',
    ]);
    await installCrds(api.kubeconfig);
    await kubectl(api.kubeconfig, ['apply', '-f', '-'], `${serviceEntry(ns)}---\n${virtualService(ns, 'ratings', 'after-crd')}`);
    await eventually('route after-crd at the client', () => routeNames(client, host('ratings')).includes('after-crd'));
    const picked = weftd.logged((l) => l.msg === 'CRD installed; watching its kind');
    expect(picked.map((l) => l.kind).sort()).toEqual(['AuthorizationPolicy', 'DestinationRule', 'GRPCRoute', 'Gateway', 'Gateway', 'GatewayClass', 'HTTPRoute', 'PeerAuthentication', 'ReferenceGrant', 'RequestAuthentication', 'ServiceEntry', 'Sidecar', 'VirtualService', 'WorkloadEntry']);
    // Still one "not installed" line per kind.
    expect(weftd.logged((l) => l.msg === 'CRD not installed; skipping its kind until it is')).toHaveLength(14);
  });

  it('a kubectl apply of 300 VirtualServices is one batch of store writes and one push', async () => {
    await installCrds(api.kubeconfig);
    const status = () => weftd.json<{ batches: number }>('/debug/kube_config');
    const pushVersion = async () => Number((await weftd.json<{ version?: string }>('/debug/push_status')).version ?? 0);
    const batchesBefore = (await status()).batches;
    const pushesBefore = await pushVersion();
    const t0 = Date.now();
    // A burst is one batch up to 10 s (pilot's own longest debounce). --validate=false: kubectl's
    // client-side schema check of these CRDs costs ~20 ms of CPU per object here, which alone
    // stretches 300 objects to 9 s on a busy machine.
    await kubectl(api.kubeconfig, ['apply', '--validate=false', '-f', '-'], Array.from({ length: 300 }, (_, i) => virtualService(ns, `bulk-${i}`, `b${i}`).replace(`namespace: ${ns}}`, `namespace: ${ns}, labels: {bulk: "yes"}}`)).join('---\n'));
    const applyMs = Date.now() - t0;
    await eventually('300 VirtualServices in weftd', async () => (await weftd.configz(ns)).filter((c) => c.metadata.name.startsWith('bulk-')).length === 300, 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    const batches = (await status()).batches - batchesBefore;
    const pushes = (await pushVersion()) - pushesBefore;
    console.log(`kubectl apply of 300 objects took ${applyMs} ms: ${batches} store batch(es), ${pushes} push(es)`);
    expect(batches).toBe(1);
    expect(pushes).toBe(1);
    await kubectl(api.kubeconfig, ['delete', 'virtualservices', '-n', ns, '-l', 'bulk=yes', '--wait=false']);
    await eventually('the 300 gone', async () => !(await weftd.configz(ns)).some((c) => c.metadata.name.startsWith('bulk-')), 60_000);
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`resumes after the API server restarts (${signal}): the store is the same before and after, nothing lost or written twice`, async () => {
      await installCrds(api.kubeconfig); // idempotent; the test may run alone
      // Enough objects that a relist would show (one batch of store writes if it happened).
      const many = Array.from({ length: 40 }, (_, i) => virtualService(ns, `vs-${signal.toLowerCase()}-${i}`, `r${i}`)).join('---\n');
      await kubectl(api.kubeconfig, ['apply', '-f', '-'], many);
      await eventually('40 VirtualServices in weftd', async () => (await weftd.configz(ns)).filter((c) => c.metadata.name.startsWith(`vs-${signal.toLowerCase()}-`)).length === 40);
      await new Promise((r) => setTimeout(r, 500));
      const before = await weftd.configz(ns);
      const revisionBefore = (await weftd.json<{ revision: number }>('/debug/config_versions')).revision;
      const routesBefore = routeNames(client, host('ratings'));
      const from = weftd.proc.lines.length;

      await api.stopApiServer(signal);
      await weftd.proc.waitFor((l) => l.msg === 'list/watch failed; retrying with backoff', 'a failed list/watch', 30_000, from);
      await new Promise((r) => setTimeout(r, 3000)); // a few retries against a closed port
      expect((await fetch(`http://127.0.0.1:${weftd.monitoringPort}/healthz`)).status).toBe(200);
      await api.startApiServer();
      await weftd.proc.waitFor((l) => l.msg === 'watching again', 'watching again', 60_000, from);

      // A change made after the restart arrives: the watches resumed.
      await kubectl(api.kubeconfig, ['apply', '-f', '-'], virtualService(ns, `after-${signal.toLowerCase()}`, 'after-restart'));
      await eventually('the object applied after the restart', async () => (await weftd.configz(ns)).some((c) => c.metadata.name === `after-${signal.toLowerCase()}`), 60_000);
      await new Promise((r) => setTimeout(r, 1000));
      const after = (await weftd.configz(ns)).filter((c) => c.metadata.name !== `after-${signal.toLowerCase()}`);
      expect(after).toEqual(before);
      // Exactly one store write since: the new object (a relist of unchanged objects writes nothing).
      expect((await weftd.json<{ revision: number }>('/debug/config_versions')).revision).toBe(revisionBefore + 1);
      expect(routeNames(client, host('ratings'))).toEqual(routesBefore);
      // One warning per watched collection per outage (not one per retry), and each one recovers
      // (those still in backoff when the API server came back retry within 30 s at most).
      const failures = weftd.logged((l) => l.msg === 'list/watch failed; retrying with backoff', from);
      expect(new Set(failures.map((l) => l.resource)).size).toBe(failures.length);
      const failed = new Set(failures.map((l) => l.resource));
      expect(failed).toContain('virtualservices.networking.istio.io/v1');
      await eventually('every collection watching again', () => weftd.logged((l) => l.msg === 'watching again', from).length === failed.size, 45_000);
      expect(new Set(weftd.logged((l) => l.msg === 'watching again', from).map((l) => l.resource))).toEqual(failed);
      const relisted = weftd.logged((l) => l.msg === 'relisted', from).map((l) => l.resource);
      console.log(`API server ${signal}: ${failed.size} collections lost their watch and resumed; relisted after 410: ${relisted.length ? relisted.join(', ') : 'none (resumed from their resourceVersion)'}`);
    });
  }
});
