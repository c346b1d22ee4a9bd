import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { bookinfoPlatform, generate, must, networking, productpage, pushFrom, reviewsV1, sidecar, typed } from './test-support.ts';
import { sidecarOutboundRouteConfig } from './rds.ts';

const RDS = TypeUrl.RouteConfiguration;
const reviewsHost = 'reviews.default.svc.cluster.local';

function routeConfig(texts: string[], proxy = productpage(), mesh = {}) {
  const push = pushFrom([bookinfoPlatform(), ...texts], mesh);
  return must(generate(push, proxy, RDS, ['9080']).get('9080'), 'route config 9080');
}

function vhost(rc: ReturnType<typeof routeConfig>, name: string) {
  return must(
    rc.virtual_hosts.find((v) => v.name === name),
    `virtual host ${name}`,
  );
}

describe('sidecar RDS', () => {
  it('names the route configuration by port and gives each service a virtual host with its short names', () => {
    const rc = routeConfig([]);
    expect(rc.name).toBe('9080');
    const reviews = vhost(rc, `${reviewsHost}:9080`);
    expect(reviews.domains).toEqual([
      reviewsHost,
      `${reviewsHost}:9080`,
      'reviews',
      'reviews:9080',
      'reviews.default',
      'reviews.default:9080',
      'reviews.default.svc',
      'reviews.default.svc:9080',
    ]);
    expect(rc.virtual_hosts.map((v) => v.name)).toEqual([
      'details.default.svc.cluster.local:9080',
      'productpage.default.svc.cluster.local:9080',
      'ratings.default.svc.cluster.local:9080',
      'reviews.default.svc.cluster.local:9080',
      'allow_any',
    ]);
  });

  it('without a VirtualService routes to the service cluster with Istio default retries and no timeout', () => {
    const route = must(vhost(routeConfig([]), `${reviewsHost}:9080`).routes[0]);
    expect(route.name).toBe('default');
    expect(route.match?.prefix).toBe('/');
    const action = must(route.route);
    expect(action.cluster).toBe(`outbound|9080||${reviewsHost}`);
    expect(action.timeout).toEqual({ seconds: '0', nanos: 0 });
    const retry = must(action.retry_policy);
    expect(retry.retry_on).toBe('connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes');
    expect(retry.num_retries?.value).toBe(2);
    expect(retry.retriable_status_codes).toEqual([503]);
    expect(retry.host_selection_retry_max_attempts).toBe('5');
    expect(retry.retry_host_predicate.map((p) => p.name)).toEqual(['envoy.retry_host_predicates.previous_hosts']);
    expect(route.decorator?.operation).toBe(`${reviewsHost}:9080/*`);
  });

  it('splits reviews 90/10 between subsets v1 and v2 (virtual-service-reviews-90-10.yaml)', () => {
    const rc = routeConfig([networking('destination-rule-all.yaml'), networking('virtual-service-reviews-90-10.yaml')]);
    const action = must(vhost(rc, `${reviewsHost}:9080`).routes[0]?.route);
    expect(action.cluster_specifier).toBe('weighted_clusters');
    expect(action.weighted_clusters?.clusters.map((c) => [c.name, c.weight?.value])).toEqual([
      [`outbound|9080|v1|${reviewsHost}`, 90],
      [`outbound|9080|v2|${reviewsHost}`, 10],
    ]);
  });

  it('matches the end-user: jason header before the catch-all (virtual-service-reviews-test-v2.yaml)', () => {
    const rc = routeConfig([networking('destination-rule-all.yaml'), networking('virtual-service-reviews-test-v2.yaml')]);
    const [jason, rest] = vhost(rc, `${reviewsHost}:9080`).routes;
    expect(jason?.match?.headers).toEqual([expect.objectContaining({ name: 'end-user', string_match: expect.objectContaining({ exact: 'jason' }), invert_match: false })]);
    expect(jason?.route?.cluster).toBe(`outbound|9080|v2|${reviewsHost}`);
    expect(rest?.match?.prefix).toBe('/');
    expect(rest?.match?.headers).toEqual([]);
    expect(rest?.route?.cluster).toBe(`outbound|9080|v1|${reviewsHost}`);
    expect(jason?.metadata?.filter_metadata.istio?.fields?.config?.stringValue).toBe('/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews');
  });

  it('injects the ratings delay of 7s for jason through the fault filter (virtual-service-ratings-test-delay.yaml)', () => {
    const rc = routeConfig([networking('destination-rule-all.yaml'), networking('virtual-service-ratings-test-delay.yaml')]);
    const [jason, rest] = vhost(rc, 'ratings.default.svc.cluster.local:9080').routes;
    const fault = typed(jason?.typed_per_filter_config['envoy.filters.http.fault'], TypeUrl.HttpFault);
    expect(fault.delay?.fixed_delay).toEqual({ seconds: '7', nanos: 0 });
    expect(fault.delay?.percentage).toEqual({ numerator: 1000000, denominator: 'MILLION' });
    expect(fault.abort).toBeNull();
    expect(rest?.typed_per_filter_config['envoy.filters.http.fault']).toBeUndefined();
  });

  it('aborts ratings with 500 for jason (virtual-service-ratings-test-abort.yaml)', () => {
    const rc = routeConfig([networking('destination-rule-all.yaml'), networking('virtual-service-ratings-test-abort.yaml')]);
    const fault = typed(vhost(rc, 'ratings.default.svc.cluster.local:9080').routes[0]?.typed_per_filter_config['envoy.filters.http.fault'], TypeUrl.HttpFault);
    expect(fault.abort?.http_status).toBe(500);
    expect(fault.abort?.percentage).toEqual({ numerator: 1000000, denominator: 'MILLION' });
  });

  it('translates every match field, rewrite, retries, timeout, mirror, headers and CORS', () => {
    const vs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: all
    match:
    - name: m1
      uri: {prefix: /api}
      ignoreUriCase: true
      method: {exact: GET}
      authority: {prefix: reviews}
      headers:
        x-exact: {exact: a}
        x-regex: {regex: "b+"}
        x-present: {}
      withoutHeaders:
        x-no: {exact: c}
      queryParams:
        q: {exact: d}
    rewrite: {uri: /v2, authority: reviews.internal}
    timeout: 3s
    retries: {attempts: 4, perTryTimeout: 1s, retryOn: "5xx,gateway-error,503"}
    mirror: {host: reviews, subset: v3}
    mirrorPercentage: {value: 25}
    headers:
      request:
        set: {x-b: "1"}
        add: {x-a: "2"}
        remove: [x-c]
      response:
        set: {x-d: "3"}
        remove: [x-e]
    corsPolicy:
      allowOrigins: [{exact: "https://example.com"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-h]
      maxAge: 24h
      allowCredentials: true
    route:
    - destination: {host: reviews, subset: v2}
      headers:
        request:
          set: {x-dest: v2}
  - match:
    - uri: {exact: /old}
    redirect: {uri: /new, authority: other, redirectCode: 302}
  - match:
    - uri: {regex: "/gone/.*"}
    directResponse: {status: 410, body: {string: gone}}
  - route:
    - destination: {host: reviews, subset: v1}
    retries: {attempts: 0}
`;
    const rc = routeConfig([networking('destination-rule-all.yaml'), vs]);
    const [r, redirect, direct, last] = vhost(rc, `${reviewsHost}:9080`).routes;
    const route = must(r);
    expect(route.name).toBe('all.m1');
    expect(route.match?.prefix).toBe('/api');
    expect(route.match?.case_sensitive?.value).toBe(false);
    const headers = Object.fromEntries(route.match!.headers.map((h) => [h.name, h]));
    expect(headers['x-exact']?.string_match?.exact).toBe('a');
    expect(headers['x-regex']?.string_match?.safe_regex?.regex).toBe('b+');
    expect(headers['x-present']?.present_match).toBe(true);
    expect(headers['x-no']).toMatchObject({ invert_match: true, treat_missing_header_as_empty: true });
    expect(headers[':method']?.string_match?.exact).toBe('GET');
    expect(headers[':authority']?.string_match?.prefix).toBe('reviews');
    expect(route.match?.query_parameters).toEqual([expect.objectContaining({ name: 'q', string_match: expect.objectContaining({ exact: 'd' }) })]);
    const action = must(route.route);
    expect(action.prefix_rewrite).toBe('/v2');
    expect(action.host_rewrite_literal).toBe('reviews.internal');
    expect(action.timeout).toEqual({ seconds: '3', nanos: 0 });
    expect(action.retry_policy?.num_retries?.value).toBe(4);
    expect(action.retry_policy?.per_try_timeout).toEqual({ seconds: '1', nanos: 0 });
    expect(action.retry_policy?.retry_on).toBe('5xx,gateway-error,retriable-status-codes');
    expect(action.retry_policy?.retriable_status_codes).toEqual([503]);
    expect(action.request_mirror_policies).toEqual([
      expect.objectContaining({ cluster: `outbound|9080|v3|${reviewsHost}`, runtime_fraction: expect.objectContaining({ default_value: { numerator: 250000, denominator: 'MILLION' } }) }),
    ]);
    expect(route.request_headers_to_add.map((h) => [h.header?.key, h.header?.value, h.append_action])).toEqual([
      ['x-b', '1', 'OVERWRITE_IF_EXISTS_OR_ADD'],
      ['x-a', '2', 'APPEND_IF_EXISTS_OR_ADD'],
      ['x-dest', 'v2', 'OVERWRITE_IF_EXISTS_OR_ADD'],
    ]);
    expect(route.request_headers_to_remove).toEqual(['x-c']);
    expect(route.response_headers_to_add.map((h) => h.header?.key)).toEqual(['x-d']);
    expect(route.response_headers_to_remove).toEqual(['x-e']);
    const cors = typed(route.typed_per_filter_config['envoy.filters.http.cors'], TypeUrl.CorsPolicy);
    expect(cors.allow_origin_string_match.map((m) => m.exact)).toEqual(['https://example.com']);
    expect(cors.allow_methods).toBe('GET,POST');
    expect(cors.max_age).toBe('86400');
    expect(cors.allow_credentials?.value).toBe(true);
    expect(redirect?.redirect).toMatchObject({ path_redirect: '/new', host_redirect: 'other', response_code: 'FOUND' });
    expect(direct?.match?.safe_regex?.regex).toBe('/gone/.*');
    expect(direct?.direct_response).toMatchObject({ status: 410, body: expect.objectContaining({ inline_string: 'gone' }) });
    expect(last?.route?.retry_policy).toBeNull();
  });

  it('keeps routes whose sourceLabels and sourceNamespace match the proxy, drops the others', () => {
    // As in Istio, a rule that matches only on the source becomes a catch-all route, so later rules are unreachable for that proxy.
    const vs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match:
    - sourceLabels: {app: productpage}
    route: [{destination: {host: reviews, subset: v2}}]
  - match:
    - sourceNamespace: other
    route: [{destination: {host: reviews, subset: v3}}]
  - route: [{destination: {host: reviews, subset: v1}}]
`;
    const fromProductpage = vhost(routeConfig([networking('destination-rule-all.yaml'), vs]), `${reviewsHost}:9080`).routes;
    expect(fromProductpage.map((r) => r.route?.cluster)).toEqual([`outbound|9080|v2|${reviewsHost}`]);
    const fromRatings = vhost(routeConfig([networking('destination-rule-all.yaml'), vs], sidecar('127.0.0.12', 'ratings-v1', { app: 'ratings' })), `${reviewsHost}:9080`).routes;
    expect(fromRatings.map((r) => r.route?.cluster)).toEqual([`outbound|9080|v1|${reviewsHost}`]);
  });

  it('expands delegate VirtualServices under the root rule', () => {
    const root = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /api}}]
    timeout: 5s
    delegate: {name: reviews-api}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-api, namespace: default}
spec:
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
`;
    const routes = vhost(routeConfig([networking('destination-rule-all.yaml'), root]), `${reviewsHost}:9080`).routes;
    expect(routes).toHaveLength(1);
    expect(routes[0]?.match?.prefix).toBe('/api');
    expect(routes[0]?.match?.headers.map((h) => h.name)).toEqual(['end-user']);
    expect(routes[0]?.route?.cluster).toBe(`outbound|9080|v2|${reviewsHost}`);
    expect(routes[0]?.route?.timeout).toEqual({ seconds: '5', nanos: 0 });
  });

  it('puts consistent-hash policies of DestinationRules on the route', () => {
    const dr = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpCookie: {name: user, ttl: 10s}}
`;
    const action = must(vhost(routeConfig([dr]), `${reviewsHost}:9080`).routes[0]?.route);
    expect(action.hash_policy).toEqual([expect.objectContaining({ cookie: expect.objectContaining({ name: 'user', ttl: { seconds: '10', nanos: 0 } }) })]);
  });

  it('ends with allow_any to PassthroughCluster, or block_all (502) under REGISTRY_ONLY', () => {
    const allow = routeConfig([]).virtual_hosts.at(-1)!;
    expect(allow.name).toBe('allow_any');
    expect(allow.domains).toEqual(['*']);
    expect(allow.routes[0]?.route?.cluster).toBe('PassthroughCluster');
    const block = routeConfig([], productpage(), { outboundTrafficPolicy: 'REGISTRY_ONLY' }).virtual_hosts.at(-1)!;
    expect(block.name).toBe('block_all');
    expect(block.routes[0]?.direct_response?.status).toBe(502);
  });

  it('answers every requested port and omits names that are not ports', () => {
    const push = pushFrom([bookinfoPlatform()]);
    const all = generate(push, reviewsV1(), RDS);
    expect([...all.keys()]).toEqual(['9080']);
    expect([...generate(push, reviewsV1(), RDS, ['9080', 'nonsense', '8080']).keys()]).toEqual(['9080', '8080']);
  });
});

