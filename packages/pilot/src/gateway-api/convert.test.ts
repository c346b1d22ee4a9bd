import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { defaultMeshConfig, type PushContext } from '../core/types.ts';
import { buildPushContext } from '../push/context.ts';
import { ServiceEntryRegistry } from '../registry/service-entry.ts';
import { bookinfo, storeFrom } from '../registry/test-support.ts';
import { bookinfoPlatform, generate, must, reviewsV1, router, sidecar } from '../translate/test-support.ts';
import type { GatewayDeployment } from './convert.ts';
import type { GatewayStatus, RouteStatus } from './status.ts';

const shared: GatewayDeployment = { mode: 'shared', selector: { istio: 'ingressgateway' } };
const ingress = () => router('127.0.0.100', 'istio-ingressgateway-1', { istio: 'ingressgateway' });
const versions = () => bookinfo('platform/local/bookinfo-versions.yaml');
const gatewayApi = (file: string) => bookinfo(`gateway-api/${file}`);

function push(texts: string[], deployment: GatewayDeployment = shared): PushContext {
  const store = storeFrom(...texts);
  const registry = new ServiceEntryRegistry(store);
  return buildPushContext({ store, registry, mesh: defaultMeshConfig, version: 'test', gatewayApi: { deployment } });
}

function statusOf(p: PushContext, key: string) {
  return (p as unknown as { gatewayApi: { statuses: Map<string, { status: unknown }> } }).gatewayApi.statuses.get(key)?.status;
}

function conditions(list: { type: string; status: string; reason: string }[] | undefined) {
  return Object.fromEntries((list ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]));
}

function routesOf(p: PushContext, name = 'http.80') {
  const rc = must(generate(p, ingress(), TypeUrl.RouteConfiguration).get(name), name);
  return rc.virtual_hosts.flatMap((vh) => vh.routes.map((r) => ({ vh: vh.name, domains: vh.domains, r })));
}

const route = (body: string, name = 'r', ns = 'default') => `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${ns}}
spec:
${body}`;

const gateway = (listeners: string, name = 'gw', ns = 'default') => `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: ${ns}}
spec:
  gatewayClassName: istio
  listeners:
${listeners}`;

