import { describe, expect, it } from 'vitest';
import type { MeshState, ProxyState } from '../up/state.ts';
import { type ConfigEntry, describeWorkload } from './describe.ts';

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

const c = (kind: string, name: string, spec: Record<string, unknown>, namespace = 'default'): ConfigEntry => ({ apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec });

const base: ConfigEntry[] = [
  c('ServiceEntry', 'reviews', { hosts: ['reviews.default.svc.cluster.local'], ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }], workloadSelector: { labels: { app: 'reviews' } } }),
  c('ServiceEntry', 'ratings', { hosts: ['ratings.default.svc.cluster.local'], ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }], workloadSelector: { labels: { app: 'ratings' } } }),
  c('DestinationRule', 'reviews', {
    host: 'reviews',
    trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
      { name: 'v3', labels: { version: 'v3' } },
    ],
  }),
];

describe('describe WORKLOAD', () => {
  it('names the service that selects the workload, its matching subset and the weight of the routes that reach it', () => {
    const vs = c('VirtualService', 'reviews', {
      hosts: ['reviews'],
      http: [
        {
          route: [
            { destination: { host: 'reviews', subset: 'v1' }, weight: 50 },
            { destination: { host: 'reviews', subset: 'v3' }, weight: 50 },
          ],
        },
      ],
    });
    const text = describeWorkload([...base, vs], reviewsV3, mesh).join('\n');
    expect(text).toContain('Service: reviews.default.svc.cluster.local (ServiceEntry reviews.default: its workloadSelector app=reviews matches)');
    expect(text).not.toContain('ratings');
    expect(text).toContain('Matching subsets: v3');
    expect(text).toContain('(Non-matching subsets v1,v2)');
    expect(text).toContain('Traffic Policy: TLS ISTIO_MUTUAL');
    expect(text).toContain('Route to host "reviews" subset "v3" with weight 50% for (everything)');
    expect(text).toContain('subset v1 does not select this pod');
    expect(text).not.toContain('WARNING');
  });

  it('warns when no route reaches the workload', () => {
    const vs = c('VirtualService', 'reviews', { hosts: ['reviews'], http: [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] }, { route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] });
    const text = describeWorkload([...base, vs], reviewsV3, mesh).join('\n');
    expect(text).toContain('WARNING: No destinations match pod subsets (checked 2 HTTP routes)');
    expect(text).toContain('Route to host "reviews" subset "v2" with weight 100% for (header end-user = jason): subset v2 does not select this pod');
  });

  it('takes the most specific PeerAuthentication (workload over namespace over mesh) and lists the AuthorizationPolicies that apply', () => {
    const security = [
      c('PeerAuthentication', 'default', { mtls: { mode: 'PERMISSIVE' } }, 'istio-system'),
      c('PeerAuthentication', 'default', { mtls: { mode: 'STRICT' } }),
      c('PeerAuthentication', 'ratings-only', { selector: { matchLabels: { app: 'ratings' } }, mtls: { mode: 'DISABLE' } }),
      c('AuthorizationPolicy', 'allow-productpage', { selector: { matchLabels: { app: 'reviews' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/bookinfo-productpage'] } }] }] }),
      c('AuthorizationPolicy', 'deny-ratings', { selector: { matchLabels: { app: 'ratings' } }, action: 'DENY', rules: [{}] }),
      c('AuthorizationPolicy', 'other-namespace', { rules: [{}] }, 'foo'),
    ];
    const text = describeWorkload([...base, ...security], reviewsV3, mesh).join('\n');
    expect(text).toContain('Workload mTLS mode: STRICT');
    expect(text).toContain('default.default (namespace-wide in default: STRICT)');
    expect(text).toContain('default.istio-system (mesh-wide: PERMISSIVE)');
    expect(text).not.toContain('ratings-only');
    expect(text).toContain('ALLOW allow-productpage.default (selects app=reviews; 1 rule(s))');
    expect(text).not.toContain('deny-ratings');
    expect(text).not.toContain('other-namespace');
    expect(text).toContain('requests that match none of its rules are denied');
  });

  it('says PERMISSIVE by default and no policy', () => {
    const text = describeWorkload(base, reviewsV3, mesh).join('\n');
    expect(text).toContain('Workload mTLS mode: PERMISSIVE (the default: no PeerAuthentication applies)');
    expect(text).toContain('AuthorizationPolicies: none');
  });
});

describe('describe WORKLOAD with competing configs', () => {
  const created = (e: ConfigEntry, t: string): ConfigEntry => ({ ...e, metadata: { ...e.metadata, creationTimestamp: t } });
  const toV3 = (name: string) => c('VirtualService', name, { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v3' } }] }] });

  it('shows the routes of the oldest VirtualService for the host and marks the newer one ignored, whatever the names', () => {
    const text = describeWorkload([...base, created(toV3('reviews'), '2024-01-01T00:00:00Z'), created(toV3('ghost'), '2024-02-01T00:00:00Z')], reviewsV3, mesh).join('\n');
    expect(text).toContain('VirtualService: reviews.default\n');
    expect(text).toContain('VirtualService: ghost.default (ignored for reviews.default.svc.cluster.local: reviews.default is older and defines the same host)');
    expect(text.indexOf('VirtualService: reviews.default')).toBeLessThan(text.indexOf('VirtualService: ghost.default'));
  });

  it('takes the oldest of two namespace-wide PeerAuthentications', () => {
    const pa = (name: string, mode: string, t: string) => created({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name, namespace: 'default' }, spec: { mtls: { mode } } }, t);
    const text = describeWorkload([...base, pa('a-newer', 'DISABLE', '2024-02-01T00:00:00Z'), pa('z-older', 'STRICT', '2024-01-01T00:00:00Z')], reviewsV3, mesh).join('\n');
    expect(text).toContain('Workload mTLS mode: STRICT');
    expect(text).toContain('z-older.default (namespace-wide in default: STRICT)');
  });
});
