import { describe, expect, it } from 'vitest';
import type { RegistryChange } from '../core/types.ts';
import { ServiceEntryRegistry } from './service-entry.ts';
import { apply, bookinfo, storeFrom } from './test-support.ts';

const reviews = 'reviews.default.svc.cluster.local';
const ratings = 'ratings.default.svc.cluster.local';

function recorder(registry: ServiceEntryRegistry): RegistryChange[] {
  const changes: RegistryChange[] = [];
  registry.onChange((c) => changes.push(c));
  return changes;
}

function shown(changes: RegistryChange[]): { services: boolean; endpoints: string[]; hosts?: string[] }[] {
  return changes.map((c) => ({ services: c.services, endpoints: [...c.endpoints].sort(), ...(c.hosts ? { hosts: [...c.hosts].sort() } : {}) }));
}

describe('ServiceEntryRegistry: BookInfo in local mode', () => {
  const store = storeFrom(bookinfo('platform/local/bookinfo.yaml'));
  const registry = new ServiceEntryRegistry(store);

  it('has one service per ServiceEntry host, with its port, location, resolution and identities', () => {
    const services = registry.services();
    expect(services.map((s) => s.hostname).sort()).toEqual([
      'details.default.svc.cluster.local',
      'productpage.default.svc.cluster.local',
      ratings,
      reviews,
    ]);
    const r = services.find((s) => s.hostname === reviews)!;
    expect(r).toMatchObject({
      namespace: 'default',
      origin: { kind: 'ServiceEntry', namespace: 'default', name: 'reviews' },
      ports: [{ name: 'http', port: 9080, protocol: 'HTTP' }],
      addresses: [],
      resolution: 'STATIC',
      location: 'MESH_INTERNAL',
      serviceAccounts: ['spiffe://cluster.local/ns/default/sa/bookinfo-reviews'],
      selector: { app: 'reviews' },
    });
    expect([...r.exportTo]).toEqual(['*']);
  });

  it('gives reviews three endpoints, one per version, with identity and sidecar', () => {
    const eps = registry.endpoints(reviews, 'default', 9080);
    expect(eps.map((e) => [e.address, e.port, e.labels.version, e.workloadName])).toEqual([
      ['127.0.0.13', 9080, 'v1', 'reviews-v1'],
      ['127.0.0.14', 9080, 'v2', 'reviews-v2'],
      ['127.0.0.15', 9080, 'v3', 'reviews-v3'],
    ]);
    for (const e of eps) {
      expect(e).toMatchObject({ hostname: reviews, namespace: 'default', serviceAccount: 'bookinfo-reviews', tlsMode: 'istio', healthy: true, weight: 1 });
      expect(e.servicePort.name).toBe('http');
    }
    expect(registry.endpoints(reviews, 'default', 80)).toEqual([]);
    expect(registry.endpoints(reviews, 'other', 9080)).toEqual([]);
  });

  it('lists every WorkloadEntry as a workload instance', () => {
    const w = registry.workloads();
    expect(w.map((x) => `${x.name}@${x.address}`)).toEqual([
      'details-v1@127.0.0.11',
      'productpage-v1@127.0.0.10',
      'ratings-v1@127.0.0.12',
      'reviews-v1@127.0.0.13',
      'reviews-v2@127.0.0.14',
      'reviews-v3@127.0.0.15',
    ]);
    expect(w[0]).toMatchObject({ namespace: 'default', serviceAccount: 'bookinfo-details', tlsMode: 'istio', labels: { app: 'details', version: 'v1' } });
  });
});