describe('routes shared between proxies', () => {
  const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, port: {number: 9080}}}]
  - route: [{destination: {host: ratings, port: {number: 9080}}}]
`;
  const routesOf = (rc: ReturnType<typeof sidecarOutboundRouteConfig>) => must(rc.virtual_hosts?.find((v) => v.name === `${reviewsHost}:9080`)).routes;

  it('are translated once for proxies alike in what routes read, and apart where a DestinationRule or sourceLabels tell them apart', () => {
    const push = pushFrom([bookinfoPlatform(), vs]);
    const shared = routesOf(sidecarOutboundRouteConfig(push, productpage(), 9080));
    expect(shared).toHaveLength(2);
    expect(routesOf(sidecarOutboundRouteConfig(push, reviewsV1(), 9080))).toBe(shared);

    // A DestinationRule for productpage's workloads only: its consistent hash is in productpage's routes alone.
    const hashing = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-hash}
spec:
  host: reviews
  workloadSelector: {matchLabels: {app: productpage}}
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
`;
    const withRule = pushFrom([bookinfoPlatform(), vs, hashing]);
    const forProductpage = routesOf(sidecarOutboundRouteConfig(withRule, productpage(), 9080));
    const forReviews = routesOf(sidecarOutboundRouteConfig(withRule, reviewsV1(), 9080));
    expect(forProductpage).not.toBe(forReviews);
    expect(forProductpage?.[0]?.route?.hash_policy).toEqual([{ header: { header_name: 'x-user' } }]);
    expect(forReviews?.[0]?.route?.hash_policy).toBeUndefined();

    // A match on the caller's labels: each caller gets what applies to it.
    const bySource = pushFrom([bookinfoPlatform(), vs.replace('{headers: {end-user: {exact: jason}}}', '{sourceLabels: {app: productpage}}')]);
    const cluster = (routes: ReturnType<typeof routesOf>) => routes?.[0]?.route?.cluster;
    expect(cluster(routesOf(sidecarOutboundRouteConfig(bySource, productpage(), 9080)))).toBe(`outbound|9080||${reviewsHost}`);
    expect(cluster(routesOf(sidecarOutboundRouteConfig(bySource, reviewsV1(), 9080)))).toBe('outbound|9080||ratings.default.svc.cluster.local');
  });
});
