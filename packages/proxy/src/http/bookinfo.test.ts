// The router over route configurations pilot really generates for Istio's BookInfo YAML
// (examples/bookinfo/networking), put through the Envoy protos as a proxy receives them.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Config, defaultKindRegistry, loadText, MemoryConfigStore } from '@weft/model';
import { buildPushContext, defaultMeshConfig, envoyGenerators, type Proxy as MeshProxy, proxyFromNode, ServiceEntryRegistry } from '@weft/pilot';
import { decodeMessage, encodeMessage, type RouteConfiguration, type RouteConfiguration__Output, TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseWeighted, clusterNameOf } from '../core/route-action.ts';
import { type CompiledRoutes, compileRouteConfiguration } from './compile.ts';
import { faultAbort, faultDelay } from './filters.ts';
import { type Backend, echoed, type RouterServer, StandInCluster, StandInClusterManager, send, startBackend, startRouter } from './test-support.ts';
import { RequestView } from './view.ts';

const examples = new URL('../../../../examples/bookinfo/', import.meta.url);
const file = (path: string) => readFileSync(fileURLToPath(new URL(path, examples)), 'utf8');
const networking = (name: string) => file(`networking/${name}`);

function configs(texts: string[]): Config[] {
  const out: Config[] = [];
  texts.forEach((text, i) => {
    const r = loadText(text, `bookinfo-${i}.yaml`, { registry: defaultKindRegistry() });
    for (const x of r.resources) if (x.config) out.push(x.config);
  });
  return out;
}

/** Pilot's RDS for a proxy, encoded and decoded with the real protos. */
function rds(texts: string[], proxy: MeshProxy, name: string): RouteConfiguration__Output {
  const store = new MemoryConfigStore();
  for (const c of configs([file('platform/local/bookinfo.yaml'), ...texts])) store.upsert(c);
  const push = buildPushContext({ store, registry: new ServiceEntryRegistry(store), mesh: defaultMeshConfig, version: 'test' });
  const gen = envoyGenerators[TypeUrl.RouteConfiguration]!;
  const out = gen(push, proxy, { typeUrl: TypeUrl.RouteConfiguration, names: [name] }).find((r) => r.name === name);
  if (!out) throw new Error(`pilot generated no route configuration ${name}`);
  const msg = 'envoy.config.route.v3.RouteConfiguration';
  return decodeMessage(msg, encodeMessage(msg, out.resource as RouteConfiguration));
}

const productpage = () =>
  proxyFromNode({ id: 'sidecar~127.0.0.10~productpage-v1.default~default.svc.cluster.local', metadata: { LABELS: { app: 'productpage', version: 'v1' }, NAMESPACE: 'default' } });
const reviewsV2 = () =>
  proxyFromNode({ id: 'sidecar~127.0.0.14~reviews-v2.default~default.svc.cluster.local', metadata: { LABELS: { app: 'reviews', version: 'v2' }, NAMESPACE: 'default' } });
const ingress = () => proxyFromNode({ id: 'router~127.0.0.100~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local', metadata: { LABELS: { istio: 'ingressgateway' }, NAMESPACE: 'istio-system' } });

const reviews = (subset = '') => `outbound|9080|${subset}|reviews.default.svc.cluster.local`;
const ratings = (subset = '') => `outbound|9080|${subset}|ratings.default.svc.cluster.local`;

function routeFor(routes: CompiledRoutes, authority: string, path: string, headers: Record<string, string> = {}, random = () => 0) {
  return routes.route(new RequestView('GET', authority, path, 'http', headers), random);
}

/** The cluster a request would go to (weighted clusters resolved with `random`). */
function clusterFor(routes: CompiledRoutes, authority: string, path: string, headers: Record<string, string> = {}, random = () => 0): string {
  const { route } = routeFor(routes, authority, path, headers, random);
  const a = route?.action;
  if (!a) return route?.directResponse ? `direct:${route.directResponse.status}` : 'NR';
  return clusterNameOf(a, chooseWeighted(a, random), undefined) ?? 'NC';
}

