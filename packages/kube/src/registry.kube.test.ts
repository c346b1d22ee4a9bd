// The Kubernetes service registry against a real API server: Services, hand-written EndpointSlices
// and a real pod (whose slice the endpointslice controller writes) reach pilot's service model
// through the informers, and each change is announced as pilot needs it. weftd and an xDS client
// on top of this: apps/weftd/src/kube-services.kube.test.ts.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type V1EndpointSlice, type V1Service } from '@kubernetes/client-node';
import { createLogger } from '@weft/model';
import type { RegistryChange } from '@weft/pilot';
import { kubeCluster, needsKube, holdClusterLock } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from './client.ts';
import { KubeServiceRegistry } from './registry.ts';
import { type KubeServiceWatch, watchKubeServices } from './registry-watch.ts';

const skip = needsKube();
const ns = `weft-test-kreg-${randomBytes(3).toString('hex')}`;
const suffix = 'cluster.local';
const hostOf = (name: string) => `${name}.${ns}.svc.${suffix}`;

let kc: KubeConfig;
let core: CoreV1Api;
let discovery: DiscoveryV1Api;
let registry: KubeServiceRegistry;
let watch: KubeServiceWatch;
let releaseLock: (() => Promise<void>) | undefined;
const logs: { level: string; msg: string }[] = [];
/** Changes that name one of this test's hosts (other tests share the cluster). */
const changes: { services: boolean; endpoints: string[] }[] = [];