describe('Gateway API conversion', () => {
  it('serves BookInfo\'s Gateway API variant on the ingress: port 80, the product page URLs, segment prefixes', () => {
    const p = push([bookinfoPlatform(), gatewayApi('bookinfo-gateway.yaml')]);
    const lds = generate(p, ingress(), TypeUrl.Listener);
    expect([...lds.keys()]).toEqual(['0.0.0.0_80']);
    const routes = routesOf(p);
    expect(routes.map(({ r }) => r.match?.path ?? r.match?.path_separated_prefix)).toEqual(['/productpage', '/logout', '/login', '/api/v1/products', '/static']);
    for (const { r, domains } of routes) {
      expect(domains).toEqual(['*']);
      expect(r.route?.cluster).toBe('outbound|9080||productpage.default.svc.cluster.local');
      expect(r.route?.cluster_not_found_response_code).toBe('INTERNAL_SERVER_ERROR');
    }
    const gw = statusOf(p, 'Gateway default/bookinfo-gateway') as GatewayStatus;
    expect(conditions(gw.conditions)).toEqual({ Accepted: 'True/Accepted', Programmed: 'True/Programmed' });
    expect(gw.listeners[0]).toMatchObject({ name: 'http', attachedRoutes: 1 });
    const rs = statusOf(p, 'HTTPRoute default/bookinfo') as RouteStatus;
    expect(rs.parents[0]?.controllerName).toBe('istio.io/gateway-controller');
    expect(conditions(rs.parents[0]?.conditions)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' });
  });

  it('a managed Gateway is served only by its own deployment (gateway-name label, same namespace)', () => {
    const p = push([bookinfoPlatform(), gatewayApi('bookinfo-gateway.yaml')], { mode: 'managed' });
    expect(generate(p, ingress(), TypeUrl.Listener).size).toBe(0);
    const own = router('10.0.0.5', 'bookinfo-gateway-istio-1', { 'gateway.networking.k8s.io/gateway-name': 'bookinfo-gateway' }, 'default');
    expect([...generate(p, own, TypeUrl.Listener).keys()]).toEqual(['0.0.0.0_80']);
    const elsewhere = router('10.0.0.6', 'x', { 'gateway.networking.k8s.io/gateway-name': 'bookinfo-gateway' }, 'other');
    expect(generate(p, elsewhere, TypeUrl.Listener).size).toBe(0);
  });

  it('orders matches of every route of a host by Gateway API precedence', () => {
    const p = push([
      bookinfoPlatform(),
      gateway('  - {name: http, port: 80, protocol: HTTP, hostname: "*.example.com"}'),
      route(`  parentRefs: [{name: gw}]
  hostnames: [a.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: details, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /v2}, headers: [{name: Version, value: two}]}]
    backendRefs: [{name: ratings, port: 9080}]`),
      route(
        `  parentRefs: [{name: gw}]
  hostnames: [a.example.com, other.org]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v2/}}, {path: {type: Exact, value: /v2/x}}, {path: {type: PathPrefix, value: /v2}, method: POST}]
    backendRefs: [{name: reviews, port: 9080}]`,
        'r2',
      ),
    ]);
    const routes = routesOf(p);
    expect(routes.map(({ vh }) => vh)).toEqual(Array(5).fill('a.example.com:80'));
    expect(routes.map(({ r }) => [r.match?.path ?? r.match?.path_separated_prefix ?? r.match?.prefix, (r.match?.headers ?? []).map((h) => h.name).join(','), r.route?.cluster?.split('|')[3]])).toEqual([
      ['/v2/x', '', 'reviews.default.svc.cluster.local'],
      ['/v2', ':method', 'reviews.default.svc.cluster.local'],
      ['/v2', 'version', 'ratings.default.svc.cluster.local'],
      ['/v2', '', 'reviews.default.svc.cluster.local'],
      ['/', '', 'details.default.svc.cluster.local'],
    ]);
  });

  it('filters: header modifiers, redirect, rewrites (prefix as regex), mirror; timeouts', () => {
    const p = push([
      bookinfoPlatform(),
      gateway('  - {name: http, port: 80, protocol: HTTP}'),
      route(`  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /strip}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-set, value: a}], add: [{name: x-add, value: b}], remove: [x-gone]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: x-resp, value: c}]}
    - type: URLRewrite
      urlRewrite: {hostname: elsewhere.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}
    - type: RequestMirror
      requestMirror: {backendRef: {name: ratings, port: 9080}, percent: 25}
    backendRefs: [{name: details, port: 9080}]
    timeouts: {request: 1500ms}
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: new.example.com, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
  - matches: [{path: {type: Exact, value: /full}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /replaced}}
    backendRefs: [{name: details, port: 9080}]`),
    ]);
    const byPath = new Map(routesOf(p).map(({ r }) => [r.match?.path ?? r.match?.path_separated_prefix, r]));
    const strip = must(byPath.get('/strip'));
    expect(strip.request_headers_to_add.map((h) => [h.header?.key, h.header?.value, h.append_action])).toEqual([
      ['x-set', 'a', 'OVERWRITE_IF_EXISTS_OR_ADD'],
      ['x-add', 'b', 'APPEND_IF_EXISTS_OR_ADD'],
    ]);
    expect(strip.request_headers_to_remove).toEqual(['x-gone']);
    expect(strip.response_headers_to_add.map((h) => h.header?.key)).toEqual(['x-resp']);
    expect(strip.route?.regex_rewrite).toMatchObject({ pattern: { regex: '^/strip/*(.*)' }, substitution: '/\\1' });
    expect(strip.route?.host_rewrite_literal).toBe('elsewhere.example.com');
    expect(strip.route?.request_mirror_policies?.[0]).toMatchObject({ cluster: 'outbound|9080||ratings.default.svc.cluster.local', runtime_fraction: { default_value: { numerator: 250000, denominator: 'MILLION' } } });
    expect(strip.route?.timeout).toMatchObject({ seconds: '1', nanos: 500_000_000 });
    const old = must(byPath.get('/old'));
    expect(old.redirect).toMatchObject({ scheme_redirect: 'https', host_redirect: 'new.example.com', response_code: 'MOVED_PERMANENTLY', regex_rewrite: { pattern: { regex: '^/old(/?)(.*)' }, substitution: '/new\\1\\2' } });
    expect(must(byPath.get('/full')).route?.regex_rewrite).toMatchObject({ pattern: { regex: '^/.*$' }, substitution: '/replaced' });
  });

  it('weights; weight 0 everywhere, no backends and unknown backends answer 500 and say why', () => {
    const p = push([
      bookinfoPlatform(),
      versions(),
      gateway('  - {name: http, port: 80, protocol: HTTP}'),
      route(`  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: Exact, value: /split}}]
    backendRefs: [{name: reviews-v1, port: 9080, weight: 3}, {name: reviews-v2, port: 9080, weight: 1}, {name: reviews-v3, port: 9080, weight: 0}]
  - matches: [{path: {type: Exact, value: /zero}}]
    backendRefs: [{name: reviews-v1, port: 9080, weight: 0}]
  - matches: [{path: {type: Exact, value: /none}}]
  - matches: [{path: {type: Exact, value: /missing}}]
    backendRefs: [{name: nowhere, port: 9080}]`),
    ]);
    const byPath = new Map(routesOf(p).map(({ r }) => [r.match?.path, r]));
    expect(must(byPath.get('/split')).route?.weighted_clusters?.clusters.map((c) => [c.name, c.weight?.value])).toEqual([
      ['outbound|9080||reviews-v1.default.svc.cluster.local', 3],
      ['outbound|9080||reviews-v2.default.svc.cluster.local', 1],
    ]);
    expect(must(byPath.get('/zero')).direct_response?.status).toBe(500);
    expect(must(byPath.get('/none')).direct_response?.status).toBe(500);
    const missing = must(byPath.get('/missing')).route;
    expect(missing?.cluster).toBe('outbound|9080||invalid-backend.weft.internal');
    expect(missing?.cluster_not_found_response_code).toBe('INTERNAL_SERVER_ERROR');
    const rs = statusOf(p, 'HTTPRoute default/r') as RouteStatus;
    expect(conditions(rs.parents[0]?.conditions)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'False/BackendNotFound' });
  });

  it('refuses routes the listener does not allow and hostnames it does not serve, with the spec\'s reasons', () => {
    const p = push([
      bookinfoPlatform(),
      gateway(`  - {name: http, port: 80, protocol: HTTP, hostname: "*.example.com"}
  - {name: other, port: 8081, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}`),
      route(`  parentRefs: [{name: gw, namespace: default, sectionName: http}]
  rules: [{backendRefs: [{name: details, namespace: default, port: 9080}]}]`, 'foreign', 'team'),
      route(`  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [example.org]
  rules: [{backendRefs: [{name: details, port: 9080}]}]`, 'wronghost'),
      route(`  parentRefs: [{name: gw, sectionName: nope}]
  rules: [{backendRefs: [{name: details, port: 9080}]}]`, 'nosection'),
      route(`  parentRefs: [{name: gw, namespace: default, sectionName: other}]
  rules: [{backendRefs: [{name: details, namespace: default, port: 9080}]}]`, 'crossns', 'team'),
    ]);
    const cond = (key: string) => conditions((statusOf(p, key) as RouteStatus).parents[0]?.conditions);
    expect(cond('HTTPRoute team/foreign').Accepted).toBe('False/NotAllowedByListeners');
    expect(cond('HTTPRoute default/wronghost').Accepted).toBe('False/NoMatchingListenerHostname');
    expect(cond('HTTPRoute default/nosection').Accepted).toBe('False/NoMatchingParent');
    // Attached from another namespace, but its backend there needs a ReferenceGrant.
    expect(cond('HTTPRoute team/crossns')).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'False/RefNotPermitted' });
    const gw = statusOf(p, 'Gateway default/gw') as GatewayStatus;
    expect(gw.listeners.map((l) => [l.name, l.attachedRoutes])).toEqual([
      ['http', 0],
      ['other', 1],
    ]);
    expect(must(routesOf(p, 'http.8081')[0]).r.route?.cluster).toBe('outbound|9080||invalid-backend.weft.internal');
  });

  it('GAMMA: an HTTPRoute with a Service parent routes the mesh\'s calls to that service', () => {
    const p = push([bookinfoPlatform(), versions(), gatewayApi('route-reviews-90-10.yaml')]);
    const productpage = sidecar('127.0.0.10', 'productpage-v1', { app: 'productpage', version: 'v1' });
    const rc = must(generate(p, productpage, TypeUrl.RouteConfiguration).get('9080'));
    const vh = must(rc.virtual_hosts.find((v) => v.name === 'reviews.default.svc.cluster.local:9080'));
    expect(vh.routes[0]?.route?.weighted_clusters?.clusters.map((c) => [c.name, c.weight?.value])).toEqual([
      ['outbound|9080||reviews-v1.default.svc.cluster.local', 90],
      ['outbound|9080||reviews-v2.default.svc.cluster.local', 10],
    ]);
    const rs = statusOf(p, 'HTTPRoute default/reviews') as RouteStatus;
    expect(rs.parents[0]?.parentRef).toMatchObject({ group: '', kind: 'Service', name: 'reviews', port: 9080 });
    expect(conditions(rs.parents[0]?.conditions)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' });
    // A consumer route (another namespace) applies to its own namespace's clients only.
    const consumer = push([bookinfoPlatform(), versions(), gatewayApi('route-reviews-v3.yaml').replace('name: reviews\nspec', 'name: reviews\n  namespace: team\nspec').replace('    name: reviews\n', '    name: reviews\n    namespace: default\n').replace('    - name: reviews-v3\n', '    - name: reviews-v3\n      namespace: default\n')]);
    const fromDefault = must(must(generate(consumer, reviewsV1(), TypeUrl.RouteConfiguration).get('9080')).virtual_hosts.find((v) => v.name.startsWith('reviews.default')));
    expect(fromDefault.routes[0]?.route?.cluster).toBe('outbound|9080||reviews.default.svc.cluster.local');
    const teamClient = sidecar('127.0.0.60', 'client', { app: 'client' }, 'team');
    const fromTeam = must(must(generate(consumer, teamClient, TypeUrl.RouteConfiguration).get('9080')).virtual_hosts.find((v) => v.name.startsWith('reviews.default')));
    // The route is in team, the backend in default: without a ReferenceGrant it answers 500.
    expect(fromTeam.routes[0]?.route?.cluster).toBe('outbound|9080||invalid-backend.weft.internal');
  });

  it('a ReferenceGrant in the backend\'s namespace lets a route of another namespace reach it; without it, RefNotPermitted', () => {
    const texts = [
      bookinfoPlatform(),
      gateway('  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}'),
      route(`  parentRefs: [{name: gw, namespace: default}]
  rules: [{backendRefs: [{name: details, namespace: default, port: 9080}]}]`, 'crossns', 'team'),
    ];
    const grant = `
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: team-to-details, namespace: default}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: team}]
  to: [{group: "", kind: Service, name: details}]`;
    const without = push(texts);
    expect(must(routesOf(without)[0]).r.route?.cluster).toBe('outbound|9080||invalid-backend.weft.internal');
    const withGrant = push([...texts, grant]);
    expect(must(routesOf(withGrant)[0]).r.route?.cluster).toBe('outbound|9080||details.default.svc.cluster.local');
    expect(conditions((statusOf(withGrant, 'HTTPRoute team/crossns') as RouteStatus).parents[0]?.conditions).ResolvedRefs).toBe('True/ResolvedRefs');
    // A grant for GRPCRoutes does not let an HTTPRoute through.
    const grpcOnly = push([...texts, grant.replace('kind: HTTPRoute', 'kind: GRPCRoute')]);
    expect(conditions((statusOf(grpcOnly, 'HTTPRoute team/crossns') as RouteStatus).parents[0]?.conditions).ResolvedRefs).toBe('False/RefNotPermitted');
  });

  it('GRPCRoute: service/method matches become path matches on /<service>/<method>', () => {
    const p = push([
      bookinfoPlatform(),
      gateway('  - {name: http, port: 80, protocol: HTTP}'),
      `
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{method: {service: echo.Echo, method: Say}}, {method: {service: echo.Other}}, {headers: [{name: x-v, value: "2"}]}]
    backendRefs: [{name: details, port: 9080}]`,
    ]);
    const routes = routesOf(p).map(({ r }) => r.match?.path ?? r.match?.path_separated_prefix ?? r.match?.prefix);
    expect(routes).toEqual(['/echo.Echo/Say', '/echo.Other', '/']);
    expect(conditions((statusOf(p, 'GRPCRoute default/grpc') as RouteStatus).parents[0]?.conditions)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' });
  });

  it('listeners of one port that disagree on the protocol or repeat a hostname are Conflicted and not served', () => {
    const p = push([
      bookinfoPlatform(),
      gateway(`  - {name: a, port: 80, protocol: HTTP, hostname: a.example.com}
  - {name: b, port: 80, protocol: HTTP, hostname: a.example.com}
  - {name: c, port: 80, protocol: HTTPS, hostname: c.example.com, tls: {certificateRefs: [{name: cert}]}}
  - {name: d, port: 80, protocol: HTTP, hostname: d.example.com}`),
    ]);
    const gw = statusOf(p, 'Gateway default/gw') as GatewayStatus;
    expect(gw.listeners.map((l) => [l.name, conditions(l.conditions).Conflicted, conditions(l.conditions).Programmed])).toEqual([
      ['a', 'False/NoConflicts', 'True/Programmed'],
      ['b', 'True/HostnameConflict', 'False/Invalid'],
      ['c', 'True/ProtocolConflict', 'False/Invalid'],
      ['d', 'False/NoConflicts', 'True/Programmed'],
    ]);
  });

  it('a listener whose certificate is not permitted still counts its routes (attachedRoutes) but is not served', () => {
    const p = push([
      bookinfoPlatform(),
      gateway('  - {name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: cert, namespace: elsewhere}]}}'),
      route(`  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: details, port: 9080}]}]`),
    ]);
    const l = (statusOf(p, 'Gateway default/gw') as GatewayStatus).listeners[0]!;
    expect(l.attachedRoutes).toBe(1);
    expect(conditions(l.conditions)).toMatchObject({ ResolvedRefs: 'False/RefNotPermitted', Programmed: 'False/Invalid' });
    expect(generate(p, ingress(), TypeUrl.Listener).size).toBe(0);
  });

  it('a Gateway with unsupported listeners says ListenersNotValid: still Accepted while one listener is valid, not Programmed when none is', () => {
    const some = push([gateway(`  - {name: ok, port: 80, protocol: HTTP}
  - {name: bad, port: 1111, protocol: INVALID}`)]);
    const s1 = statusOf(some, 'Gateway default/gw') as GatewayStatus;
    expect(conditions(s1.conditions)).toEqual({ Accepted: 'True/ListenersNotValid', Programmed: 'True/Programmed' });
    expect(conditions(s1.listeners[1]?.conditions).Accepted).toBe('False/UnsupportedProtocol');
    expect(s1.listeners.map((l) => l.supportedKinds.map((k) => k.kind))).toEqual([['HTTPRoute', 'GRPCRoute'], []]);
    const none = push([gateway('  - {name: bad, port: 1111, protocol: INVALID}')]);
    expect(conditions((statusOf(none, 'Gateway default/gw') as GatewayStatus).conditions)).toEqual({ Accepted: 'False/ListenersNotValid', Programmed: 'False/Invalid' });
  });
});
