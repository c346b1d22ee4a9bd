// Locality load balancing as a proxy receives it: EDS priorities and weights relative to where the
// asking proxy is (Istio's ApplyLocalityLoadBalancer), the CDS flag that makes Envoy weigh
// localities, and where a proxy's locality comes from.
import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { proxyFromNode } from '../proxy/node.ts';
import { generate, must, pushFrom, sidecar } from './test-support.ts';

const EDS = TypeUrl.ClusterLoadAssignment;
const CDS = TypeUrl.Cluster;
const host = 'geo.default.svc.cluster.local';
const cluster = `outbound|80||${host}`;

const entry = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: geo, namespace: default}
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: geo}}
`;

function we(name: string, address: string, locality: string, labels: Record<string, string> = {}): string {
  return `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: default}
spec:
  address: ${address}
  locality: ${locality}
  labels: ${JSON.stringify({ app: 'geo', ...labels })}
`;
}

const endpoints = [
  we('a1', '10.0.1.1', 'us-east/zone-a/rack-1'),
  we('a2', '10.0.1.2', 'us-east/zone-a/rack-2'),
  we('b1', '10.0.2.1', 'us-east/zone-b'),
  we('w1', '10.0.3.1', 'us-west/zone-c'),
  we('e1', '10.0.4.1', 'eu-west/zone-d'),
];

function rule(trafficPolicy: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: geo, namespace: default}
spec:
  host: ${host}
  trafficPolicy:
${trafficPolicy
  .trim()
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
`;
}

const outlier = `outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s}`;

/** `address -> priority` and `locality -> weight` of one proxy's assignment. */
function view(texts: string[], proxy = client('us-east/zone-a/rack-1')) {
  const cla = must(generate(pushFrom(texts), proxy, EDS, [cluster]).get(cluster));
  const priority: Record<string, number> = {};
  const weight: Record<string, number> = {};
  for (const g of cla.endpoints) {
    const where = [g.locality?.region, g.locality?.zone, g.locality?.sub_zone].filter(Boolean).join('/');
    if (g.lb_endpoints.length > 0) weight[where] = (weight[where] ?? 0) + (g.load_balancing_weight?.value ?? 0);
    for (const e of g.lb_endpoints) priority[e.endpoint?.address?.socket_address?.address ?? ''] = g.priority ?? 0;
  }
  return { priority, weight };
}

function client(locality: string, labels: Record<string, string> = {}) {
  const [region, zone, sub_zone] = locality.split('/');
  return proxyFromNode({
    id: 'sidecar~10.9.9.9~client.default~default.svc.cluster.local',
    metadata: { LABELS: { app: 'client', ...labels }, NAMESPACE: 'default' },
    locality: { region: region ?? '', zone: zone ?? '', sub_zone: sub_zone ?? '' },
  });
}

describe('locality failover (EDS priorities)', () => {
  it('without outlier detection every endpoint is priority 0: Envoy would never see them fail, so Istio never fails over', () => {
    expect(view([entry, ...endpoints]).priority).toEqual({ '10.0.1.1': 0, '10.0.1.2': 0, '10.0.2.1': 0, '10.0.3.1': 0, '10.0.4.1': 0 });
    expect(view([entry, ...endpoints, rule('loadBalancer: {localityLbSetting: {enabled: true}}')]).priority['10.0.4.1']).toBe(0);
  });

  it('with outlier detection (the mesh default enables locality LB): subzone, zone, region, then other regions', () => {
    expect(view([entry, ...endpoints, rule(outlier)]).priority).toEqual({ '10.0.1.1': 0, '10.0.1.2': 1, '10.0.2.1': 2, '10.0.3.1': 3, '10.0.4.1': 3 });
  });

  it('priorities are relative to the asking proxy', () => {
    const west = view([entry, ...endpoints, rule(outlier)], client('us-west/zone-c'));
    expect(west.priority).toEqual({ '10.0.3.1': 0, '10.0.1.1': 1, '10.0.1.2': 1, '10.0.2.1': 1, '10.0.4.1': 1 });
  });

  it('failover names the region after the local one; the other regions come last', () => {
    const lb = `${outlier}\nloadBalancer:\n  localityLbSetting:\n    enabled: true\n    failover: [{from: us-west, to: eu-west}]`;
    const west = view([entry, ...endpoints, rule(lb)], client('us-west/zone-c'));
    expect(west.priority).toEqual({ '10.0.3.1': 0, '10.0.4.1': 1, '10.0.1.1': 2, '10.0.1.2': 2, '10.0.2.1': 2 });
  });

  it('enabled: false turns locality load balancing off', () => {
    const lb = `${outlier}\nloadBalancer: {localityLbSetting: {enabled: false}}`;
    expect(new Set(Object.values(view([entry, ...endpoints, rule(lb)]).priority))).toEqual(new Set([0]));
  });

  it('a mesh-wide localityLbSetting applies where the DestinationRule sets none', () => {
    const push = pushFrom([entry, ...endpoints, rule(outlier)], { localityLbSetting: { enabled: false } });
    const cla = must(generate(push, client('us-east/zone-a/rack-1'), EDS, [cluster]).get(cluster));
    expect(cla.endpoints.every((g) => !g.priority)).toBe(true);
  });

  it('failoverPriority splits endpoints by the labels they share with the proxy, in order', () => {
    const labelled = [
      we('p1', '10.0.5.1', 'r/z', { 'topology.istio.io/network': 'n1', tier: 'gold' }),
      we('p2', '10.0.5.2', 'r/z', { 'topology.istio.io/network': 'n1', tier: 'silver' }),
      we('p3', '10.0.5.3', 'r/z', { 'topology.istio.io/network': 'n2', tier: 'gold' }),
    ];
    const lb = `${outlier}\nloadBalancer:\n  localityLbSetting:\n    failoverPriority: [topology.istio.io/network, tier]`;
    const got = view([entry, ...labelled, rule(lb)], client('r/z', { 'topology.istio.io/network': 'n1', tier: 'gold' }));
    // Same network and tier first; same network only next; another network after every level of its own.
    expect(got.priority).toEqual({ '10.0.5.1': 0, '10.0.5.2': 1, '10.0.5.3': 2 });
    // `key=value` compares with the value given, not the proxy's.
    const pinned = view([entry, ...labelled, rule(lb.replace('tier]', 'tier=silver]'))], client('r/z', { 'topology.istio.io/network': 'n1', tier: 'gold' }));
    expect(pinned.priority).toEqual({ '10.0.5.2': 0, '10.0.5.1': 1, '10.0.5.3': 2 });
  });

  it('failoverPriority reads topology labels from endpoint and proxy localities', () => {
    const lb = `${outlier}\nloadBalancer:\n  localityLbSetting:\n    failoverPriority: [topology.kubernetes.io/region, topology.kubernetes.io/zone]`;
    const got = view([entry, ...endpoints, rule(lb)], client('us-east/zone-b'));
    expect(got.priority).toEqual({ '10.0.2.1': 0, '10.0.1.1': 1, '10.0.1.2': 1, '10.0.3.1': 2, '10.0.4.1': 2 });
  });
});

