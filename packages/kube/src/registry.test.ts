// The Kubernetes service registry as pilot consumes it, fed plain objects shaped as the API server
// sends them: what becomes services, endpoints and workloads, and which changes are announced how.
import { MemoryConfigStore } from '@weft/model';
import { AggregateRegistry, type RegistryChange, ServiceEntryRegistry } from '@weft/pilot';
import { describe, expect, it } from 'vitest';
import { KubeServiceRegistry } from './registry.ts';
import type { KubeEndpointSlice, KubePod, KubeService, KubeSliceEndpoint } from './registry-convert.ts';

const host = 'reviews.shop.svc.cluster.local';

function service(overrides: Partial<NonNullable<KubeService['spec']>> = {}, meta: Partial<NonNullable<KubeService['metadata']>> = {}): KubeService {
  return {
    metadata: { name: 'reviews', namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00Z', labels: { app: 'reviews' }, ...meta },
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.0.20',
      clusterIPs: ['10.96.0.20'],
      selector: { app: 'reviews' },
      ports: [
        { name: 'http', port: 9080, targetPort: 9080, protocol: 'TCP' },
        { name: 'grpc-api', port: 7070, targetPort: 'grpc', protocol: 'TCP' },
      ],
      ...overrides,
    },
  };
}

function ep(address: string, conditions: KubeSliceEndpoint['conditions'] = { ready: true, serving: true, terminating: false }, pod?: string): KubeSliceEndpoint {
  return { addresses: [address], conditions, ...(pod ? { targetRef: { kind: 'Pod', name: pod, namespace: 'shop' } } : {}) };
}

function slice(name: string, endpoints: KubeSliceEndpoint[], labels: Record<string, string> = {}): KubeEndpointSlice {
  return {
    metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'reviews', 'endpointslice.kubernetes.io/managed-by': 'weft-test', ...labels } },
    addressType: 'IPv4',
    endpoints,
    ports: [
      { name: 'http', port: 9080, protocol: 'TCP' },
      { name: 'grpc-api', port: 7000, protocol: 'TCP' },
    ],
  };
}

function pod(name: string, ip: string, labels: Record<string, string> = { app: 'reviews', version: 'v1' }, extra: Partial<KubePod> = {}): KubePod {
  return {
    metadata: {
      name,
      namespace: 'shop',
      generateName: 'reviews-v1-7d9f8c-',
      labels: { 'pod-template-hash': '7d9f8c', ...labels },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'reviews-v1-7d9f8c', controller: true }],
    },
    spec: { serviceAccountName: 'bookinfo-reviews', nodeName: 'node-1', containers: [{ ports: [{ name: 'grpc', containerPort: 7000, protocol: 'TCP' }] }] },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: 'True' }] },
    ...extra,
  };
}

function recorder(r: KubeServiceRegistry): { changes: { services: boolean; endpoints: string[] }[]; take(): { services: boolean; endpoints: string[] }[] } {
  const changes: { services: boolean; endpoints: string[] }[] = [];
  r.onChange((c: RegistryChange) => changes.push({ services: c.services, endpoints: [...c.endpoints].sort() }));
  return { changes, take: () => changes.splice(0) };
}

const addresses = (r: KubeServiceRegistry, port = 9080) => r.endpoints(host, 'shop', port).map((e) => `${e.address}:${e.port}${e.healthy ? '' : ' unhealthy'}`);