describe('ServiceEntryRegistry: Istio semantics', () => {
  it('completes short MESH_INTERNAL hosts in the ServiceEntry namespace and keeps external hosts as written', () => {
    const registry = new ServiceEntryRegistry(
      storeFrom(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: internal, namespace: shop}
spec:
  hosts: [cart]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: grpc-api}]
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: shop}
spec:
  hosts: [api.example.com, "*.cdn.example.com"]
  addresses: [240.0.0.1]
  resolution: DNS
  exportTo: ["."]
  subjectAltNames: [spiffe://example.com/api]
  ports: [{number: 443, name: tls, protocol: TLS}]
`),
    );
    const byHost = new Map(registry.services().map((s) => [s.hostname, s]));
    expect(byHost.get('cart.shop.svc.cluster.local')).toMatchObject({ location: 'MESH_INTERNAL', ports: [{ port: 8080, protocol: 'GRPC' }] });
    const api = byHost.get('api.example.com')!;
    expect(api).toMatchObject({ location: 'MESH_EXTERNAL', resolution: 'DNS', addresses: ['240.0.0.1'], serviceAccounts: ['spiffe://example.com/api'] });
    expect([...api.exportTo]).toEqual(['shop']);
    expect(byHost.has('*.cdn.example.com')).toBe(true);
    // A DNS ServiceEntry without endpoints resolves its own host; a wildcard host has nothing to resolve.
    expect(registry.endpoints('api.example.com', 'shop', 443)).toMatchObject([{ address: 'api.example.com', port: 443, tlsMode: 'disabled' }]);
    expect(registry.endpoints('*.cdn.example.com', 'shop', 443)).toEqual([]);
  });

  it('reads exportTo as Istio does: `.` is the own namespace, `~` no one, names as given, `*` everyone', () => {
    const registry = new ServiceEntryRegistry(
      storeFrom(
        ...['[".", "other"]', '["~"]', '["*", "x"]', '[]'].map(
          (e, i) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s${i}, namespace: ns}
spec:
  hosts: [s${i}.example.com]
  exportTo: ${e}
  ports: [{number: 80, name: http}]
`,
        ),
      ),
    );
    expect(registry.services().map((s) => [s.hostname, [...s.exportTo].sort()])).toEqual([
      ['s0.example.com', ['ns', 'other']],
      ['s1.example.com', []],
      ['s2.example.com', ['*']],
      ['s3.example.com', ['*']],
    ]);
  });

  it('takes endpoint ports from the entry (by port name), else the target port, else the service port', () => {
    const registry = new ServiceEntryRegistry(
      storeFrom(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: data}
spec:
  hosts: [db.data.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 5432, name: tcp-pg, targetPort: 6432}
  - {number: 9090, name: http-metrics}
  endpoints:
  - address: 10.0.0.1
    ports: {tcp-pg: 7000}
    labels: {security.istio.io/tlsMode: istio}
    weight: 3
    locality: us-east/us-east-1a
    network: net1
  - address: 10.0.0.2
    serviceAccount: db
  - address: 10.0.0.3
    serviceAccount: db
    labels: {security.istio.io/tlsMode: disabled}
  - address: unix:///var/run/db.sock
`),
    );
    const pg = registry.endpoints('db.data.svc.cluster.local', 'data', 5432);
    expect(pg.map((e) => [e.address, e.port, e.tlsMode, e.weight])).toEqual([
      ['10.0.0.1', 7000, 'istio', 3],
      ['10.0.0.2', 6432, 'istio', 1],
      ['10.0.0.3', 6432, 'disabled', 1],
      ['unix:///var/run/db.sock', 0, 'disabled', 1],
    ]);
    expect(pg[0]).toMatchObject({ locality: { region: 'us-east', zone: 'us-east-1a' }, network: 'net1', workloadName: 'db' });
    expect(registry.endpoints('db.data.svc.cluster.local', 'data', 9090).map((e) => e.port)).toEqual([9090, 9090, 9090, 0]);
    expect(registry.workloads().map((w) => w.address)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', 'unix:///var/run/db.sock']);
    expect(registry.services()[0]!.serviceAccounts).toEqual(['spiffe://cluster.local/ns/data/sa/db']);
  });

  it('selects WorkloadEntries of its own namespace only, with metadata labels over spec labels, and marks unhealthy ones', () => {
    const store = storeFrom(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: a}
spec:
  hosts: [api.a.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http}]
  workloadSelector: {labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-1, namespace: a, labels: {app: api}}
spec: {address: 10.0.0.1, labels: {app: other, track: stable}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-2, namespace: a}
spec: {address: 10.0.0.2, labels: {app: other}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-3, namespace: b}
spec: {address: 10.0.0.3, labels: {app: api}}
`);
    const registry = new ServiceEntryRegistry(store);
    expect(registry.endpoints('api.a.svc.cluster.local', 'a', 80).map((e) => [e.address, e.labels])).toEqual([['10.0.0.1', { app: 'api', track: 'stable' }]]);
    const we = store.get('networking.istio.io/WorkloadEntry', 'a', 'api-1')!;
    store.upsert({ ...we, status: { conditions: [{ type: 'Healthy', status: 'False' }] } });
    expect(registry.endpoints('api.a.svc.cluster.local', 'a', 80)[0]!.healthy).toBe(false);
  });

  it('keeps the oldest definition of a hostname in a namespace and merges the endpoints of all', () => {
    const registry = new ServiceEntryRegistry(
      storeFrom(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: newer, namespace: ns, creationTimestamp: "2024-02-01T00:00:00Z"}
spec:
  hosts: [svc.example.com]
  resolution: STATIC
  ports: [{number: 80, name: http}]
  endpoints: [{address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: older, namespace: ns, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  hosts: [svc.example.com]
  resolution: STATIC
  ports: [{number: 80, name: tcp}]
  endpoints: [{address: 10.0.0.1}]
`),
    );
    expect(registry.services().map((s) => `${s.origin.name}:${s.ports[0]!.protocol}`)).toEqual(['older:TCP']);
    expect(registry.endpoints('svc.example.com', 'ns', 80).map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.2']);
  });
});

describe('ServiceEntryRegistry: change events', () => {
  const setup = () => {
    const store = storeFrom(bookinfo('platform/local/bookinfo.yaml'));
    const registry = new ServiceEntryRegistry(store);
    return { store, registry, changes: recorder(registry) };
  };

  it('announces a new WorkloadEntry as an endpoint change of the hosts that select it', () => {
    const { store, registry, changes } = setup();
    apply(
      store,
      `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v4, namespace: default}
spec:
  address: 127.0.0.16
  serviceAccount: bookinfo-reviews
  labels: {app: reviews, version: v4, security.istio.io/tlsMode: istio}
`,
    );
    expect(shown(changes)).toEqual([{ services: false, endpoints: [reviews] }]);
    expect(registry.endpoints(reviews, 'default', 9080).map((e) => e.labels.version)).toEqual(['v1', 'v2', 'v3', 'v4']);
  });

  it('announces a relabelled WorkloadEntry for both the service it left and the one it joined', () => {
    const { store, changes } = setup();
    const we = store.get('networking.istio.io/WorkloadEntry', 'default', 'reviews-v3')!;
    store.upsert({ ...we, spec: { ...(we.spec as object), labels: { app: 'ratings', version: 'v3', 'security.istio.io/tlsMode': 'istio' } } });
    // ratings gains an identity (bookinfo-reviews), so its service definition changes too.
    expect(shown(changes)).toEqual([{ services: true, endpoints: [ratings, reviews], hosts: [ratings] }]);
  });

  it('announces a WorkloadEntry that changes only its address as endpoints only', () => {
    const { store, registry, changes } = setup();
    const we = store.get('networking.istio.io/WorkloadEntry', 'default', 'reviews-v2')!;
    store.upsert({ ...we, spec: { ...(we.spec as object), address: '127.0.0.99' } });
    store.delete('networking.istio.io/WorkloadEntry', 'default', 'reviews-v1');
    expect(shown(changes)).toEqual([
      { services: false, endpoints: [reviews] },
      { services: false, endpoints: [reviews] },
    ]);
    expect(registry.endpoints(reviews, 'default', 9080).map((e) => e.address)).toEqual(['127.0.0.99', '127.0.0.15']);
  });

  it('announces a WorkloadEntry no ServiceEntry selects as a workload change at its address, moving no endpoints', () => {
    const { store, registry, changes } = setup();
    const lonely = (locality: string, annotation = '') => `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: lonely, namespace: default${annotation ? `, annotations: {note: ${annotation}}` : ''}}
spec: {address: 127.0.0.50, labels: {app: lonely}, locality: ${locality}}
`;
    apply(store, lonely('us-east/zone-a'));
    expect(changes).toEqual([{ services: false, endpoints: new Set(), workloads: new Set(['127.0.0.50']) }]);
    expect(registry.workloads().find((w) => w.name === 'lonely')?.locality).toEqual({ region: 'us-east', zone: 'zone-a' });
    // A new locality is announced too; an annotation changes nothing the workload carries.
    apply(store, lonely('us-west/zone-b'));
    apply(store, lonely('us-west/zone-b', 'hello'));
    expect(changes).toHaveLength(2);
    expect(registry.workloads().find((w) => w.name === 'lonely')?.locality).toEqual({ region: 'us-west', zone: 'zone-b' });
    store.delete('networking.istio.io/WorkloadEntry', 'default', 'lonely');
    expect(changes.at(-1)).toEqual({ services: false, endpoints: new Set(), workloads: new Set(['127.0.0.50']) });
    expect(registry.workloads().some((w) => w.name === 'lonely')).toBe(false);
  });

  it('announces a WorkloadEntry with a new identity as a service change (identities are part of the service)', () => {
    const { store, changes } = setup();
    const we = store.get('networking.istio.io/WorkloadEntry', 'default', 'reviews-v2')!;
    store.upsert({ ...we, spec: { ...(we.spec as object), serviceAccount: 'reviews-v2' } });
    expect(shown(changes)).toEqual([{ services: true, endpoints: [reviews], hosts: [reviews] }]);
  });

  it('announces a ServiceEntry change as a service change, and an edit of its inline endpoints as endpoints only', () => {
    const store = storeFrom(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [ext.example.com, ext2.example.com]
  resolution: STATIC
  ports: [{number: 80, name: http}]
  endpoints: [{address: 10.0.0.1}]
`);
    const registry = new ServiceEntryRegistry(store);
    const changes = recorder(registry);
    const se = store.get('networking.istio.io/ServiceEntry', 'default', 'ext')!;
    const spec = se.spec as Record<string, unknown>;
    store.upsert({ ...se, spec: { ...spec, endpoints: [{ address: '10.0.0.1' }, { address: '10.0.0.2' }] } });
    store.upsert({ ...se, spec: { ...spec, ports: [{ number: 8080, name: 'http' }] } });
    // An annotation changes nothing the mesh routes on.
    store.upsert({ ...se, metadata: { ...se.metadata, annotations: { note: 'x' } }, spec: { ...spec, ports: [{ number: 8080, name: 'http' }] } });
    store.delete('networking.istio.io/ServiceEntry', 'default', 'ext');
    expect(shown(changes)).toEqual([
      { services: false, endpoints: ['ext.example.com', 'ext2.example.com'] },
      // Which services changed, for push scoping.
      { services: true, endpoints: ['ext.example.com', 'ext2.example.com'], hosts: ['ext.example.com', 'ext2.example.com'] },
      { services: true, endpoints: ['ext.example.com', 'ext2.example.com'], hosts: ['ext.example.com', 'ext2.example.com'] },
    ]);
    expect(registry.services()).toEqual([]);
  });

  it('follows WorkloadEntries in and out of a selector with several labels', () => {
    const store = storeFrom(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: shop}
spec:
  hosts: [web.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http}]
  workloadSelector: {labels: {tier: web, app: shop}}
`);
    const registry = new ServiceEntryRegistry(store);
    const changes = recorder(registry);
    const we = (name: string, address: string, tier: string) => `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: shop}
