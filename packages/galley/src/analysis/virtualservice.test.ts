import { describe, expect, it } from 'vitest';
import { lineOf, reviewsPlatform, run, withCode } from './test-support.ts';
import { conflictingMeshGatewayHostsAnalyzer, destinationHostAnalyzer, destinationRuleSubsetAnalyzer, gatewayReferenceAnalyzer, unreachableRulesAnalyzer } from './virtualservice.ts';

const reviewsRule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
`;

describe('virtualservice.GatewayAnalyzer', () => {
  const gateway = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
  namespace: edge
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*.example.com", "other/admin.example.org"]
`;
  const vs = (gateways: string, hosts = '["shop.example.com"]') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
spec:
  hosts: ${hosts}
  gateways: ${gateways}
  http:
  - route:
    - destination: {host: reviews}
`;

  it('reports a gateway that does not exist (IST0101), at the reference', () => {
    const text = vs('[mesh, edge/public, missing]');
    const fs = run([gateway, text], [gatewayReferenceAnalyzer]);
    expect(fs).toEqual([
      expect.objectContaining({ code: 'IST0101', severity: 'error', path: 'spec.gateways[2]', message: 'Referenced gateway not found: "missing" (no Gateway default/missing in the input)', line: lineOf(text, 'gateways') }),
    ]);
  });

  it('finds gateways by namespace/name and by name in the same namespace; mesh is implicit', () => {
    const local = gateway.replace('namespace: edge', 'namespace: default');
    expect(run([gateway, local, vs('[mesh, edge/public, public]')], [gatewayReferenceAnalyzer])).toEqual([]);
  });

  it('warns when no host of the VirtualService is exposed by the gateway (IST0132)', () => {
    const text = vs('[edge/public]', '["shop.example.org", "admin.example.org"]');
    const fs = run([gateway, text], [gatewayReferenceAnalyzer]);
    expect(fs).toHaveLength(1);
    expect(fs[0]).toMatchObject({
      code: 'IST0132',
      severity: 'warning',
      path: 'spec.gateways[0]',
      message: 'VirtualService hosts "shop.example.org" and "admin.example.org" not found in Gateway edge/public: its servers accept "*.example.com"',
      line: lineOf(text, 'gateways'),
    });
  });

  it('accepts hosts matched by a server wildcard, and namespace-scoped server hosts for their namespace', () => {
    expect(run([gateway, vs('[edge/public]')], [gatewayReferenceAnalyzer])).toEqual([]);
    const inOther = vs('[edge/public]', '["admin.example.org"]').replace('name: shop', 'name: shop\n  namespace: other');
    expect(run([gateway, inOther], [gatewayReferenceAnalyzer])).toEqual([]);
  });
});

describe('virtualservice.DestinationHostAnalyzer', () => {
  const vs = (dest: string, ns = 'default') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: route
  namespace: ${ns}
spec:
  hosts: [route.example.com]
  http:
  - route:
    - destination: ${dest}
`;

  it('reports a destination host no Service or ServiceEntry defines (IST0101)', () => {
    const text = vs('{host: ratings}');
    const fs = run([reviewsPlatform, text], [destinationHostAnalyzer]);
    expect(fs).toEqual([
      expect.objectContaining({
        code: 'IST0101',
        severity: 'error',
        path: 'spec.http[0].route[0].destination.host',
        message: 'Referenced host not found: "ratings.default.svc.cluster.local" (no Service or ServiceEntry defines it)',
        line: lineOf(text, 'destination'),
      }),
    ]);
  });

  it('resolves short names in the namespace of the VirtualService', () => {
    expect(withCode(run([reviewsPlatform, vs('{host: reviews}', 'prod')], [destinationHostAnalyzer]), 'IST0101')).toHaveLength(1);
    expect(run([reviewsPlatform, vs('{host: reviews}')], [destinationHostAnalyzer])).toEqual([]);
  });

  it('resolves name.namespace and FQDN hosts across namespaces', () => {
    expect(run([reviewsPlatform, vs('{host: reviews.default}', 'prod')], [destinationHostAnalyzer])).toEqual([]);
    expect(run([reviewsPlatform, vs('{host: reviews.default.svc.cluster.local}', 'prod')], [destinationHostAnalyzer])).toEqual([]);
    const fs = run([reviewsPlatform, vs('{host: reviews.prod}')], [destinationHostAnalyzer]);
    expect(fs.map((f) => f.message)).toEqual(['Referenced host not found: "reviews.prod" (no Service or ServiceEntry defines reviews.prod.svc.cluster.local or reviews.prod)']);
  });

  it('accepts ServiceEntry hosts, wildcard ServiceEntry hosts and wildcard destinations', () => {
    const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external
spec:
  hosts: [api.example.com, "*.googleapis.com"]
  ports:
  - {number: 443, name: https, protocol: HTTPS}
  resolution: DNS
`;
    for (const d of ['{host: api.example.com}', '{host: www.googleapis.com}', '{host: "*.elsewhere.org"}']) {
      expect(run([se, vs(d)], [destinationHostAnalyzer]), d).toEqual([]);
    }
  });

  it('does not see a ServiceEntry exported only to another namespace', () => {
    const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external
  namespace: team-a
spec:
  hosts: [api.example.com]
  exportTo: ["."]
  ports:
  - {number: 443, name: https, protocol: HTTPS}
`;
    expect(run([se, vs('{host: api.example.com}', 'team-a')], [destinationHostAnalyzer])).toEqual([]);
    expect(withCode(run([se, vs('{host: api.example.com}', 'team-b')], [destinationHostAnalyzer]), 'IST0101')).toHaveLength(1);
  });

  // galley's own exportTo reading dropped `~` and kept the names beside it; pilot (and Istio) export
  // such a config to no one, so the analysis must not find it either.
  it('does not see a ServiceEntry whose exportTo holds `~`, whatever else it names', () => {
    const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external
  namespace: team-a
spec:
  hosts: [api.example.com]
  exportTo: ["~", "team-b"]
  ports:
  - {number: 443, name: https, protocol: HTTPS}
`;
    expect(withCode(run([se, vs('{host: api.example.com}', 'team-b')], [destinationHostAnalyzer]), 'IST0101')).toHaveLength(1);
  });

  it('reports a destination port the service does not expose (IST0101 host:port)', () => {
    const text = vs('{host: reviews, port: {number: 9081}}');
    const fs = run([reviewsPlatform, text], [destinationHostAnalyzer]);
    expect(fs).toEqual([
      expect.objectContaining({
        code: 'IST0101',
        path: 'spec.http[0].route[0].destination.port.number',
        message: 'Referenced host:port not found: "reviews.default.svc.cluster.local:9081" (the Service default/reviews exposes port 9080)',
        line: lineOf(text, 'destination'),
      }),
    ]);
    expect(run([reviewsPlatform, vs('{host: reviews, port: {number: 9080}}')], [destinationHostAnalyzer])).toEqual([]);
  });

  it('requires a port when the service has several (IST0112), and only then', () => {
    const twoPorts = reviewsPlatform.replace('  - name: http\n    port: 9080\n', '  - name: http\n    port: 9080\n  - name: grpc\n    port: 9090\n');
    const text = vs('{host: reviews}');
    const fs = run([twoPorts, text], [destinationHostAnalyzer]);
    expect(fs).toEqual([
      expect.objectContaining({
        code: 'IST0112',
        severity: 'error',
        path: 'spec.http[0].route[0].destination.host',
        message: 'This VirtualService routes to reviews.default.svc.cluster.local, which exposes several ports (9080, 9090): give destination.port.number to say which one',
      }),
    ]);
    expect(run([twoPorts, vs('{host: reviews, port: {number: 9090}}')], [destinationHostAnalyzer])).toEqual([]);
    expect(run([reviewsPlatform, text], [destinationHostAnalyzer])).toEqual([]);
  });

  it('checks mirrors and TCP routes too', () => {
    const text = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: route
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
    mirror: {host: shadow}
  tcp:
  - route:
    - destination: {host: db, port: {number: 5432}}
`;
    const fs = run([reviewsPlatform, text], [destinationHostAnalyzer]);
    expect(fs.map((f) => [f.path, f.message, f.line])).toEqual([
      ['spec.http[0].mirror.host', 'Referenced mirror host not found: "shadow.default.svc.cluster.local" (no Service or ServiceEntry defines it)', lineOf(text, 'mirror')],
      ['spec.tcp[0].route[0].destination.host', 'Referenced host not found: "db.default.svc.cluster.local" (no Service or ServiceEntry defines it)', lineOf(text, 'host: db')],
    ]);
  });
});