describe('KubeServiceRegistry: services', () => {
  it('turns a ClusterIP Service into a service at <name>.<namespace>.svc.<suffix> with Istio port protocols', () => {
    const r = new KubeServiceRegistry();
    const rec = recorder(r);
    r.putService(service({ ports: [...(service().spec!.ports ?? []), { name: 'web', port: 8080 }, { name: 'dns', port: 53, protocol: 'UDP' }, { name: 'x', port: 80, appProtocol: 'kubernetes.io/h2c' }] }));
    expect(rec.take()).toEqual([{ services: true, endpoints: [host] }]);
    const [s] = r.services();
    expect(s).toMatchObject({
      hostname: host,
      namespace: 'shop',
      origin: { kind: 'Service', namespace: 'shop', name: 'reviews' },
      addresses: ['10.96.0.20'],
      resolution: 'STATIC',
      location: 'MESH_INTERNAL',
      selector: { app: 'reviews' },
      labels: { app: 'reviews' },
      serviceAccounts: [],
    });
    expect([...s!.exportTo]).toEqual(['*']);
    expect(s!.ports).toEqual([
      { name: 'http', port: 9080, protocol: 'HTTP', targetPort: 9080 },
      { name: 'grpc-api', port: 7070, protocol: 'GRPC' },
      { name: 'web', port: 8080, protocol: 'UNSUPPORTED' },
      { name: 'dns', port: 53, protocol: 'UDP' },
      { name: 'x', port: 80, protocol: 'HTTP2' },
    ]);
    expect(r.endpoints(host, 'shop', 9080)).toEqual([]);
  });

  it("takes the mesh's defaultServiceExportTo for Services without the exportTo annotation", () => {
    const r = new KubeServiceRegistry({ defaultExportTo: ['.'] });
    r.putService(service());
    expect([...r.services()[0]!.exportTo]).toEqual(['shop']);
    r.putService(service({}, { annotations: { 'networking.istio.io/exportTo': '*' } }));
    expect([...r.services()[0]!.exportTo]).toEqual(['*']);
  });

  it('reads exportTo and declared identities from annotations, dual-stack cluster IPs, and forgets a deleted Service', () => {
    const r = new KubeServiceRegistry({ trustDomain: 'example.org' });
    r.putService(
      service(
        { clusterIPs: ['10.96.0.20', 'fd00::20'] },
        { annotations: { 'networking.istio.io/exportTo': '., istio-system', 'alpha.istio.io/kubernetes-serviceaccounts': 'reviews-sa', 'alpha.istio.io/canonical-serviceaccounts': 'spiffe://other/ns/x/sa/y' } },
      ),
    );
    const [s] = r.services();
    expect([...s!.exportTo].sort()).toEqual(['istio-system', 'shop']);
    expect(s!.addresses).toEqual(['10.96.0.20', 'fd00::20']);
    expect(s!.serviceAccounts).toEqual(['spiffe://example.org/ns/shop/sa/reviews-sa', 'spiffe://other/ns/x/sa/y']);
    const rec = recorder(r);
    r.deleteService(service());
    expect(rec.take()).toEqual([{ services: true, endpoints: [host] }]);
    expect(r.services()).toEqual([]);
  });

  it('a headless Service passes through (no VIP, resolution NONE) and still lists its endpoints', () => {
    const r = new KubeServiceRegistry();
    r.putService(service({ clusterIP: 'None', clusterIPs: ['None'] }));
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5')]));
    const [s] = r.services();
    expect(s).toMatchObject({ resolution: 'NONE', addresses: [], location: 'MESH_INTERNAL' });
    expect(addresses(r)).toEqual(['10.244.0.5:9080']);
    const rec = recorder(r);
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5'), ep('10.244.0.6')]));
    expect(rec.take()).toEqual([{ services: false, endpoints: [host] }]);
  });

  it('an ExternalName Service is a mesh-external DNS service resolving its external name on each port', () => {
    const r = new KubeServiceRegistry();
    r.putService({
      metadata: { name: 'ratings-ext', namespace: 'shop' },
      spec: { type: 'ExternalName', externalName: 'ratings.example.com', ports: [{ name: 'https', port: 443 }], selector: { app: 'ignored' } },
    });
    const [s] = r.services();
    expect(s).toMatchObject({ hostname: 'ratings-ext.shop.svc.cluster.local', resolution: 'DNS', location: 'MESH_EXTERNAL', addresses: [] });
    expect(s!.selector).toBeUndefined();
    expect(r.endpoints('ratings-ext.shop.svc.cluster.local', 'shop', 443)).toMatchObject([{ address: 'ratings.example.com', port: 443, healthy: true, tlsMode: 'disabled' }]);
  });

  it('orders services oldest first, then by hostname', () => {
    const r = new KubeServiceRegistry();
    r.putService(service({}, { name: 'b', creationTimestamp: '2026-01-02T00:00:00Z' }));
    r.putService(service({}, { name: 'c', creationTimestamp: new Date('2026-01-01T00:00:00Z') as unknown as string }));
    r.putService(service({}, { name: 'a', creationTimestamp: '2026-01-02T00:00:00Z' }));
    expect(r.services().map((s) => s.hostname.split('.')[0])).toEqual(['c', 'a', 'b']);
  });
});

