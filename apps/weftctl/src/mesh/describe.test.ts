import { describe, expect, it } from 'vitest';
import type { DescribedService, ProxyDescription } from '@weft/pilot';
import type { MeshState, ProxyState } from '../up/state.ts';
import { describeWorkload } from './describe.ts';

const reviewsV3: ProxyState = {
  type: 'sidecar',
  name: 'reviews-v3',
  namespace: 'default',
  nodeId: 'sidecar~127.0.0.15~reviews-v3.default~default.svc.cluster.local',
  address: '127.0.0.15',
  serviceAccount: 'bookinfo-reviews',
  labels: { app: 'reviews', version: 'v3' },
  pid: 1,
  adminAddress: '127.0.0.15',
  adminPort: 15000,
  logFile: '/dev/null',
};

const mesh: MeshState = { pid: 1, startedAt: '', stateDir: '/s', configDir: '/s/config', caDir: '/s/ca', proxies: [reviewsV3], apps: [] };

// weftd's answers (pilot's /debug/describe: the push context selected them); these tests check the wording.
const proxy: ProxyDescription['proxy'] = {
  id: reviewsV3.nodeId,
  type: 'sidecar',
  namespace: 'default',
  podName: 'reviews-v3',
  ipAddresses: ['127.0.0.15'],
  labels: { app: 'reviews', version: 'v3' },
  serviceAccount: 'bookinfo-reviews',
  identity: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
};
const noSecurity: Pick<ProxyDescription, 'peerAuthentication' | 'authorization'> = { peerAuthentication: { mode: 'PERMISSIVE', portLevel: {}, sources: [] }, authorization: [] };
const reviews = (over: Partial<DescribedService> = {}): DescribedService => ({
  hostname: 'reviews.default.svc.cluster.local',
  namespace: 'default',
  origin: { kind: 'ServiceEntry', name: 'reviews', namespace: 'default' },
  selectedBy: { workloadSelector: { app: 'reviews' } },
  ports: [{ name: 'http', number: 9080, protocol: 'HTTP' }],
  destinationRule: {
    kind: 'DestinationRule',
    name: 'reviews',
    namespace: 'default',
    host: 'reviews',
    trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
    subsets: [
      { name: 'v1', labels: { version: 'v1' }, selectsWorkload: false },
      { name: 'v2', labels: { version: 'v2' }, selectsWorkload: false },
      { name: 'v3', labels: { version: 'v3' }, selectsWorkload: true },
    ],
  } as DescribedService['destinationRule'],
  virtualServices: [],
  gateways: [],
  ...over,
});
const vsRef = (name: string) => ({ kind: 'VirtualService', name, namespace: 'default', hosts: ['reviews'], gateways: [] });
const text = (d: Partial<ProxyDescription>) => describeWorkload({ version: '1', proxy, services: [reviews()], ...noSecurity, ...d }, reviewsV3, mesh).join('\n');

describe('describe WORKLOAD', () => {
  it('names the service that selects the workload, its matching subset and the weight of the routes that reach it', () => {
    const vs = {
      ...vsRef('reviews'),
      httpRoutes: 1,
      routes: [
        {
          match: [],
          destinations: [
            { host: 'reviews', subset: 'v1', weight: 50, reachesWorkload: false },
            { host: 'reviews', subset: 'v3', weight: 50, reachesWorkload: true },
          ],
        },
      ],
    };
    const t = text({ services: [reviews({ virtualServices: [vs] })] });
    expect(t).toContain('Identity: spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    expect(t).toContain('Service: reviews.default.svc.cluster.local (ServiceEntry reviews.default: its workloadSelector app=reviews matches)');
    expect(t).toContain('Matching subsets: v3');
    expect(t).toContain('(Non-matching subsets v1,v2)');
    expect(t).toContain('Traffic Policy: TLS ISTIO_MUTUAL');
    expect(t).toContain('Route to host "reviews" subset "v3" with weight 50% for (everything)');
    expect(t).toContain('subset v1 does not select this pod');
    expect(t).not.toContain('WARNING');
  });

  it('warns when no route reaches the workload', () => {
    const vs = {
      ...vsRef('reviews'),
      httpRoutes: 2,
      routes: [
        { match: [{ headers: { 'end-user': { exact: 'jason' } } }], destinations: [{ host: 'reviews', subset: 'v2', weight: 100, reachesWorkload: false }] },
        { match: [], destinations: [{ host: 'reviews', subset: 'v1', weight: 100, reachesWorkload: false }] },
      ],
    };
    const t = text({ services: [reviews({ virtualServices: [vs] })] });
    expect(t).toContain('WARNING: No destinations match pod subsets (checked 2 HTTP routes)');
    expect(t).toContain('Route to host "reviews" subset "v2" with weight 100% for (header end-user = jason): subset v2 does not select this pod');
  });

  it('marks a VirtualService that pilot ignored for the host', () => {
    const older = { ...vsRef('reviews'), httpRoutes: 1, routes: [] };
    const newer = { ...vsRef('ghost'), httpRoutes: 1, routes: [], ignoredFor: { host: 'reviews.default.svc.cluster.local', winner: { kind: 'VirtualService', name: 'reviews', namespace: 'default' } } };
    const t = text({ services: [reviews({ virtualServices: [older, newer] })] });
    expect(t).toContain('VirtualService: reviews.default\n');
    expect(t).toContain('VirtualService: ghost.default (ignored for reviews.default.svc.cluster.local: reviews.default is older and defines the same host)');
  });

  it('words the effective PeerAuthentication and the AuthorizationPolicies that apply', () => {
    const t = text({
      peerAuthentication: {
        mode: 'STRICT',
        portLevel: {},
        sources: [
          { kind: 'PeerAuthentication', name: 'default', namespace: 'default', scope: 'namespace', mode: 'STRICT' },
          { kind: 'PeerAuthentication', name: 'default', namespace: 'istio-system', scope: 'mesh', mode: 'PERMISSIVE' },
        ],
      },
      authorization: [{ kind: 'AuthorizationPolicy', name: 'allow-productpage', namespace: 'default', action: 'ALLOW', scope: 'workload', selector: { app: 'reviews' }, rules: 1 }],
    });
    expect(t).toContain('Workload mTLS mode: STRICT');
    expect(t).toContain('default.default (namespace-wide in default: STRICT)');
    expect(t).toContain('default.istio-system (mesh-wide: PERMISSIVE)');
    expect(t).toContain('ALLOW allow-productpage.default (selects app=reviews; 1 rule(s))');
    expect(t).toContain('requests that match none of its rules are denied');
  });

  it('says PERMISSIVE by default and no policy', () => {
    const t = text({});
    expect(t).toContain('Workload mTLS mode: PERMISSIVE (the default: no PeerAuthentication applies)');
    expect(t).toContain('AuthorizationPolicies: none');
  });
});