describe('BookInfo routes from pilot', () => {
  it('without VirtualServices: every BookInfo name form reaches its service; other hosts pass through', () => {
    const routes = compileRouteConfiguration(rds([], productpage(), '9080'));
    for (const host of ['reviews', 'reviews:9080', 'reviews.default', 'reviews.default.svc:9080', 'reviews.default.svc.cluster.local', 'reviews.default.svc.cluster.local:9080']) {
      expect(clusterFor(routes, host, '/reviews/0'), host).toBe(reviews());
    }
    expect(clusterFor(routes, 'ratings:9080', '/ratings/0')).toBe(ratings());
    expect(clusterFor(routes, 'example.com', '/')).toBe('PassthroughCluster');
    const { route } = routeFor(routes, 'reviews', '/');
    expect(route?.action?.retry?.numRetries).toBe(2);
    expect(route?.action?.retry?.statusCodes.has(503)).toBe(true);
    expect(route?.action?.timeoutMs).toBe(0);
    expect(route?.operation).toBe('reviews.default.svc.cluster.local:9080/*');
  });

  it('virtual-service-all-v1: every service goes to its v1 subset', () => {
    const routes = compileRouteConfiguration(rds([networking('destination-rule-all.yaml'), networking('virtual-service-all-v1.yaml')], productpage(), '9080'));
    expect(clusterFor(routes, 'reviews:9080', '/reviews/0')).toBe(reviews('v1'));
    expect(clusterFor(routes, 'ratings', '/ratings/0')).toBe(ratings('v1'));
    expect(routeFor(routes, 'reviews', '/').route?.config).toBe('/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews');
  });

  it('virtual-service-reviews-test-v2: end-user jason gets v2, anyone else v1', () => {
    const routes = compileRouteConfiguration(rds([networking('destination-rule-all.yaml'), networking('virtual-service-reviews-test-v2.yaml')], productpage(), '9080'));
    expect(clusterFor(routes, 'reviews:9080', '/reviews/0', { 'end-user': 'jason' })).toBe(reviews('v2'));
    expect(clusterFor(routes, 'reviews:9080', '/reviews/0', { 'end-user': 'ann' })).toBe(reviews('v1'));
    expect(clusterFor(routes, 'reviews:9080', '/reviews/0')).toBe(reviews('v1'));
  });

  it('virtual-service-reviews-80-20 and 90-10 split by weight', () => {
    const r8020 = compileRouteConfiguration(rds([networking('destination-rule-all.yaml'), networking('virtual-service-reviews-80-20.yaml')], productpage(), '9080'));
    expect(clusterFor(r8020, 'reviews', '/', {}, () => 0.79)).toBe(reviews('v1'));
    expect(clusterFor(r8020, 'reviews', '/', {}, () => 0.81)).toBe(reviews('v2'));
    const r9010 = compileRouteConfiguration(rds([networking('destination-rule-all.yaml'), networking('virtual-service-reviews-90-10.yaml')], productpage(), '9080'));
    expect(clusterFor(r9010, 'reviews', '/', {}, () => 0.89)).toBe(reviews('v1'));
    expect(clusterFor(r9010, 'reviews', '/', {}, () => 0.95)).toBe(reviews('v2'));
  });

  it('virtual-service-ratings-test-delay: jason waits 7 s before ratings v1; others do not', () => {
    const routes = compileRouteConfiguration(rds([networking('destination-rule-all.yaml'), networking('virtual-service-ratings-test-delay.yaml')], reviewsV2(), '9080'));
    const jason = routeFor(routes, 'ratings:9080', '/ratings/0', { 'end-user': 'jason' }).route!;
    expect(jason.fault).toBeDefined();
    const view = new RequestView('GET', 'ratings:9080', '/ratings/0', 'http', { 'end-user': 'jason' });
    expect(faultDelay(jason.fault!, view, ratings('v1'), Math.random)).toBe(7000);
    const other = routeFor(routes, 'ratings:9080', '/ratings/0', { 'end-user': 'ann' }).route!;
    expect(other.fault).toBeUndefined();
    expect(other.action?.cluster).toBe(ratings('v1'));
  });

  it('virtual-service-ratings-test-abort: jason gets HTTP 500 from the proxy', () => {
    const routes = compileRouteConfiguration(rds([networking('destination-rule-all.yaml'), networking('virtual-service-ratings-test-abort.yaml')], reviewsV2(), '9080'));
    const jason = routeFor(routes, 'ratings', '/ratings/0', { 'end-user': 'jason' }).route!;
    const view = new RequestView('GET', 'ratings', '/ratings/0', 'http', { 'end-user': 'jason' });
    expect(faultAbort(jason.fault!, view, ratings('v1'), Math.random)).toEqual({ status: 500, grpcStatus: undefined });
  });

  it('bookinfo-gateway: the ingress exposes only productpage paths, for any host', () => {
    const routes = compileRouteConfiguration(rds([networking('bookinfo-gateway.yaml')], ingress(), 'http.80'));
    const pp = 'outbound|9080||productpage.default.svc.cluster.local';
    for (const path of ['/productpage', '/productpage?u=normal', '/static/bootstrap.css', '/login', '/logout', '/api/v1/products/0/reviews']) {
      expect(clusterFor(routes, 'bookinfo.example.com', path), path).toBe(pp);
    }
    expect(clusterFor(routes, '203.0.113.9:80', '/productpage')).toBe(pp);
    expect(clusterFor(routes, 'bookinfo.example.com', '/admin')).toBe('NR');
    expect(clusterFor(routes, 'bookinfo.example.com', '/productpage/x')).toBe('NR');
  });
});