describe('KubeServiceRegistry: endpoints', () => {
  it('takes each service port its endpoints from the slice port of the same name', () => {
    const r = new KubeServiceRegistry();
    r.putService(service());
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5'), ep('10.244.0.6')]));
    expect(addresses(r, 9080)).toEqual(['10.244.0.5:9080', '10.244.0.6:9080']);
    expect(addresses(r, 7070)).toEqual(['10.244.0.5:7000', '10.244.0.6:7000']);
    expect(r.endpoints(host, 'shop', 9080)[0]).toMatchObject({ hostname: host, namespace: 'shop', servicePort: { name: 'http', port: 9080 }, tlsMode: 'disabled', weight: 1, labels: { 'topology.istio.io/cluster': 'Kubernetes' } });
  });

  it('scaling a slice, and flipping its conditions, announce endpoints only', () => {
    const r = new KubeServiceRegistry();
    r.putService(service());
    const rec = recorder(r);
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5')]));
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5'), ep('10.244.0.6'), ep('10.244.0.7')]));
    expect(addresses(r)).toEqual(['10.244.0.5:9080', '10.244.0.6:9080', '10.244.0.7:9080']);
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5'), ep('10.244.0.6')]));
    expect(addresses(r)).toEqual(['10.244.0.5:9080', '10.244.0.6:9080']);
    expect(rec.take()).toEqual([
      { services: false, endpoints: [host] },
      { services: false, endpoints: [host] },
      { services: false, endpoints: [host] },
    ]);
    // Not ready and not terminating: sent, as unhealthy (Istio sends unhealthy endpoints by default).
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5'), ep('10.244.0.6', { ready: false, serving: false, terminating: false })]));
    expect(addresses(r)).toEqual(['10.244.0.5:9080', '10.244.0.6:9080 unhealthy']);
    // Terminating (still serving or not): gone, as Istio's EDS filters it.
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5'), ep('10.244.0.6', { ready: false, serving: true, terminating: true })]));
    expect(addresses(r)).toEqual(['10.244.0.5:9080']);
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5'), ep('10.244.0.6', { ready: false, serving: false, terminating: true })]));
    expect(addresses(r)).toEqual(['10.244.0.5:9080']);
    // Ready wins whatever else is said; no conditions at all is ready; ready false with nothing else is terminating (Istio's rule).
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5', { ready: true, terminating: true }), ep('10.244.0.6', null), ep('10.244.0.7', { ready: false })]));
    expect(addresses(r)).toEqual(['10.244.0.5:9080', '10.244.0.6:9080']);
    expect(rec.take()).toEqual([
      { services: false, endpoints: [host] },
      { services: false, endpoints: [host] },
      { services: false, endpoints: [host] },
    ]);
    // The same slice again (a status-only update elsewhere): nothing announced.
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5', { ready: true, terminating: true }), ep('10.244.0.6', null), ep('10.244.0.7', { ready: false })]));
    expect(rec.take()).toEqual([]);
  });

  it('merges every slice of a Service, an address once, and follows slices that come and go', () => {
    const r = new KubeServiceRegistry();
    r.putService(service());
    r.putEndpointSlice(slice('reviews-b', [ep('10.244.0.7'), ep('10.244.0.5')]));
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5'), ep('10.244.0.6')]));
    expect(addresses(r)).toEqual(['10.244.0.5:9080', '10.244.0.6:9080', '10.244.0.7:9080']);
    const rec = recorder(r);
    r.deleteEndpointSlice(slice('reviews-a', []));
    expect(addresses(r)).toEqual(['10.244.0.7:9080', '10.244.0.5:9080']);
    expect(rec.take()).toEqual([{ services: false, endpoints: [host] }]);
    // A slice that now belongs to another Service leaves this one.
    r.putService(service({}, { name: 'details' }));
    rec.take();
    r.putEndpointSlice({ ...slice('reviews-b', [ep('10.244.0.9')]), metadata: { name: 'reviews-b', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'details' } } });
    expect(addresses(r)).toEqual([]);
    expect(r.endpoints('details.shop.svc.cluster.local', 'shop', 9080).map((e) => e.address)).toEqual(['10.244.0.9']);
    expect(rec.take()).toEqual([{ services: false, endpoints: ['details.shop.svc.cluster.local', host] }]);
  });

  it('keeps slices that arrive before their Service, and ignores FQDN, multi-cluster and ownerless slices', () => {
    const r = new KubeServiceRegistry();
    const rec = recorder(r);
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5')]));
    r.putEndpointSlice({ ...slice('reviews-fqdn', [ep('a.example.com')]), addressType: 'FQDN' });
    r.putEndpointSlice(slice('reviews-mcs', [ep('10.244.1.1')], { 'multicluster.kubernetes.io/service-name': 'reviews' }));
    r.putEndpointSlice({ ...slice('orphan', [ep('10.244.1.2')]), metadata: { name: 'orphan', namespace: 'shop' } });
    expect(rec.take()).toEqual([]);
    r.putService(service());
    expect(addresses(r)).toEqual(['10.244.0.5:9080']);
    r.putEndpointSlice({ ...slice('reviews-v6', [ep('fd00::5')]), addressType: 'IPv6' });
    expect(addresses(r)).toEqual(['10.244.0.5:9080', 'fd00::5:9080']);
  });
});

