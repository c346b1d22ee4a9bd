import { describe, expect, it } from 'vitest';
import { ServiceEntryRegistry } from '../registry/service-entry.ts';
import { apply, bookinfo, storeFrom } from '../registry/test-support.ts';
import { buildPushContext } from './context.ts';
import { names, pushFrom, router, serviceEntry, sidecar } from './test-support.ts';

const reviews = 'reviews.default.svc.cluster.local';
const productpage = 'productpage.default.svc.cluster.local';

const bookinfoTexts = () => [
  bookinfo('platform/local/bookinfo.yaml'),
  bookinfo('networking/bookinfo-gateway.yaml'),
  bookinfo('networking/destination-rule-all.yaml'),
  bookinfo('networking/virtual-service-all-v1.yaml'),
];

describe('push context: BookInfo in local mode', () => {
  const push = pushFrom(bookinfoTexts());
  // A productpage sidecar whose agent sent no labels: the WorkloadEntry behind its IP provides them.
  const pp = sidecar('default', '127.0.0.10', {}, 'productpage-v1');
  const gw = router('istio-system', '127.0.0.100', { istio: 'ingressgateway', app: 'istio-ingressgateway' });

  it('knows the four services and their endpoints by subset', () => {
    expect(push.version).toBe('test');
    expect(push.services.map((s) => s.hostname).sort()).toEqual(['details', 'productpage', 'ratings', 'reviews'].map((n) => `${n}.default.svc.cluster.local`));
    const svc = push.service(reviews, 'default')!;
    expect(push.endpoints(svc, 9080).map((e) => e.address)).toEqual(['127.0.0.13', '127.0.0.14', '127.0.0.15']);
    expect(push.endpoints(svc, 9080, { version: 'v2' }).map((e) => e.address)).toEqual(['127.0.0.14']);
    expect(push.endpoints(svc, 9080, { version: 'v9' })).toEqual([]);
    expect(push.endpoints(svc, 1234)).toEqual([]);
  });

  it('finds the workload behind a sidecar by IP and namespace, and the services it serves', () => {
    expect(push.workload(pp)).toMatchObject({ name: 'productpage-v1', serviceAccount: 'bookinfo-productpage', labels: { app: 'productpage', version: 'v1' } });
    expect(push.servicesOf(pp).map((s) => s.hostname)).toEqual([productpage]);
    const elsewhere = sidecar('other', '127.0.0.10', {}, 'productpage-v1');
    expect(push.workload(elsewhere)).toBeUndefined();
    expect(push.servicesOf(elsewhere)).toEqual([]);
  });

  it('gives sidecars the mesh VirtualServices in Istio order, and the gateway its own', () => {
    expect(names(push.virtualServices(pp, ['mesh']))).toEqual(['default/details', 'default/productpage', 'default/ratings', 'default/reviews']);
    expect(names(push.gateways(gw))).toEqual(['default/bookinfo-gateway']);
    expect(names(push.virtualServices(gw, ['default/bookinfo-gateway']))).toEqual(['default/bookinfo']);
    expect(push.gateways(pp)).toEqual([]);
  });

  it('gives each service its DestinationRule with the subsets of every version', () => {
    const dr = push.destinationRule(pp, reviews)!;
    expect(dr.metadata.name).toBe('reviews');
    expect(dr.spec.subsets!.map((s) => s.name)).toEqual(['v1', 'v2', 'v3']);
    expect(push.destinationRule(gw, reviews)?.metadata.name).toBe('reviews');
    expect(push.destinationRule(pp, 'unknown.example.com')).toBeUndefined();
  });

  it('lets every proxy see every service when there is no Sidecar resource', () => {
    const scope = push.sidecarScope(pp);
    expect(scope.config).toBeUndefined();
    expect(scope.services.map((s) => s.hostname).sort()).toHaveLength(4);
    expect(scope.outboundTrafficPolicy).toBe('ALLOW_ANY');
    expect(push.peerAuthentication(pp)).toMatchObject({ mode: 'PERMISSIVE', sources: [] });
  });

  it('answers repeated questions from its cache', () => {
    expect(push.sidecarScope(pp)).toBe(push.sidecarScope(sidecar('default', '127.0.0.10', {}, 'productpage-v1')));
    expect(push.virtualServices(pp, ['mesh'])).toBe(push.virtualServices(pp, ['mesh']));
  });
});

describe('push context: a snapshot', () => {
  it('does not change when the store and the registry change after it was built', () => {
    const store = storeFrom(...bookinfoTexts());
    const registry = new ServiceEntryRegistry(store);
    const before = buildPushContext({ store, registry, version: 'v1' });
    const pp = sidecar('default', '127.0.0.10', {}, 'productpage-v1');

    store.delete('networking.istio.io/VirtualService', 'default', 'reviews');
    store.delete('networking.istio.io/WorkloadEntry', 'default', 'reviews-v1');
    apply(store, serviceEntry('extra', 'default', 'extra.example.com'));

    expect(names(before.virtualServices(pp, ['mesh']))).toContain('default/reviews');
    expect(before.endpoints(before.service(reviews, 'default')!, 9080)).toHaveLength(3);
    expect(before.service('extra.example.com', 'default')).toBeUndefined();

    const after = buildPushContext({ store, registry, version: 'v2' });
    expect(names(after.virtualServices(pp, ['mesh']))).not.toContain('default/reviews');
    expect(after.endpoints(after.service(reviews, 'default')!, 9080)).toHaveLength(2);
    expect(after.service('extra.example.com', 'default')).toBeDefined();
  });

  it('shows a service only to the namespaces it is exported to, preferring the one private to the namespace', () => {
    const push = pushFrom([
      serviceEntry('public', 'a', 'api.example.com', { address: '10.0.0.1' }),
      serviceEntry('private', 'b', 'api.example.com', { exportTo: ['.'], address: '10.0.0.2' }),
      serviceEntry('to-c', 'a', 'only-c.example.com', { exportTo: ['c'] }),
      serviceEntry('hidden', 'a', 'hidden.example.com', { exportTo: ['~'] }),
    ]);
    expect(push.service('api.example.com', 'b')?.origin.name).toBe('private');
    expect(push.service('api.example.com', 'x')?.origin.name).toBe('public');
    expect(push.service('only-c.example.com', 'c')).toBeDefined();
    expect(push.service('only-c.example.com', 'a')).toBeUndefined();
    expect(push.service('hidden.example.com', 'a')).toBeUndefined();
    expect(push.services).toHaveLength(4);
  });
});
