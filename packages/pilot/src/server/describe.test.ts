// /debug/describe answers from the push context: the same selection that translated the proxy's
// config (services by workload, DestinationRule by proxy, VirtualServices in Istio's order,
// PeerAuthentication and AuthorizationPolicy merging), checked on BookInfo.
import { createLogger, defaultKindRegistry, loadText, MemoryConfigStore } from '@weft/model';
import { TypeUrl } from '@weft/xds';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultMeshConfig } from '../core/types.ts';
import { proxyFromNode } from '../proxy/node.ts';
import { buildPushContext } from '../push/context.ts';
import { ServiceEntryRegistry } from '../registry/service-entry.ts';
import { envoyGenerators } from '../translate/index.ts';
import { bookinfoPlatform, networking, pushFrom, router, sidecar } from '../translate/test-support.ts';
import { describeProxy } from './describe.ts';
import { DiscoveryServer } from './discovery.ts';
import { MonitoringServer } from './monitoring.ts';
import { SotwTestClient } from './testing.ts';

const reviewsV3 = () => sidecar('127.0.0.15', 'reviews-v3', { app: 'reviews', version: 'v3' });
const ingress = () => router('127.0.0.100', 'istio-ingressgateway-1', { istio: 'ingressgateway' });

const security = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings-only, namespace: default}
spec: {selector: {matchLabels: {app: ratings}}, mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-productpage, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-productpage]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-ratings, namespace: default}
spec: {selector: {matchLabels: {app: ratings}}, action: DENY, rules: [{}]}
`;

describe('describeProxy', () => {
  it('names the service that selects the workload, its subset and the routes that reach it', () => {
    const push = pushFrom([bookinfoPlatform(), networking('destination-rule-all.yaml'), networking('virtual-service-reviews-50-v3.yaml'), networking('bookinfo-gateway.yaml')]);
    const d = describeProxy(push, reviewsV3(), [ingress()]);
    expect(d.proxy).toMatchObject({ podName: 'reviews-v3', namespace: 'default', labels: expect.objectContaining({ version: 'v3' }), identity: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' });
    expect(d.services.map((s) => s.hostname)).toEqual(['reviews.default.svc.cluster.local']);
    const reviews = d.services[0]!;
    expect(reviews.selectedBy).toEqual({ workloadSelector: { app: 'reviews' } });
    expect(reviews.destinationRule?.subsets.map((x) => [x.name, x.selectsWorkload])).toEqual([
      ['v1', false],
      ['v2', false],
      ['v3', true],
    ]);
    expect(reviews.virtualServices).toHaveLength(1);
    expect(reviews.virtualServices[0]!.routes[0]!.destinations).toEqual([
      { host: 'reviews', subset: 'v1', weight: 50, reachesWorkload: false },
      { host: 'reviews', subset: 'v3', weight: 50, reachesWorkload: true },
    ]);
    // The ingress gateway's VirtualService routes to productpage, not to reviews.
    expect(reviews.gateways).toEqual([]);
    const productpage = describeProxy(push, sidecar('127.0.0.10', 'productpage-v1', { app: 'productpage', version: 'v1' }), [ingress()]).services[0]!;
    expect(productpage.gateways.map((g) => `${g.namespace}/${g.name}`)).toEqual(['default/bookinfo']);
  });

  it('marks a newer VirtualService for the same host ignored, as pilot does', () => {
    const vs = (name: string, t: string, subset: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: default, creationTimestamp: "${t}"}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: ${subset}}}]}]
`;
    const push = pushFrom([bookinfoPlatform(), networking('destination-rule-all.yaml'), vs('a-newer', '2024-02-01T00:00:00Z', 'v1'), vs('z-older', '2024-01-01T00:00:00Z', 'v3')]);
    const [older, newer] = describeProxy(push, reviewsV3()).services[0]!.virtualServices;
    expect(older).toMatchObject({ name: 'z-older' });
    expect(older!.ignoredFor).toBeUndefined();
    expect(newer).toMatchObject({ name: 'a-newer', ignoredFor: { host: 'reviews.default.svc.cluster.local', winner: { name: 'z-older' } } });
  });

  it('gives the effective PeerAuthentication and the AuthorizationPolicies that select the workload', () => {
    const d = describeProxy(pushFrom([bookinfoPlatform(), security]), reviewsV3());
    expect(d.peerAuthentication.mode).toBe('STRICT');
    expect(d.peerAuthentication.sources.map((s) => `${s.namespace}/${s.name} ${s.scope} ${s.mode}`)).toEqual(['default/default namespace STRICT', 'istio-system/default mesh PERMISSIVE']);
    expect(d.authorization).toEqual([{ kind: 'AuthorizationPolicy', name: 'allow-productpage', namespace: 'default', action: 'ALLOW', scope: 'workload', selector: { app: 'reviews' }, rules: 1 }]);
  });
});

describe('/debug/describe', () => {
  let pilot: DiscoveryServer | undefined;
  let monitoring: MonitoringServer | undefined;
  let client: SotwTestClient | undefined;
  afterEach(async () => {
    client?.close();
    await monitoring?.close();
    await pilot?.stop();
  });

  it('describes a connected proxy by node ID or pod.namespace, and says why it cannot otherwise', async () => {
    const store = new MemoryConfigStore();
    for (const text of [bookinfoPlatform(), networking('destination-rule-all.yaml'), networking('virtual-service-reviews-50-v3.yaml')])
      for (const r of loadText(text, 'bookinfo.yaml', { registry: defaultKindRegistry() }).resources) if (r.config) store.upsert(r.config);
    pilot = new DiscoveryServer({
      store,
      registry: new ServiceEntryRegistry(store),
      mesh: defaultMeshConfig,
      generators: { envoy: envoyGenerators },
      buildPushContext,
      proxyFromNode: (n) => proxyFromNode(n),
      debounce: { quietMs: 5, maxMs: 50 },
      logger: createLogger({ scope: 'pilot', sink: () => {} }),
    });
    const port = await pilot.listen({ port: 0 });
    monitoring = await MonitoringServer.start({ port: 0, discovery: pilot, store, logger: createLogger({ scope: 'monitoring', sink: () => {} }) });
    const id = 'sidecar~127.0.0.15~reviews-v3.default~default.svc.cluster.local';
    client = new SotwTestClient(`127.0.0.1:${port}`, { id, metadata: { NAMESPACE: 'default' } });
    client.request(TypeUrl.Cluster, []);
    await client.next();

    const get = async (q: string) => {
      const res = await fetch(`${monitoring!.url}/debug/describe${q}`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    for (const q of [`?proxyID=${encodeURIComponent(id)}`, '?proxyID=reviews-v3.default']) {
      const { status, body } = await get(q);
      expect(status, q).toBe(200);
      expect(body).toMatchObject({ proxy: { id, podName: 'reviews-v3' }, services: [{ hostname: 'reviews.default.svc.cluster.local', virtualServices: [{ name: 'reviews' }] }] });
    }
    expect(await get('?proxyID=ratings-v1.default')).toEqual({ status: 404, body: { error: 'no connected proxy "ratings-v1.default"' } });
    expect((await get('')).status).toBe(400);
  });
});