describe('KubeServiceRegistry: pods', () => {
  it('describes endpoints by their pod: labels (augmented as Istio does), service account, workload, sidecar, locality', () => {
    const r = new KubeServiceRegistry();
    r.putPod(pod('reviews-v1-7d9f8c-abcde', '10.244.0.5', { app: 'reviews', version: 'v1', 'security.istio.io/tlsMode': 'istio', 'istio-locality': 'eu.eu-west-1a' }));
    r.putService(service());
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5', undefined, 'reviews-v1-7d9f8c-abcde')]));
    const [e] = r.endpoints(host, 'shop', 9080);
    expect(e).toMatchObject({
      address: '10.244.0.5',
      port: 9080,
      serviceAccount: 'bookinfo-reviews',
      workloadName: 'reviews-v1',
      tlsMode: 'istio',
      locality: { region: 'eu', zone: 'eu-west-1a' },
      labels: {
        app: 'reviews',
        version: 'v1',
        'kubernetes.io/hostname': 'node-1',
        'topology.istio.io/cluster': 'Kubernetes',
        'topology.kubernetes.io/region': 'eu',
        'topology.kubernetes.io/zone': 'eu-west-1a',
      },
    });
    // The endpoints' identities are the service's (a new identity is a service change, as in Istio).
    expect(r.services()[0]!.serviceAccounts).toEqual(['spiffe://cluster.local/ns/shop/sa/bookinfo-reviews']);
  });

  it('waits for the pod an endpoint names, and announces a full change when it brings a new identity', () => {
    const r = new KubeServiceRegistry();
    r.putService(service());
    const rec = recorder(r);
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5', undefined, 'reviews-v1-7d9f8c-abcde'), ep('10.244.0.9')]));
    expect(addresses(r)).toEqual(['10.244.0.9:9080']);
    expect(rec.take()).toEqual([{ services: false, endpoints: [host] }]);
    r.putPod(pod('reviews-v1-7d9f8c-abcde', '10.244.0.5'));
    expect(addresses(r)).toEqual(['10.244.0.5:9080', '10.244.0.9:9080']);
    expect(rec.take()).toEqual([{ services: true, endpoints: [host] }]);
    // A second pod of the same identity is an endpoints change only.
    r.putPod(pod('reviews-v1-7d9f8c-fghij', '10.244.0.6'));
    rec.take();
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5', undefined, 'reviews-v1-7d9f8c-abcde'), ep('10.244.0.6', undefined, 'reviews-v1-7d9f8c-fghij'), ep('10.244.0.9')]));
    expect(rec.take()).toEqual([{ services: false, endpoints: [host] }]);
  });

  it('finds the pod of an endpoint without targetRef by IP (ready pods of the namespace only)', () => {
    const r = new KubeServiceRegistry();
    r.putService(service());
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5')]));
    const rec = recorder(r);
    r.putPod({ ...pod('other', '10.244.0.5'), metadata: { name: 'other', namespace: 'elsewhere', labels: { app: 'x' } } });
    r.putPod(pod('not-ready', '10.244.0.5', { app: 'reviews' }, { status: { phase: 'Running', podIP: '10.244.0.5', conditions: [{ type: 'Ready', status: 'False' }] } }));
    expect(r.endpoints(host, 'shop', 9080)[0]!.serviceAccount).toBeUndefined();
    r.putPod(pod('reviews-v1-7d9f8c-abcde', '10.244.0.5'));
    expect(r.endpoints(host, 'shop', 9080)[0]).toMatchObject({ serviceAccount: 'bookinfo-reviews', labels: { version: 'v1' } });
    expect(rec.take().at(-1)).toEqual({ services: true, endpoints: [host] });
  });

  it('a relabelled pod moves its endpoints (subsets follow) without a full change', () => {
    const r = new KubeServiceRegistry();
    r.putPod(pod('reviews-v1-7d9f8c-abcde', '10.244.0.5'));
    r.putService(service());
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5', undefined, 'reviews-v1-7d9f8c-abcde')]));
    const rec = recorder(r);
    r.putPod(pod('reviews-v1-7d9f8c-abcde', '10.244.0.5', { app: 'reviews', version: 'v2' }));
    expect(r.endpoints(host, 'shop', 9080)[0]!.labels.version).toBe('v2');
    expect(rec.take()).toEqual([{ services: false, endpoints: [host] }]);
    // A status change that alters nothing the mesh reads (a condition): nothing announced.
    r.putPod(pod('reviews-v1-7d9f8c-abcde', '10.244.0.5', { app: 'reviews', version: 'v2' }, { status: { phase: 'Running', podIP: '10.244.0.5', conditions: [{ type: 'Ready', status: 'True' }, { type: 'PodScheduled', status: 'True' }] } }));
    expect(rec.take()).toEqual([]);
  });

  it('lists live pods as workloads (a proxy finds its own by IP); pods no Service selects announce nothing', () => {
    const r = new KubeServiceRegistry();
    r.putService(service());
    const rec = recorder(r);
    r.putPod(pod('client', '10.244.0.30', { app: 'client' }, { spec: { serviceAccountName: 'client-sa', nodeName: 'node-1' } }));
    r.putPod(pod('pending', '', { app: 'client' }, { status: { phase: 'Pending' } }));
    r.putPod(pod('done', '10.244.0.31', { app: 'client' }, { status: { phase: 'Succeeded', podIP: '10.244.0.31' } }));
    expect(rec.take()).toEqual([]);
    expect(r.workloads()).toEqual([
      {
        name: 'client',
        namespace: 'shop',
        address: '10.244.0.30',
        labels: { app: 'client', 'pod-template-hash': '7d9f8c', 'kubernetes.io/hostname': 'node-1', 'topology.istio.io/cluster': 'Kubernetes' },
        serviceAccount: 'client-sa',
        ports: {},
        locality: {},
        weight: 1,
        tlsMode: 'disabled',
      },
    ]);
    // A pod the Service selects: its hosts are announced (a new push context carries the workload), endpoints unchanged.
    r.putPod(pod('reviews-v1-7d9f8c-abcde', '10.244.0.5'));
    expect(rec.take()).toEqual([{ services: false, endpoints: [host] }]);
    expect(r.workloads().map((w) => [w.name, w.ports])).toEqual([
      ['client', {}],
      ['reviews-v1-7d9f8c-abcde', { grpc: 7000 }],
    ]);
    r.deletePod(pod('client', '10.244.0.30'));
    expect(r.workloads().map((w) => w.name)).toEqual(['reviews-v1-7d9f8c-abcde']);
  });

  it("gives a pod its node's locality (topology labels) unless its istio-locality label says otherwise, and follows the node", () => {
    const r = new KubeServiceRegistry();
    r.putNode({ metadata: { name: 'node-1', labels: { 'topology.kubernetes.io/region': 'us-east', 'topology.kubernetes.io/zone': 'us-east-1a' } } });
    r.putService(service());
    r.putPod(pod('reviews-v1-7d9f8c-abcde', '10.244.0.5'));
    r.putPod(pod('reviews-v1-7d9f8c-fghij', '10.244.0.6', { app: 'reviews', version: 'v1', 'istio-locality': 'eu-west.eu-west-1b' }));
    r.putEndpointSlice(slice('reviews-abc', [ep('10.244.0.5', undefined, 'reviews-v1-7d9f8c-abcde'), ep('10.244.0.6', undefined, 'reviews-v1-7d9f8c-fghij')]));
    const localities = () => Object.fromEntries(r.endpoints(host, 'shop', 9080).map((e) => [e.address, e.locality]));
    expect(localities()).toEqual({ '10.244.0.5': { region: 'us-east', zone: 'us-east-1a' }, '10.244.0.6': { region: 'eu-west', zone: 'eu-west-1b' } });
    // Istio's AugmentLabels: the workload carries its locality as topology labels (failoverPriority, subsets).
    expect(r.workloads().find((w) => w.address === '10.244.0.5')?.labels).toMatchObject({ 'topology.kubernetes.io/region': 'us-east', 'topology.kubernetes.io/zone': 'us-east-1a' });
    const rec = recorder(r);
    r.putNode({ metadata: { name: 'node-1', labels: { 'topology.kubernetes.io/region': 'us-west', 'topology.kubernetes.io/zone': 'us-west-2c', 'topology.istio.io/subzone': 'rack-7' } } });
    expect(localities()['10.244.0.5']).toEqual({ region: 'us-west', zone: 'us-west-2c', subzone: 'rack-7' });
    expect(localities()['10.244.0.6']).toEqual({ region: 'eu-west', zone: 'eu-west-1b' });
    expect(rec.take()).toEqual([{ services: false, endpoints: [host] }]);
    // Unchanged labels announce nothing; a deleted node leaves its pods without a locality.
    r.putNode({ metadata: { name: 'node-1', labels: { 'topology.kubernetes.io/region': 'us-west', 'topology.kubernetes.io/zone': 'us-west-2c', 'topology.istio.io/subzone': 'rack-7' } } });
    expect(rec.take()).toEqual([]);
    r.deleteNode({ metadata: { name: 'node-1' } });
    expect(localities()['10.244.0.5']).toEqual({});
  });

  it('takes the network from the pod label, else its namespace label', () => {
    const r = new KubeServiceRegistry();
    r.putService(service());
    r.putPod(pod('reviews-v1-7d9f8c-abcde', '10.244.0.5'));
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5', undefined, 'reviews-v1-7d9f8c-abcde')]));
    const rec = recorder(r);
    r.putNamespace({ metadata: { name: 'shop', labels: { 'topology.istio.io/network': 'net-a' } } });
    expect(r.endpoints(host, 'shop', 9080)[0]).toMatchObject({ network: 'net-a', labels: { 'topology.istio.io/network': 'net-a' } });
    expect(r.workloads()[0]!.network).toBe('net-a');
    expect(rec.take()).toEqual([{ services: false, endpoints: [host] }]);
    r.putNamespace({ metadata: { name: 'shop', labels: { 'topology.istio.io/network': 'net-a', team: 'x' } } });
    expect(rec.take()).toEqual([]);
    expect(r.namespaceLabels('shop')).toEqual({ 'topology.istio.io/network': 'net-a', team: 'x' });
    r.putPod(pod('reviews-v1-7d9f8c-abcde', '10.244.0.5', { app: 'reviews', 'topology.istio.io/network': 'net-b' }));
    expect(r.endpoints(host, 'shop', 9080)[0]!.network).toBe('net-b');
  });
});

