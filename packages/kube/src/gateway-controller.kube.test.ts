// The Gateway API controller against a real API server: what pilot's conversion computes for a
// GatewayClass, a Gateway and two HTTPRoutes of this test's namespace is written to their status
// subresources (the spec's conditions with observedGeneration and lastTransitionTime, the Gateway's
// address from its Service), and the Gateway gets Istio's automated deployment (ServiceAccount,
// Deployment and Service `<gateway>-<class>`, owned by the Gateway: deleting it deletes them).
// Traffic through such a gateway is the conformance suite's (e2e/gateway-conformance).
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { createLogger, defaultKindRegistry, MemoryConfigStore, type Service } from '@weft/model';
import { convertGatewayApi } from '@weft/pilot';
import { holdClusterLock, installWeftCrds, kubeCluster, needsKube } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiStatusOf, loadKubeConfig } from './client.ts';
import { decodeClusterObject } from './convert.ts';
import { GatewayController } from './gateway-controller.ts';

const skip = needsKube();
const suffix = randomBytes(3).toString('hex');
const ns = `weft-test-gwapi-${suffix}`;
const className = `weft-test-${suffix}`;
const group = 'gateway.networking.k8s.io';

let kc: KubeConfig;
let custom: CustomObjectsApi;
let core: CoreV1Api;
let apps: AppsV1Api;
let controller: GatewayController | undefined;
let releaseLock: (() => Promise<void>) | undefined;
const store = new MemoryConfigStore();
const registry = defaultKindRegistry();

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`waited ${ms} ms for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The object as the cluster holds it, into the store the conversion reads (as weftd's config source does). */
async function sync(plural: string, name: string, namespace?: string): Promise<Record<string, unknown>> {
  const obj = (namespace
    ? await custom.getNamespacedCustomObject({ group, version: plural === 'referencegrants' ? 'v1beta1' : 'v1', namespace, plural, name })
    : await custom.getClusterCustomObject({ group, version: 'v1', plural, name })) as Record<string, unknown>;
  const decoded = decodeClusterObject(obj as unknown as KubernetesObject, registry, `/${plural}/${name}`);
  if (!decoded.config) throw new Error(`${plural}/${name} does not decode: ${JSON.stringify(decoded.problems)}`);
  store.upsert(decoded.config);
  return obj;
}

async function create(plural: string, body: Record<string, unknown>, namespace?: string): Promise<void> {
  if (namespace) await custom.createNamespacedCustomObject({ group, version: 'v1', namespace, plural, body });
  else await custom.createClusterCustomObject({ group, version: 'v1', plural, body });
  await sync(plural, (body.metadata as { name: string }).name, namespace);
}

const echo: Service = {
  hostname: `echo.${ns}.svc.cluster.local`,
  namespace: ns,
  origin: { kind: 'Service', namespace: ns, name: 'echo' },
  ports: [{ port: 8080, name: 'http', protocol: 'HTTP' }],
  addresses: [],
  resolution: 'STATIC',
  location: 'MESH_INTERNAL',
  exportTo: new Set(['*']),
  serviceAccounts: [],
  labels: {},
} as unknown as Service;

type Cond = { type: string; status: string; reason: string; observedGeneration?: number; lastTransitionTime?: string };
const summary = (conds: Cond[] | undefined) => Object.fromEntries((conds ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]));

describe.skipIf(skip !== undefined)('Gateway API controller on a real API server: statuses and automated deployment', () => {
  beforeAll(async () => {
    const kubeconfig = await kubeCluster();
    // Shared: it adds and removes its own namespace and its own GatewayClass only.
    releaseLock = await holdClusterLock('shared');
    await installWeftCrds(kubeconfig);
    kc = loadKubeConfig(kubeconfig);
    custom = kc.makeApiClient(CustomObjectsApi);
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    await core.createNamespace({ body: { metadata: { name: ns, labels: { 'weft-test': 'gateway-api' } } } });
    await create('gatewayclasses', { apiVersion: `${group}/v1`, kind: 'GatewayClass', metadata: { name: className }, spec: { controllerName: 'weft.io/gateway-controller' } });
    await create(
      'gateways',
      {
        apiVersion: `${group}/v1`,
        kind: 'Gateway',
        // ClusterIP: kube-local has no load balancer (the default is LoadBalancer, as Istio's).
        metadata: { name: 'gw', namespace: ns, annotations: { 'networking.istio.io/service-type': 'ClusterIP' } },
        spec: { gatewayClassName: className, listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
      },
      ns,
    );
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'bad-cert' }, type: 'kubernetes.io/tls', data: { 'tls.crt': Buffer.from('not a certificate').toString('base64'), 'tls.key': Buffer.from('not a key').toString('base64') } } });
    await create(
      'gateways',
      {
        apiVersion: `${group}/v1`,
        kind: 'Gateway',
        metadata: { name: 'tls', namespace: ns, annotations: { 'networking.istio.io/service-type': 'ClusterIP' } },
        spec: {
          gatewayClassName: className,
          listeners: [
            { name: 'missing', port: 443, protocol: 'HTTPS', hostname: 'a.example.com', tls: { certificateRefs: [{ name: 'missing-cert' }] } },
            { name: 'bad', port: 443, protocol: 'HTTPS', hostname: 'b.example.com', tls: { certificateRefs: [{ name: 'bad-cert' }] } },
          ],
        },
      },
      ns,
    );
    for (const [name, backend] of [
      ['good', 'echo'],
      ['missing', 'nowhere'],
    ] as const) {
      await create('httproutes', { apiVersion: `${group}/v1`, kind: 'HTTPRoute', metadata: { name, namespace: ns }, spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: backend, port: 8080 }] }] } }, ns);
    }
    controller = new GatewayController({
      kubeConfig: kc,
      logger: createLogger({ scope: 'kube-gateway', level: 'warn' }),
      store,
      // Only this test's objects: the cluster is shared.
      statuses: () =>
        [...convertGatewayApi({ store, domainSuffix: 'cluster.local', service: (h, n) => (h === echo.hostname && n === ns ? echo : undefined), deployment: { mode: 'managed' } }).statuses.values()].filter(
          (s) => s.namespace === ns || s.name === className,
        ),
      // The pods need not start for this test: their image is never pulled.
      proxy: { image: 'weft/proxy:absent-in-this-test', imagePullPolicy: 'Never', discoveryAddress: 'weftd.istio-system.svc:15012', trustDomain: 'cluster.local' },
      createClasses: false,
      intervalMs: 200,
      refreshMs: 5_000,
    });
    controller.start();
  }, 120_000);

  afterAll(async () => {
    await controller?.stop();
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
    await custom?.deleteClusterCustomObject({ group, version: 'v1', plural: 'gatewayclasses', name: className }).catch(() => undefined);
    await releaseLock?.();
  }, 60_000);

  it('the GatewayClass is Accepted; the Gateway Accepted and Programmed with its Service\'s cluster IP; its listener counts the two routes', async () => {
    const gc = await until('GatewayClass status', async () => {
      const o = (await custom.getClusterCustomObject({ group, version: 'v1', plural: 'gatewayclasses', name: className })) as { status?: { conditions?: Cond[] } };
      return o.status?.conditions?.some((c) => c.type === 'Accepted') && o;
    });
    expect(summary(gc.status?.conditions)).toEqual({ Accepted: 'True/Accepted' });
    const gw = await until('Gateway Programmed with an address', async () => {
      const o = (await custom.getNamespacedCustomObject({ group, version: 'v1', namespace: ns, plural: 'gateways', name: 'gw' })) as {
        metadata: { generation: number };
        status?: { conditions?: Cond[]; addresses?: { type: string; value: string }[]; listeners?: { name: string; attachedRoutes: number; conditions: Cond[] }[] };
      };
      return o.status?.conditions?.some((c) => c.type === 'Programmed' && c.status === 'True') && o;
    });
    const svc = await core.readNamespacedService({ namespace: ns, name: `gw-${className}` });
    expect(gw.status?.addresses).toEqual([{ type: 'IPAddress', value: svc.spec?.clusterIP }]);
    expect(summary(gw.status?.conditions)).toEqual({ Accepted: 'True/Accepted', Programmed: 'True/Programmed' });
    for (const c of gw.status?.conditions ?? []) {
      expect(c.observedGeneration).toBe(gw.metadata.generation);
      expect(c.lastTransitionTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    expect(gw.status?.listeners?.[0]).toMatchObject({ name: 'http', attachedRoutes: 2 });
    expect(summary(gw.status?.listeners?.[0]?.conditions)).toMatchObject({ Accepted: 'True/Accepted', Programmed: 'True/Programmed', ResolvedRefs: 'True/ResolvedRefs' });
  });

  it('an HTTPS listener whose Secret is missing or holds no certificate is ResolvedRefs False / InvalidCertificateRef', async () => {
    const gw = await until('Gateway tls listener statuses', async () => {
      const o = (await custom.getNamespacedCustomObject({ group, version: 'v1', namespace: ns, plural: 'gateways', name: 'tls' })) as { status?: { listeners?: { name: string; conditions: Cond[] }[] } };
      return (o.status?.listeners?.length ?? 0) === 2 && o;
    });
    for (const l of gw.status?.listeners ?? []) {
      expect(summary(l.conditions), l.name).toMatchObject({ ResolvedRefs: 'False/InvalidCertificateRef', Programmed: 'False/Invalid' });
    }
  });

  it('a status someone else resets is written again (within the refresh, 5 s here)', async () => {
    const pending = { conditions: [{ type: 'Accepted', status: 'Unknown', reason: 'Pending', message: 'Waiting for controller', lastTransitionTime: '1970-01-01T00:00:00Z' }] };
    await custom.patchClusterCustomObjectStatus({ group, version: 'v1', plural: 'gatewayclasses', name: className, body: { status: pending } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const t0 = Date.now();
    await until(
      'GatewayClass Accepted again',
      async () => {
        const o = (await custom.getClusterCustomObject({ group, version: 'v1', plural: 'gatewayclasses', name: className })) as { status?: { conditions?: Cond[] } };
        return o.status?.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True');
      },
      15_000,
    );
    console.log(`GatewayClass status restored ${Date.now() - t0} ms after a reset`);
  }, 30_000);

  it('each HTTPRoute says whether it attached and whether its backends resolved, with the spec\'s reasons', async () => {
    const parentsOf = async (name: string) => {
      const o = (await custom.getNamespacedCustomObject({ group, version: 'v1', namespace: ns, plural: 'httproutes', name })) as { status?: { parents?: { controllerName: string; parentRef: { name: string }; conditions: Cond[] }[] } };
      return o.status?.parents;
    };
    const good = await until('HTTPRoute good status', async () => (await parentsOf('good')) ?? false);
    expect(good?.[0]).toMatchObject({ controllerName: 'weft.io/gateway-controller', parentRef: { name: 'gw' } });
    expect(summary(good?.[0]?.conditions)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' });
    const missing = await until('HTTPRoute missing status', async () => (await parentsOf('missing')) ?? false);
    expect(summary(missing?.[0]?.conditions)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'False/BackendNotFound' });
  });

  it('the Gateway gets Istio\'s automated deployment, owned by it; deleting the Gateway deletes it', async () => {
    const name = `gw-${className}`;
    const d = await until('the gateway Deployment', async () => apps.readNamespacedDeployment({ namespace: ns, name }));
    expect(d.spec?.template.metadata?.labels?.['gateway.networking.k8s.io/gateway-name']).toBe('gw');
    expect(d.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Gateway', name: 'gw', controller: true });
    expect(d.spec?.template.spec?.containers[0]?.command).toEqual(['weft-ingress']);
    const svc = await core.readNamespacedService({ namespace: ns, name });
    expect(svc.spec?.ports?.map((p) => p.port)).toEqual([15021, 80]);
    expect(svc.spec?.selector?.['gateway.networking.k8s.io/gateway-name']).toBe('gw');
    await core.readNamespacedServiceAccount({ namespace: ns, name });

    await custom.deleteNamespacedCustomObject({ group, version: 'v1', namespace: ns, plural: 'gateways', name: 'gw' });
    store.delete(`${group}/Gateway`, ns, 'gw');
    await until(
      'the Deployment deleted with its Gateway (garbage collection of owned objects)',
      async () => {
        try {
          await apps.readNamespacedDeployment({ namespace: ns, name });
          return false;
        } catch (e) {
          return apiStatusOf(e) === 404;
        }
      },
      60_000,
    );
  }, 90_000);
});