describe('BookInfo requests through the router (pilot routes, real backends)', () => {
  let backends: Record<string, Backend>;
  let clusters: StandInClusterManager;
  let router: RouterServer;

  beforeAll(async () => {
    backends = {};
    for (const v of ['v1', 'v2', 'v3']) backends[v] = await startBackend(`reviews-${v}`);
    backends.ratings = await startBackend('ratings-v1');
    clusters = new StandInClusterManager();
    for (const v of ['v1', 'v2', 'v3']) clusters.add(new StandInCluster(reviews(v), [backends[v]!.address]));
    clusters.add(new StandInCluster(ratings('v1'), [backends.ratings.address]));
    const rc = rds(
      [networking('destination-rule-all.yaml'), networking('virtual-service-reviews-jason-v2-v3.yaml'), networking('virtual-service-ratings-test-abort.yaml')],
      productpage(),
      '9080',
    );
    router = await startRouter({ name: 'placeholder' }, clusters);
    router.routes = compileRouteConfiguration(rc);
  });

  afterAll(async () => {
    await router.close();
    await clusters.close();
    for (const b of Object.values(backends)) await b.close();
  });

  it('jason reads reviews from v2 (black stars), everyone else from v3', async () => {
    const jason = await send(router.url, { path: '/reviews/0', headers: { host: 'reviews:9080', 'end-user': 'jason' } });
    expect(jason.status).toBe(200);
    expect(echoed(jason.body).backend).toBe('reviews-v2');
    expect(jason.headers.server).toBe('istio-envoy');
    const ann = await send(router.url, { path: '/reviews/0', headers: { host: 'reviews:9080', 'end-user': 'ann' } });
    expect(echoed(ann.body).backend).toBe('reviews-v3');
    // The sidecar forwards the request with the mesh headers a service sees behind Envoy.
    const seen = echoed(ann.body).headers;
    expect(seen['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-envoy-attempt-count']).toBe('1');
  });

  it('ratings for jason are aborted by the proxy with HTTP 500 (flag FI) and never reach ratings', async () => {
    const before = backends.ratings!.seen.length;
    const rec = router.nextRecord();
    const r = await send(router.url, { path: '/ratings/0', headers: { host: 'ratings:9080', 'end-user': 'jason' } });
    expect(r.status).toBe(500);
    expect(r.body).toBe('fault filter abort');
    expect([...(await rec).responseFlags]).toEqual(['FI']);
    expect(backends.ratings!.seen.length).toBe(before);
    const ok = await send(router.url, { path: '/ratings/0', headers: { host: 'ratings:9080' } });
    expect(echoed(ok.body).backend).toBe('ratings-v1');
  });
});