describe('KubeServiceRegistry with discoverySelectors', () => {
  it('sees only namespaces whose labels a selector matches; relabelling a namespace brings its objects in or takes them out', () => {
    const r = new KubeServiceRegistry({ discoverySelectors: [{ matchLabels: { mesh: 'on' } }, { matchExpressions: [{ key: 'team', operator: 'In', values: ['a'] }] }] });
    const rec = recorder(r);
    r.putNamespace({ metadata: { name: 'shop', labels: { mesh: 'off' } } });
    r.putService(service());
    r.putPod(pod('reviews-v1-7d9f8c-abcde', '10.244.0.5'));
    r.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5', undefined, 'reviews-v1-7d9f8c-abcde')]));
    expect(r.services()).toEqual([]);
    expect(r.workloads()).toEqual([]);
    expect(rec.take()).toEqual([]);
    r.putNamespace({ metadata: { name: 'shop', labels: { team: 'a' } } });
    expect(r.services().map((s) => s.hostname)).toEqual([host]);
    expect(r.endpoints(host, 'shop', 9080).map((e) => e.serviceAccount)).toEqual(['bookinfo-reviews']);
    expect(r.workloads().map((w) => w.name)).toEqual(['reviews-v1-7d9f8c-abcde']);
    expect(rec.take()).toEqual([{ services: true, endpoints: [host] }]);
    // A label that changes nothing about the selection: nothing announced.
    r.putNamespace({ metadata: { name: 'shop', labels: { team: 'a', mesh: 'on' } } });
    expect(rec.take()).toEqual([]);
    r.putNamespace({ metadata: { name: 'shop', labels: {} } });
    expect(r.services()).toEqual([]);
    expect(r.workloads()).toEqual([]);
    expect(rec.take()).toEqual([{ services: true, endpoints: [host] }]);
  });
});