spec: {address: ${address}, labels: {app: shop, tier: ${tier}}}
`;
    apply(store, we('b', '10.0.0.2', 'web'));
    apply(store, we('a', '10.0.0.1', 'web'));
    apply(store, we('c', '10.0.0.3', 'db'));
    const addresses = () => registry.endpoints('web.shop.svc.cluster.local', 'shop', 80).map((e) => e.address);
    expect(addresses()).toEqual(['10.0.0.1', '10.0.0.2']);
    apply(store, we('b', '10.0.0.2', 'db'));
    apply(store, we('c', '10.0.0.3', 'web'));
    expect(addresses()).toEqual(['10.0.0.1', '10.0.0.3']);
    // c, selected by nothing when it came, is announced as a workload at its address.
    expect(changes.map((c) => c.services)).toEqual([false, false, false, false, false]);
    expect(changes.map((c) => [...(c.workloads ?? [])])).toEqual([[], [], ['10.0.0.3'], [], []]);
    // Re-reading the ServiceEntry selects the same entries as the incremental updates did.
    const se = store.get('networking.istio.io/ServiceEntry', 'shop', 'web')!;
    store.upsert({ ...se, metadata: { ...se.metadata, labels: { team: 'x' } } });
    expect(addresses()).toEqual(['10.0.0.1', '10.0.0.3']);
  });

  it('stops announcing after close', () => {
    const { store, registry, changes } = setup();
    registry.close();
    store.delete('networking.istio.io/WorkloadEntry', 'default', 'reviews-v1');
    expect(changes).toEqual([]);
  });
});
