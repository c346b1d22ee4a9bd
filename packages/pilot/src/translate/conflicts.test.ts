// Istio's conflict semantics, seen in what proxies receive: when configs compete, the oldest
// (metadata.creationTimestamp) wins, then the first by name, then by namespace.
import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { bookinfoPlatform, generate, must, networking, productpage, pushFrom, router } from './test-support.ts';

const reviewsHost = 'reviews.default.svc.cluster.local';
const jan = '2024-01-01T00:00:00Z';
const feb = '2024-02-01T00:00:00Z';

function meta(name: string, namespace: string, created: string | undefined): string {
  return `{name: ${name}, namespace: ${namespace}${created ? `, creationTimestamp: "${created}"` : ''}}`;
}

/** A mesh VirtualService for reviews (as `reviews` in namespace default) sending everything to one subset. */
function reviewsTo(name: string, subset: string, created?: string, namespace = 'default'): string {
  return `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: ${meta(name, namespace, created)}
spec:
  hosts: [${reviewsHost}]
  http:
  - route: [{destination: {host: ${reviewsHost}, subset: ${subset}}}]
`;
}

/** The cluster the sidecar of productpage sends `reviews` to. */
function reviewsCluster(texts: string[]): string | undefined {
  const push = pushFrom([bookinfoPlatform(), networking('destination-rule-all.yaml'), ...texts]);
  const rc = must(generate(push, productpage(), TypeUrl.RouteConfiguration, ['9080']).get('9080'));
  const vh = must(rc.virtual_hosts.find((v) => v.name === `${reviewsHost}:9080`));
  // Envoy takes the first virtual host that has a domain: no other may claim reviews' names.
  const claimed = rc.virtual_hosts.filter((v) => v.domains.includes('reviews'));
  expect(claimed).toHaveLength(1);
  return vh.routes[0]?.route?.cluster;
}

const subsetCluster = (subset: string) => `outbound|9080|${subset}|${reviewsHost}`;

describe('conflicting VirtualServices for one host, sidecars (mesh)', () => {
  it('keeps the older VirtualService, whatever the names', () => {
    expect(reviewsCluster([reviewsTo('reviews', 'v1', jan), reviewsTo('ghost', 'v2', feb)])).toBe(subsetCluster('v1'));
    expect(reviewsCluster([reviewsTo('reviews', 'v1', feb), reviewsTo('ghost', 'v2', jan)])).toBe(subsetCluster('v2'));
  });

  it('compares to the millisecond: applied one after the other within a second, the first stays older', () => {
    expect(reviewsCluster([reviewsTo('reviews', 'v1', '2024-01-01T00:00:00.100Z'), reviewsTo('ghost', 'v2', '2024-01-01T00:00:00.900Z')])).toBe(subsetCluster('v1'));
  });

  it('breaks a tie of creation times by name, then by namespace', () => {
    expect(reviewsCluster([reviewsTo('reviews', 'v1', jan), reviewsTo('ghost', 'v2', jan)])).toBe(subsetCluster('v2'));
    // Without timestamps every config counts as equally old.
    expect(reviewsCluster([reviewsTo('reviews', 'v1'), reviewsTo('ghost', 'v2')])).toBe(subsetCluster('v2'));
    expect(reviewsCluster([reviewsTo('same', 'v1', jan, 'team-b'), reviewsTo('same', 'v3', jan, 'team-a')])).toBe(subsetCluster('v3'));
  });
});