describe('KubeServiceRegistry in an AggregateRegistry', () => {
  it('comes first: its service wins a hostname a ServiceEntry of the same namespace also defines, endpoints merge', () => {
    const store = new MemoryConfigStore();
    store.upsert({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: { hosts: [host], ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }], location: 'MESH_INTERNAL', resolution: 'STATIC', endpoints: [{ address: '192.0.2.10' }] },
    });
    const kube = new KubeServiceRegistry();
    const se = new ServiceEntryRegistry(store);
    const agg = new AggregateRegistry([kube, se]);
    kube.putService(service());
    kube.putEndpointSlice(slice('reviews-a', [ep('10.244.0.5')]));
    expect(agg.services().map((s) => `${s.origin.kind} ${s.hostname}`)).toEqual([`Service ${host}`]);
    expect(agg.endpoints(host, 'shop', 9080).map((e) => e.address)).toEqual(['10.244.0.5', '192.0.2.10']);
    const changes: RegistryChange[] = [];
    agg.onChange((c) => changes.push(c));
    kube.putEndpointSlice(slice('reviews-a', [ep('10.244.0.6')]));
    expect(changes.map((c) => ({ services: c.services, endpoints: [...c.endpoints] }))).toEqual([{ services: false, endpoints: [host] }]);
    agg.close();
    se.close();
  });
});