describe('virtualservice.DestinationRuleAnalyzer (subsets)', () => {
  const vs = (subset: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: ${subset}
`;

  it('reports a subset no DestinationRule for the host defines, naming the defined ones', () => {
    const text = vs('v4');
    const fs = run([reviewsPlatform, reviewsRule, text], [destinationRuleSubsetAnalyzer]);
    expect(fs).toEqual([
      expect.objectContaining({
        code: 'IST0101',
        severity: 'error',
        path: 'spec.http[0].route[0].destination.subset',
        message: 'Referenced subset not found: "v4" for host reviews.default.svc.cluster.local (defined subsets: v1, v2)',
        line: lineOf(text, 'subset'),
      }),
    ]);
  });

  it('says when there is no DestinationRule for the host at all', () => {
    const fs = run([reviewsPlatform, vs('v1')], [destinationRuleSubsetAnalyzer]);
    expect(fs.map((f) => f.message)).toEqual(['Referenced subset not found: "v1" for host reviews.default.svc.cluster.local (no DestinationRule defines subsets for this host)']);
  });

  it('accepts subsets of a DestinationRule naming the host another way (FQDN, other namespace)', () => {
    expect(run([reviewsPlatform, reviewsRule, vs('v2')], [destinationRuleSubsetAnalyzer])).toEqual([]);
    const fqdnRule = reviewsRule.replace('host: reviews', 'host: reviews.default.svc.cluster.local').replace('name: reviews', 'name: reviews\n  namespace: other');
    expect(run([reviewsPlatform, fqdnRule, vs('v1')], [destinationRuleSubsetAnalyzer])).toEqual([]);
  });
});

describe('virtualservice.ConflictingMeshGatewayHostsAnalyzer', () => {
  const vs = (name: string, host: string, extra = '') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
spec:
  hosts: [${host}]${extra}
  http:
  - route:
    - destination: {host: reviews}
`;

  it('reports every VirtualService bound to mesh that defines the same host (IST0109)', () => {
    const a = vs('reviews-a', 'reviews');
    const b = vs('reviews-b', 'reviews.default.svc.cluster.local', '\n  gateways: [mesh]');
    const fs = run([reviewsPlatform, a, b], [conflictingMeshGatewayHostsAnalyzer]);
    const message =
      'The VirtualServices default/reviews-a and default/reviews-b are both bound to the mesh gateway and define the same host reviews.default.svc.cluster.local: only the one created first applies to it; merge them into one VirtualService';
    expect(fs).toEqual([
      expect.objectContaining({ subject: 'VirtualService default/reviews-a', code: 'IST0109', severity: 'error', path: 'spec.hosts[0]', message, line: lineOf(a, 'hosts') }),
      expect.objectContaining({ subject: 'VirtualService default/reviews-b', code: 'IST0109', severity: 'error', path: 'spec.hosts[0]', message, line: lineOf(b, 'hosts') }),
    ]);
  });

  it('says which VirtualService applies when they carry creation times: the oldest, whatever the names', () => {
    const created = (text: string, t: string) => text.replace(/^ {2}name: .*$/m, (line) => `${line}\n  creationTimestamp: "${t}"`);
    const reviews = created(vs('reviews', 'reviews'), '2024-01-01T00:00:00Z');
    const ghost = created(vs('ghost', 'reviews'), '2024-02-01T00:00:00Z');
    const fs = run([reviewsPlatform, reviews, ghost], [conflictingMeshGatewayHostsAnalyzer]);
    const head = 'The VirtualServices default/ghost and default/reviews are both bound to the mesh gateway and define the same host reviews.default.svc.cluster.local: ';
    expect(fs.map((f) => [f.subject, f.message])).toEqual([
      ['VirtualService default/reviews', `${head}this one, the oldest, applies to it and the others are ignored for it; merge them into one VirtualService`],
      ['VirtualService default/ghost', `${head}only the oldest, default/reviews, applies to it and this one is ignored for it; merge them into one VirtualService`],
    ]);
  });

  it('does not report gateway-only VirtualServices, disjoint exportTo scopes, or one object given twice', () => {
    const gw = `\n  gateways: [edge/public]`;
    expect(run([reviewsPlatform, vs('a', 'reviews'), vs('b', 'reviews', gw)], [conflictingMeshGatewayHostsAnalyzer])).toEqual([]);
    const inA = vs('a', 'reviews.default.svc.cluster.local', '\n  exportTo: ["."]').replace('name: a', 'name: a\n  namespace: team-a');
    const inB = vs('b', 'reviews.default.svc.cluster.local', '\n  exportTo: ["."]').replace('name: b', 'name: b\n  namespace: team-b');
    expect(run([reviewsPlatform, inA, inB], [conflictingMeshGatewayHostsAnalyzer])).toEqual([]);
    expect(run([reviewsPlatform, vs('a', 'reviews'), vs('a', 'reviews')], [conflictingMeshGatewayHostsAnalyzer])).toEqual([]);
  });
});

describe('virtualservice.UnreachableRulesAnalyzer', () => {
  it('warns about rules after a catch-all rule (IST0130)', () => {
    const text = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: details
spec:
  hosts: [details]
  http:
  - route:
    - destination: {host: details}
  - name: never
    match:
    - uri: {prefix: /api}
    route:
    - destination: {host: details}
`;
    const fs = run(text, [unreachableRulesAnalyzer]);
    expect(fs).toEqual([
      expect.objectContaining({
        code: 'IST0130',
        severity: 'warning',
        path: 'spec.http[1]',
        message: 'VirtualService rule "never" not used (rule #0 before it has no match, so it takes every request; move the catch-all rule last)',
        line: lineOf(text, 'name: never'),
      }),
    ]);
  });

  it('reports duplicate matches (IST0131) and rules whose matches are all taken (IST0130)', () => {
    const text = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
    route:
    - destination: {host: reviews}
  - match:
    - name: again
      headers: {end-user: {exact: jason}}
    route:
    - destination: {host: reviews}
  - route:
    - destination: {host: reviews}
`;
    const fs = run(text, [unreachableRulesAnalyzer]);
    expect(fs.map((f) => [f.code, f.path, f.message, f.line])).toEqual([
      ['IST0130', 'spec.http[1]', 'VirtualService rule #1 not used (all its matches are taken by earlier rules)', lineOf(text, '- match', 1)],
      ['IST0131', 'spec.http[1].match[0]', 'VirtualService rule #1 match "again" is not used (duplicate of a match in rule #0)', lineOf(text, 'name: again')],
    ]);
  });

  it('accepts distinct matches followed by one catch-all', () => {
    const text = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
    route:
    - destination: {host: reviews}
  - match:
    - headers: {end-user: {exact: alice}}
    route:
    - destination: {host: reviews}
  - route:
    - destination: {host: reviews}
`;
    expect(run(text, [unreachableRulesAnalyzer])).toEqual([]);
  });
});