describe('conflicting VirtualServices for one host, gateways', () => {
  const ingress = () => router('127.0.0.100', 'istio-ingressgateway-1', { istio: 'ingressgateway' });
  const gateway = networking('bookinfo-gateway.yaml').split('---')[0]!;
  const catchAll = (name: string, service: string, created: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: ${meta(name, 'default', created)}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - route: [{destination: {host: ${service}, port: {number: 9080}}}]
`;

  it('merges the routes of both into the host, the older first, so its catch-all answers', () => {
    const routesOf = (texts: string[]) => {
      const push = pushFrom([bookinfoPlatform(), gateway, ...texts]);
      const rc = must(generate(push, ingress(), TypeUrl.RouteConfiguration).get('http.80'));
      expect(rc.virtual_hosts.map((v) => v.name)).toEqual(['*:80']);
      return must(rc.virtual_hosts[0]).routes.map((r) => r.route?.cluster);
    };
    const productpageCluster = 'outbound|9080||productpage.default.svc.cluster.local';
    const detailsCluster = 'outbound|9080||details.default.svc.cluster.local';
    expect(routesOf([catchAll('site', 'productpage', jan), catchAll('ghost', 'details', feb)])).toEqual([productpageCluster, detailsCluster]);
    expect(routesOf([catchAll('site', 'productpage', feb), catchAll('ghost', 'details', jan)])).toEqual([detailsCluster, productpageCluster]);
  });
});

describe('conflicting DestinationRules for one host', () => {
  const rule = (name: string, created: string, v1Version: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: ${meta(name, 'default', created)}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: ${v1Version}}}, {name: only-${name}, labels: {version: v3}}]
`;

  it("merges them: the older rule's subset wins a name both define, the newer adds the others", () => {
    const v1Endpoints = (texts: string[]) => {
      const push = pushFrom([bookinfoPlatform(), ...texts]);
      const cla = must(generate(push, productpage(), TypeUrl.ClusterLoadAssignment, [subsetCluster('v1')]).get(subsetCluster('v1')));
      return cla.endpoints.flatMap((l) => l.lb_endpoints.map((e) => e.endpoint?.address?.socket_address?.address));
    };
    // reviews-v1 is 127.0.0.13, reviews-v2 127.0.0.14 (examples/bookinfo/platform/local/bookinfo.yaml).
    expect(v1Endpoints([rule('reviews', jan, 'v1'), rule('a-ghost', feb, 'v2')])).toEqual(['127.0.0.13']);
    expect(v1Endpoints([rule('reviews', feb, 'v1'), rule('a-ghost', jan, 'v2')])).toEqual(['127.0.0.14']);
    const push = pushFrom([bookinfoPlatform(), rule('reviews', jan, 'v1'), rule('a-ghost', feb, 'v2')]);
    const clusters = [...generate(push, productpage(), TypeUrl.Cluster).keys()].filter((n) => n.endsWith(reviewsHost));
    expect(clusters).toEqual(expect.arrayContaining([subsetCluster('only-reviews'), subsetCluster('only-a-ghost')]));
  });
});

describe('conflicting Sidecars of one namespace', () => {
  const onlyTo = (name: string, created: string, host: string) => `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: ${meta(name, 'default', created)}
spec:
  egress: [{hosts: ["./${host}"]}]
`;

  it('applies the older of two Sidecars without a workloadSelector', () => {
    const outbound = (texts: string[]) => {
      const push = pushFrom([bookinfoPlatform(), ...texts]);
      return [...generate(push, productpage(), TypeUrl.Cluster).keys()].filter((n) => n.startsWith('outbound|'));
    };
    expect(outbound([onlyTo('zz-old', jan, 'reviews.default.svc.cluster.local'), onlyTo('aa-new', feb, 'ratings.default.svc.cluster.local')])).toEqual([`outbound|9080||${reviewsHost}`]);
  });
});

describe('conflicting Gateway servers on one port', () => {
  const ingress = () => router('127.0.0.100', 'istio-ingressgateway-1', { istio: 'ingressgateway' });
  const gw = (name: string, created: string, server: string) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: ${meta(name, 'default', created)}
spec:
  selector: {istio: ingressgateway}
  servers:
  - ${server}
`;
  const http80 = (name: string, created: string) => gw(name, created, 'port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["*"]');
  const tcp80 = (name: string, created: string) => gw(name, created, 'port: {number: 80, name: tcp, protocol: TCP}\n    hosts: ["*"]');
  const https443 = (name: string, created: string, hosts: string[], credential: string) =>
    gw(name, created, `port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ${JSON.stringify(hosts)}\n    tls: {mode: SIMPLE, credentialName: ${credential}}`);
  const routes = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: routes, namespace: default}
spec:
  hosts: ["*"]
  gateways: [web, raw, a, b]
  http:
  - route: [{destination: {host: productpage, port: {number: 9080}}}]
  tcp:
  - route: [{destination: {host: ratings, port: {number: 9080}}}]
`;
  const filtersOn = (texts: string[], listener: string) => {
    const push = pushFrom([bookinfoPlatform(), routes, ...texts]);
    const l = must(generate(push, ingress(), TypeUrl.Listener).get(listener));
    return l.filter_chains.map((c) => ({ names: c.filter_chain_match?.server_names ?? [], filter: c.filters.at(-1)?.name }));
  };
  const hcm = 'envoy.filters.network.http_connection_manager';
  const tcpProxy = 'envoy.filters.network.tcp_proxy';

  it('keeps the older server when a plain-text port is claimed by HTTP and by TCP', () => {
    expect(filtersOn([http80('web', jan), tcp80('raw', feb)], '0.0.0.0_80')).toEqual([{ names: [], filter: hcm }]);
    expect(filtersOn([http80('web', feb), tcp80('raw', jan)], '0.0.0.0_80')).toEqual([{ names: [], filter: tcpProxy }]);
  });

  it('skips a newer TLS server that repeats a host of an older one, with all its hosts', () => {
    const chains = filtersOn([https443('a', jan, ['shop.example.com'], 'old-cred'), https443('b', feb, ['shop.example.com', 'api.example.com'], 'new-cred')], '0.0.0.0_443');
    expect(chains).toEqual([{ names: ['shop.example.com'], filter: hcm }]);
    const swapped = filtersOn([https443('a', feb, ['shop.example.com'], 'old-cred'), https443('b', jan, ['shop.example.com', 'api.example.com'], 'new-cred')], '0.0.0.0_443');
    expect(swapped).toEqual([{ names: ['shop.example.com', 'api.example.com'], filter: hcm }]);
  });
});