describe('locality weights (distribute)', () => {
  it('the first rule whose from matches sets each locality weight; localities it does not name get no endpoints', () => {
    const lb = `loadBalancer:\n  localityLbSetting:\n    distribute:\n    - from: us-east/zone-a/*\n      to: {"us-east/zone-a/*": 80, "us-west/*": 20}\n    - from: "*"\n      to: {"eu-west/*": 100}`;
    const got = view([entry, ...endpoints, rule(lb)]);
    // zone-a holds two localities (rack-1, rack-2) of weight 1 each: they split its 80.
    expect(got.weight).toEqual({ 'us-east/zone-a/rack-1': 40, 'us-east/zone-a/rack-2': 40, 'us-west/zone-c': 20 });
    expect(view([entry, ...endpoints, rule(lb)], client('us-west/zone-c')).weight).toEqual({ 'eu-west/zone-d': 100 });
  });

  it('CDS asks Envoy to weigh localities when weights are distributed, or failover is explicit with outlier detection', () => {
    const lbOf = (texts: string[]) => must(generate(pushFrom(texts), client('us-east/zone-a'), CDS, [cluster]).get(cluster)).common_lb_config;
    expect(lbOf([entry, ...endpoints, rule(outlier)])?.locality_weighted_lb_config).toBeFalsy();
    const distribute = `loadBalancer:\n  localityLbSetting:\n    distribute: [{from: "*", to: {"us-east/*": 100}}]`;
    expect(lbOf([entry, ...endpoints, rule(distribute)])?.locality_weighted_lb_config).toBeTruthy();
    const failover = `${outlier}\nloadBalancer:\n  localityLbSetting:\n    failover: [{from: us-east, to: us-west}]`;
    expect(lbOf([entry, ...endpoints, rule(failover)])?.locality_weighted_lb_config).toBeTruthy();
    // With outlier detection the panic threshold is minHealthPercent (0 unless set), as Istio sets it.
    expect(lbOf([entry, ...endpoints, rule(failover)])?.healthy_panic_threshold?.value).toBe(0);
  });
});

describe('DNS clusters', () => {
  it("a DNS ServiceEntry's endpoints carry their localities and failover priorities in the cluster's own assignment", () => {
    const dns = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints:
  - {address: us.api.example.com, locality: us-east/zone-a}
  - {address: eu.api.example.com, locality: eu-west/zone-d}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ext, namespace: default}
spec:
  host: api.example.com
  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 3}}
`;
    const name = 'outbound|443||api.example.com';
    const c = must(generate(pushFrom([dns]), client('eu-west/zone-d'), CDS, [name]).get(name));
    expect(c.type).toBe('STRICT_DNS');
    const got = Object.fromEntries(c.load_assignment!.endpoints.map((g) => [g.lb_endpoints[0]?.endpoint?.address?.socket_address?.address, g.priority ?? 0]));
    expect(got).toEqual({ 'eu.api.example.com': 0, 'us.api.example.com': 1 });
  });
});

describe("the proxy's own locality", () => {
  const lb = rule(outlier);

  it('comes from the xDS node, else the istio-locality label, else its WorkloadEntry', () => {
    expect(view([entry, ...endpoints, lb], client('us-west/zone-c')).priority['10.0.3.1']).toBe(0);
    const labelled = sidecar('10.9.9.9', 'client', { app: 'client', 'istio-locality': 'us-west.zone-c' });
    expect(view([entry, ...endpoints, lb], labelled).priority['10.0.3.1']).toBe(0);
    const own = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: 10.9.9.9, locality: eu-west/zone-d, labels: {app: client}}
`;
    const bare = sidecar('10.9.9.9', 'client', { app: 'client' });
    expect(view([entry, ...endpoints, lb, own], bare).priority['10.0.4.1']).toBe(0);
    expect(view([entry, ...endpoints, lb, own], bare).priority['10.0.1.1']).toBe(1);
  });
});