async function until<T>(what: string, probe: () => T | undefined | false, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`waited ${ms} ms for ${what}; registry log: ${JSON.stringify(logs.slice(-10))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function sliceBody(name: string, service: string, endpoints: { ip: string; ready?: boolean; serving?: boolean; terminating?: boolean }[]): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'weft-test' } },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false } })),
    ports: [
      { name: 'http', port: 8080, protocol: 'TCP' },
      { name: 'grpc-api', port: 7070, protocol: 'TCP' },
    ],
  };
}

async function putSlice(body: V1EndpointSlice): Promise<void> {
  const name = body.metadata!.name!;
  try {
    const current = await discovery.readNamespacedEndpointSlice({ name, namespace: ns });
    await discovery.replaceNamespacedEndpointSlice({ name, namespace: ns, body: { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata!.resourceVersion! } } });
  } catch (e) {
    if ((e as { code?: number }).code !== 404) throw e;
    await discovery.createNamespacedEndpointSlice({ namespace: ns, body });
  }
}

const endpointsOf = (name: string, port: number) => registry.endpoints(hostOf(name), ns, port).map((e) => `${e.address}:${e.port}${e.healthy ? '' : ' unhealthy'}`);

describe.skipIf(skip !== undefined)('the Kubernetes service registry on a real API server', () => {
  beforeAll(async () => {
    const kubeconfig = await kubeCluster();
    // Held for the whole suite: it only adds and removes its own namespace.
    releaseLock = await holdClusterLock('shared');
    kc = loadKubeConfig(kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    discovery = kc.makeApiClient(DiscoveryV1Api);
    await core.createNamespace({ body: { metadata: { name: ns, labels: { 'weft-test': 'kube-registry' } } } });
    registry = new KubeServiceRegistry({ domainSuffix: suffix });
    registry.onChange((c: RegistryChange) => {
      const mine = [...c.endpoints].filter((h) => h.endsWith(`.${ns}.svc.${suffix}`)).sort();
      if (mine.length > 0) changes.push({ services: c.services, endpoints: mine });
    });
    watch = watchKubeServices(kc, registry, { logger: createLogger({ scope: 'kube-registry', level: 'debug', sink: (l) => logs.push(JSON.parse(l)) }) });
    await watch.synced();
  }, 20 * 60_000);

  afterAll(async () => {
    await watch?.stop();
    await core?.deleteNamespace({ name: ns }).catch(() => {});
    await releaseLock?.();
  });

  it('a Service and its EndpointSlice become a service at its cluster IP with endpoints; scaling the slice is an endpoints change only', async () => {
    const created: V1Service = await core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: 'reviews', annotations: { 'networking.istio.io/exportTo': '.' } },
        spec: {
          ports: [
            { name: 'http', port: 9080, targetPort: 8080 },
            { name: 'grpc-api', port: 7070 },
            { name: 'db', port: 3306 },
          ],
        },
      },
    });
    const svc = await until('the Service in the registry', () => registry.services().find((s) => s.hostname === hostOf('reviews')));
    expect(svc).toMatchObject({ namespace: ns, addresses: [created.spec!.clusterIP], resolution: 'STATIC', location: 'MESH_INTERNAL' });
    expect(svc.ports.map((p) => `${p.name}:${p.port}:${p.protocol}`)).toEqual(['http:9080:HTTP', 'grpc-api:7070:GRPC', 'db:3306:TCP']);
    expect([...svc.exportTo]).toEqual([ns]);
    expect(changes.splice(0)).toEqual([{ services: true, endpoints: [hostOf('reviews')] }]);

    await putSlice(sliceBody('reviews-1', 'reviews', [{ ip: '10.244.250.1' }, { ip: '10.244.250.2' }]));
    await until('two endpoints', () => endpointsOf('reviews', 9080).length === 2);
    expect(endpointsOf('reviews', 9080)).toEqual(['10.244.250.1:8080', '10.244.250.2:8080']);
    expect(endpointsOf('reviews', 7070)).toEqual(['10.244.250.1:7070', '10.244.250.2:7070']);
    // A second slice of the same Service adds to the first.
    await putSlice(sliceBody('reviews-2', 'reviews', [{ ip: '10.244.250.3' }]));
    await until('the second slice', () => endpointsOf('reviews', 9080).length === 3);
    await putSlice(sliceBody('reviews-1', 'reviews', [{ ip: '10.244.250.1' }, { ip: '10.244.250.2', ready: false }]));
    await until('a not-ready endpoint', () => endpointsOf('reviews', 9080).includes('10.244.250.2:8080 unhealthy'));
    await putSlice(sliceBody('reviews-1', 'reviews', [{ ip: '10.244.250.1' }, { ip: '10.244.250.2', ready: false, serving: true, terminating: true }]));
    await until('a terminating endpoint gone', () => endpointsOf('reviews', 9080).length === 2);
    expect(endpointsOf('reviews', 9080)).toEqual(['10.244.250.1:8080', '10.244.250.3:8080']);
    await discovery.deleteNamespacedEndpointSlice({ name: 'reviews-2', namespace: ns });
    await until('the second slice gone', () => endpointsOf('reviews', 9080).length === 1);
    expect(changes.splice(0)).toEqual(Array.from({ length: 5 }, () => ({ services: false, endpoints: [hostOf('reviews')] })));
  });

  it('headless and ExternalName Services as Istio reads them', async () => {
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'db' }, spec: { clusterIP: 'None', ports: [{ name: 'tcp-db', port: 5432 }] } } });
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'ext' }, spec: { type: 'ExternalName', externalName: 'ratings.example.com', ports: [{ name: 'https', port: 443 }] } } });
    await putSlice({ ...sliceBody('db-1', 'db', [{ ip: '10.244.250.9' }]), ports: [{ name: 'tcp-db', port: 5432 }] });
    await until('the headless endpoint', () => endpointsOf('db', 5432).length === 1);
    expect(registry.services().find((s) => s.hostname === hostOf('db'))).toMatchObject({ resolution: 'NONE', addresses: [], location: 'MESH_INTERNAL' });
    expect(registry.services().find((s) => s.hostname === hostOf('ext'))).toMatchObject({ resolution: 'DNS', addresses: [], location: 'MESH_EXTERNAL' });
    expect(endpointsOf('ext', 443)).toEqual(['ratings.example.com:443']);
  });

  it('a real pod behind a Service: the controller-written slice, the pod as the endpoint and as a workload', async () => {
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'pods' }, spec: { selector: { app: 'kreg-pod' }, ports: [{ name: 'http-web', port: 80, targetPort: 8080 }] } } });
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'kreg-pod', labels: { app: 'kreg-pod', version: 'v1', 'security.istio.io/tlsMode': 'istio' } },
        spec: {
          terminationGracePeriodSeconds: 0,
          containers: [{ name: 'pause', image: 'registry.k8s.io/pause:3.10', imagePullPolicy: 'IfNotPresent', ports: [{ name: 'web', containerPort: 8080 }] }],
        },
      },
    });
    const e = await until('the pod as an endpoint', () => registry.endpoints(hostOf('pods'), ns, 80).find((x) => x.healthy), 90_000);
    const pod = await core.readNamespacedPod({ name: 'kreg-pod', namespace: ns });
    expect(e).toMatchObject({ address: pod.status!.podIP, port: 8080, serviceAccount: 'default', workloadName: 'kreg-pod', tlsMode: 'istio' });
    expect(e.labels).toMatchObject({ app: 'kreg-pod', version: 'v1', 'kubernetes.io/hostname': pod.spec!.nodeName, 'topology.istio.io/cluster': 'Kubernetes' });
    expect(registry.services().find((s) => s.hostname === hostOf('pods'))!.serviceAccounts).toEqual([`spiffe://cluster.local/ns/${ns}/sa/default`]);
    expect(registry.workloads().find((w) => w.namespace === ns && w.name === 'kreg-pod')).toMatchObject({ address: pod.status!.podIP, serviceAccount: 'default', ports: { web: 8080 } });
    // Relabelled: the endpoint follows without a service change.
    changes.length = 0;
    await core.patchNamespacedPod({ name: 'kreg-pod', namespace: ns, body: [{ op: 'replace', path: '/metadata/labels/version', value: 'v2' }] });
    await until('the new label on the endpoint', () => registry.endpoints(hostOf('pods'), ns, 80)[0]?.labels.version === 'v2');
    expect(changes.every((c) => !c.services)).toBe(true);
    await core.deleteNamespacedPod({ name: 'kreg-pod', namespace: ns, gracePeriodSeconds: 0 });
    await until('the endpoint gone', () => registry.endpoints(hostOf('pods'), ns, 80).length === 0, 60_000);
    await until('the workload gone', () => !registry.workloads().some((w) => w.namespace === ns && w.name === 'kreg-pod'));
  });
});
