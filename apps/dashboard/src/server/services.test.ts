import { describe, expect, it } from 'vitest';
import { type ConfigzEntry, proxiesOf, serviceDetail, servicesOf, type WeftdData } from './services.ts';

const meta = (name: string, namespace = 'default') => ({ name, namespace, creationTimestamp: '2026-12-07T10:00:00Z' });
const at = (file: string, line: number) => ({ source: { file, line } });

const configs: ConfigzEntry[] = [
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: meta('reviews'),
    spec: { hosts: ['reviews.default.svc.cluster.local'], ports: [{ name: 'http', number: 9080, protocol: 'HTTP' }], workloadSelector: { labels: { app: 'reviews' } } },
    ...at('/c/se-reviews.yaml', 2),
  },
  ...['v1', 'v2'].map(
    (v, i): ConfigzEntry => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: meta(`reviews-${v}`),
      spec: { address: `127.0.0.${13 + i}`, labels: { app: 'reviews', version: v }, ports: { http: 9080 } },
      ...at(`/c/we-reviews-${v}.yaml`, 2),
    }),
  ),
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: meta('reviews'),
    spec: { hosts: ['reviews'], http: [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] }, { route: [{ destination: { host: 'reviews', subset: 'v3' }, weight: 10 }, { destination: { host: 'reviews', subset: 'v1' }, weight: 90 }] }] },
    ...at('/c/vs-reviews.yaml', 2),
    origin: '/home/u/virtual-service-reviews.yaml:5',
  },
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: meta('reviews'),
    spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
    ...at('/c/dr-reviews.yaml', 2),
  },
  { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: meta('default', 'istio-system'), spec: { mtls: { mode: 'STRICT' } }, ...at('/c/pa.yaml', 2) },
  { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: meta('ratings-only'), spec: { selector: { matchLabels: { app: 'ratings' } } }, ...at('/c/ap.yaml', 2) },
  { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: meta('reviews-v2'), spec: { selector: { matchLabels: { version: 'v2' } } }, ...at('/c/ap2.yaml', 2) },
];

const data: WeftdData = {
  configs,
  syncz: [{ id: 'sidecar~127.0.0.13~reviews-v1.default~default.svc.cluster.local', types: { 'type.googleapis.com/envoy.config.cluster.v3.Cluster': { status: 'NACKED', nackReason: 'bad cluster', lastNacked: '2026-12-07T10:01:00Z', sent: '7' } } }],
  problems: { '/c/vs-reviews.yaml': [{ severity: 'error', file: '/c/vs-reviews.yaml', line: 9, message: 'spec.http[0].route: weights must add up to 100', resource: 'VirtualService default/reviews' }], '/c/other.yaml': [{ severity: 'error', message: 'unrelated', resource: 'Gateway x/y' }] },
};

describe('services from weftd’s debug endpoints', () => {
  it('lists ServiceEntry hosts', () => {
    expect(servicesOf(configs)).toEqual([{ host: 'reviews.default.svc.cluster.local', namespace: 'default', name: 'reviews' }]);
  });

  it('shows what applies to a service: routes with weights and subsets, subsets, endpoints and their health, policies, problems', () => {
    const d = serviceDetail(data, 'reviews.default.svc.cluster.local')!;
    expect(d.virtualServices).toEqual([
      {
        name: 'reviews',
        namespace: 'default',
        source: { file: '/home/u/virtual-service-reviews.yaml', line: 5, configFile: { file: '/c/vs-reviews.yaml', line: 2 } },
        hosts: ['reviews'],
        gateways: [],
        http: [
          { matches: [{ headers: { 'end-user': { exact: 'jason' } } }], destinations: [{ host: 'reviews.default.svc.cluster.local', subset: 'v2', weight: 100 }] },
          {
            matches: [],
            destinations: [
              { host: 'reviews.default.svc.cluster.local', subset: 'v3', weight: 10 },
              { host: 'reviews.default.svc.cluster.local', subset: 'v1', weight: 90 },
            ],
          },
        ],
      },
    ]);
    expect(d.destinationRules).toEqual([{ name: 'reviews', namespace: 'default', source: { file: '/c/dr-reviews.yaml', line: 2 }, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }], trafficPolicy: null }]);
    expect(d.endpoints).toEqual([
      { workload: 'reviews-v1', address: '127.0.0.13', port: 9080, labels: { app: 'reviews', version: 'v1' }, healthy: true },
      { workload: 'reviews-v2', address: '127.0.0.14', port: 9080, labels: { app: 'reviews', version: 'v2' }, healthy: false },
    ]);
    expect((d.policies as { name: string }[]).map((p) => p.name)).toEqual(['default', 'reviews-v2']);
    const problems = d.problems as { file: string; line?: number; message: string; kind: string; name: string }[];
    expect(problems.find((p) => p.line === 9)).toMatchObject({ file: '/c/vs-reviews.yaml', kind: 'VirtualService', name: 'default/reviews', message: 'spec.http[0].route: weights must add up to 100' });
    // galley's analysis: subset v3 is not defined by the DestinationRule.
    expect(problems.some((p) => p.kind === 'VirtualService' && /v3/.test(p.message))).toBe(true);
    expect(problems.some((p) => p.message === 'unrelated')).toBe(false);
    expect(serviceDetail(data, 'nothing.default.svc.cluster.local')).toBeUndefined();
  });

  it('also lists services only seen in traffic (Kubernetes Services are not in weftd’s config), with what applies to them', () => {
    const observed = [{ host: 'ratings.default.svc.cluster.local', namespace: 'default', name: 'ratings' }];
    expect(servicesOf(configs, observed).map((x) => x.host)).toEqual(['ratings.default.svc.cluster.local', 'reviews.default.svc.cluster.local']);
    const d = serviceDetail(data, 'ratings.default.svc.cluster.local', true)!;
    expect(d).toMatchObject({ host: 'ratings.default.svc.cluster.local', virtualServices: [], destinationRules: [], endpoints: [] });
    // Policies: the mesh-wide one; those with a selector need its workloads' labels, not known here.
    expect((d.policies as { name: string }[]).map((p) => p.name)).toEqual(['default']);
    expect(serviceDetail(data, 'ratings.default.svc.cluster.local')).toBeUndefined();
  });

  it('summarises proxies by short type name with ACK/NACK state', () => {
    expect(proxiesOf(data.syncz)).toEqual([
      { id: 'sidecar~127.0.0.13~reviews-v1.default~default.svc.cluster.local', workload: 'reviews-v1', namespace: 'default', type: 'sidecar', address: '127.0.0.13', types: { Cluster: { status: 'NACKED', lastNackAt: '2026-12-07T10:01:00Z', nackReason: 'bad cluster', version: '7' } } },
    ]);
  });
});
