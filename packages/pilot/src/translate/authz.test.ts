import { decodeAny, TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { bookinfoPlatform, generate, must, pushFrom, reviewsV1, router, typed } from './test-support.ts';

const LDS = TypeUrl.Listener;
type Chain = { name: string; filters: { name: string; typed_config?: unknown }[]; filter_chain_match?: { destination_port?: { value: number } | null; transport_protocol?: string } | null };

function policy(name: string, spec: string, namespace = 'default', annotations = ''): string {
  return `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${namespace}${annotations ? `, annotations: ${annotations}` : ''}}
spec: ${spec}
`;
}

const tcpService = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews-admin, namespace: default}
spec:
  hosts: [reviews-admin.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 7000, name: tcp-admin, protocol: TCP}]
  workloadSelector: {labels: {app: reviews}}
`;

/** Drops what protobufjs fills in (defaults, oneof names) so a decoded message reads like Istio's YAML. */
function compact(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(compact);
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.type_url === 'string' && (Buffer.isBuffer(o.value) || o.value instanceof Uint8Array)) {
      return { '@type': o.type_url, ...(compact(decodeAny(o as never)) as object) };
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) {
      if (typeof x === 'string' && x !== k && o[x] !== undefined && o[x] !== null && /^[a-z_]+$/.test(x) && Object.hasOwn(o, x)) continue;
      const c = compact(x);
      if (c === null || c === undefined || c === '' || c === false || c === 0) continue;
      if (Array.isArray(c) && c.length === 0) continue;
      if (typeof c === 'object' && !Array.isArray(c) && Object.keys(c as object).length === 0 && k !== 'google_re2') continue;
      out[k] = c;
    }
    return out;
  }
  return v;
}

function inbound(texts: string[], port = 9080, mesh = {}) {
  const vi = must(generate(pushFrom([bookinfoPlatform(), tcpService, ...texts], mesh), reviewsV1(), LDS).get('virtualInbound'));
  return (vi.filter_chains as Chain[]).filter((c) => c.filter_chain_match?.destination_port?.value === port);
}

function httpFilters(chain: Chain | undefined) {
  const f = must(chain?.filters.find((x) => x.name === 'envoy.filters.network.http_connection_manager'), 'hcm');
  return typed(f.typed_config as never, TypeUrl.HttpConnectionManager).http_filters;
}

/** The RBAC HTTP filters of the plaintext 9080 chain, decoded. */
function httpRbac(texts: string[], mesh = {}) {
  const chain = inbound(texts, 9080, mesh).find((c) => c.filter_chain_match?.transport_protocol === 'raw_buffer');
  return httpFilters(chain)
    .filter((f) => f.name === 'envoy.filters.http.rbac')
    .map((f) => typed(f.typed_config, TypeUrl.HttpRbac));
}

function tcpRbac(texts: string[]) {
  const chain = inbound(texts, 7000).find((c) => c.filter_chain_match?.transport_protocol === 'raw_buffer');
  return must(chain)
    .filters.filter((f) => f.name === 'envoy.filters.network.rbac')
    .map((f) => typed(f.typed_config as never, TypeUrl.NetworkRbac));
}

const any = { and_rules: { rules: [{ any: true }] } };
const anyId = { and_ids: { ids: [{ any: true }] } };

describe('AuthorizationPolicy -> envoy.filters.http.rbac', () => {
  it('adds nothing when no policy applies to the workload', () => {
    expect(httpRbac([])).toEqual([]);
    expect(httpRbac([policy('other', '{selector: {matchLabels: {app: ratings}}, rules: [{}]}')])).toEqual([]);
    expect(tcpRbac([])).toEqual([]);
  });

  it('translates every source field with Istio matching rules (principals with spiffe:// and * prefix/suffix, namespaces as principal regex, ipBlocks, remoteIpBlocks, not forms)', () => {
    const [f] = httpRbac([
      policy(
        'full',
        `
  selector: {matchLabels: {app: reviews}}
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/default/sa/productpage, "cluster.local/ns/test-*", "*/sa/sleep", "*"]
        notPrincipals: [cluster.local/ns/default/sa/bad]
        requestPrincipals: [issuer/subject]
        namespaces: [default, "team-*"]
        notNamespaces: [kube-system]
        ipBlocks: [10.1.2.3, 192.168.0.0/16]
        notIpBlocks: [192.168.7.0/24]
        remoteIpBlocks: [203.0.113.7]
        notRemoteIpBlocks: ["2001:db8::/32"]`,
      ),
    ]);
    const rules = must(f?.rules);
    expect(rules.action).toBe('ALLOW');
    expect(Object.keys(rules.policies)).toEqual(['ns[default]-policy[full]-rule[0]']);
    const p = must(rules.policies['ns[default]-policy[full]-rule[0]']);
    expect(compact(p.permissions)).toEqual([any]);
    const auth = (m: object) => ({ authenticated: { principal_name: m } });
    expect(compact(p.principals)).toEqual([
      {
        and_ids: {
          ids: [
            {
              or_ids: {
                ids: [
                  auth({ exact: 'spiffe://cluster.local/ns/default/sa/productpage' }),
                  auth({ prefix: 'spiffe://cluster.local/ns/test-' }),
                  auth({ safe_regex: { regex: 'spiffe://.*/sa/sleep' } }),
                  auth({ safe_regex: { regex: '.+' } }),
                ],
              },
            },
            { not_id: { or_ids: { ids: [auth({ exact: 'spiffe://cluster.local/ns/default/sa/bad' })] } } },
            { or_ids: { ids: [{ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value: { string_match: { exact: 'issuer/subject' } } } }] } },
            { or_ids: { ids: [auth({ safe_regex: { regex: '.*/ns/default/.*' } }), auth({ safe_regex: { regex: '.*/ns/team-.*/.*' } })] } },
            { not_id: { or_ids: { ids: [auth({ safe_regex: { regex: '.*/ns/kube-system/.*' } })] } } },
            { or_ids: { ids: [{ remote_ip: { address_prefix: '203.0.113.7', prefix_len: { value: 32 } } }] } },
            { not_id: { or_ids: { ids: [{ remote_ip: { address_prefix: '2001:db8::', prefix_len: { value: 32 } } }] } } },
            {
              or_ids: {
                ids: [{ direct_remote_ip: { address_prefix: '10.1.2.3', prefix_len: { value: 32 } } }, { direct_remote_ip: { address_prefix: '192.168.0.0', prefix_len: { value: 16 } } }],
              },
            },
            { not_id: { or_ids: { ids: [{ direct_remote_ip: { address_prefix: '192.168.7.0', prefix_len: { value: 24 } } }] } } },
          ],
        },
      },
    ]);
  });

  it('translates operations: hosts ignoring case, methods, paths (exact, prefix*, *suffix, *, path templates), ports, and not forms', () => {
    const [f] = httpRbac([
      policy(
        'ops',
        `
  selector: {matchLabels: {app: reviews}}
  rules:
  - to:
    - operation:
        hosts: [Reviews.Example.com, "*.example.org", "api.*"]
        notHosts: [admin.example.com]
        methods: [GET, "*"]
        notMethods: [DELETE]
        paths: [/exact, "/api/*", "*.css", "*", "/books/{*}/reviews", "/static/{**}"]
        notPaths: [/api/admin]
        ports: ["9080"]
        notPorts: ["9090"]
    - operation:
        methods: [POST]`,
      ),
    ]);
    const p = must(f?.rules?.policies['ns[default]-policy[ops]-rule[0]']);
    const authority = (m: object) => ({ header: { name: ':authority', string_match: { ...m, ignore_case: true } } });
    const template = (t: string) => ({ uri_template: { name: 'uri-template', typed_config: { '@type': TypeUrl.UriTemplateMatchConfig, path_template: t } } });
    expect(compact(p.permissions)).toEqual([
      {
        and_rules: {
          rules: [
            { or_rules: { rules: [authority({ exact: 'Reviews.Example.com' }), authority({ suffix: '.example.org' }), authority({ prefix: 'api.' })] } },
            { not_rule: { or_rules: { rules: [authority({ exact: 'admin.example.com' })] } } },
            { or_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'GET' } } }, { header: { name: ':method', present_match: true } }] } },
            { not_rule: { or_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'DELETE' } } }] } } },
            {
              or_rules: {
                rules: [
                  { url_path: { path: { exact: '/exact' } } },
                  { url_path: { path: { prefix: '/api/' } } },
                  { url_path: { path: { suffix: '.css' } } },
                  { url_path: { path: { safe_regex: { regex: '.+' } } } },
                  template('/books/*/reviews'),
                  template('/static/**'),
                ],
              },
            },
            { not_rule: { or_rules: { rules: [{ url_path: { path: { exact: '/api/admin' } } }] } } },
            { or_rules: { rules: [{ destination_port: 9080 }] } },
            { not_rule: { or_rules: { rules: [{ destination_port: 9090 }] } } },
          ],
        },
      },
      { and_rules: { rules: [{ or_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'POST' } } }] } }] } },
    ]);
    expect(compact(p.principals)).toEqual([anyId]);
  });

  it('translates when conditions into permissions (destination.*, connection.sni, experimental metadata) and principals (headers, source.*, request.auth.*)', () => {
    const [f] = httpRbac([
      policy(
        'when',
        `
  selector: {matchLabels: {app: reviews}}
  rules:
  - when:
    - {key: "request.headers[X-Token]", values: [secret, "pre*"], notValues: ["*"]}
    - {key: source.ip, values: [10.0.0.0/8]}
    - {key: remote.ip, notValues: [1.2.3.4]}
    - {key: source.namespace, values: [default]}
    - {key: source.principal, values: [cluster.local/ns/default/sa/productpage]}
    - {key: "request.auth.claims[groups]", values: [admin]}
    - {key: request.auth.audiences, values: [weft]}
    - {key: destination.ip, values: [127.0.0.13]}
    - {key: destination.port, values: ["9080"]}
    - {key: connection.sni, values: ["*.local"]}
    - {key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"]}`,
      ),
    ]);
    const p = must(f?.rules?.policies['ns[default]-policy[when]-rule[0]']);
    expect(compact(p.permissions)).toEqual([
      {
        and_rules: {
          rules: [
            { or_rules: { rules: [{ destination_ip: { address_prefix: '127.0.0.13', prefix_len: { value: 32 } } }] } },
            { or_rules: { rules: [{ destination_port: 9080 }] } },
            { or_rules: { rules: [{ requested_server_name: { suffix: '.local' } }] } },
            {
              or_rules: {
                rules: [{ metadata: { filter: 'envoy.filters.network.mysql_proxy', path: [{ key: 'db.table' }], value: { list_match: { one_of: { string_match: { exact: 'update' } } } } } }],
              },
            },
          ],
        },
      },
    ]);
    expect(compact(p.principals)).toEqual([
      {
        and_ids: {
          ids: [
            { or_ids: { ids: [{ header: { name: 'X-Token', string_match: { exact: 'secret' } } }, { header: { name: 'X-Token', string_match: { prefix: 'pre' } } }] } },
            { not_id: { or_ids: { ids: [{ header: { name: 'X-Token', present_match: true } }] } } },
            { or_ids: { ids: [{ direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 8 } } }] } },
            { not_id: { or_ids: { ids: [{ remote_ip: { address_prefix: '1.2.3.4', prefix_len: { value: 32 } } }] } } },
            { or_ids: { ids: [{ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/default/.*' } } } }] } },
            { or_ids: { ids: [{ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/productpage' } } }] } },
            {
              or_ids: {
                ids: [
                  {
                    metadata: {
                      filter: 'istio_authn',
                      path: [{ key: 'request.auth.claims' }, { key: 'groups' }],
                      value: { list_match: { one_of: { string_match: { exact: 'admin' } } } },
                    },
                  },
                ],
              },
            },
            { or_ids: { ids: [{ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.audiences' }], value: { string_match: { exact: 'weft' } } } }] } },
          ],
        },
      },
    ]);
  });

  it('orders the filters CUSTOM (fail-closed DENY), AUDIT (LOG), DENY, ALLOW, all before the router', () => {
    const sel = 'selector: {matchLabels: {app: reviews}}';
    const texts = [
      policy('allow', `{${sel}, rules: [{to: [{operation: {methods: [GET]}}]}]}`),
      policy('deny', `{${sel}, action: DENY, rules: [{to: [{operation: {paths: [/admin]}}]}]}`),
      policy('audit', `{${sel}, action: AUDIT, rules: [{}]}`),
      policy('ext', `{${sel}, action: CUSTOM, provider: {name: my-ext-authz}, rules: [{to: [{operation: {paths: [/ext]}}]}]}`),
    ];
    const chain = inbound(texts).find((c) => c.filter_chain_match?.transport_protocol === 'raw_buffer');
    expect(httpFilters(chain).map((f) => f.name)).toEqual([
      'envoy.filters.http.rbac',
      'envoy.filters.http.rbac',
      'envoy.filters.http.rbac',
      'envoy.filters.http.rbac',
      'envoy.filters.http.router',
    ]);
    const rbac = httpRbac(texts);
    expect(rbac.map((r) => [r.rules?.action, Object.keys(r.rules?.policies ?? {})])).toEqual([
      ['DENY', ['istio-ext-authz-ns[default]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action']],
      ['LOG', ['ns[default]-policy[audit]-rule[0]']],
      ['DENY', ['ns[default]-policy[deny]-rule[0]']],
      ['ALLOW', ['ns[default]-policy[allow]-rule[0]']],
    ]);
    // The fail-closed CUSTOM filter denies exactly what the policy's rules match.
    expect(compact(rbac[0]?.rules?.policies['istio-ext-authz-ns[default]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action']?.permissions)).toEqual([
      { and_rules: { rules: [{ or_rules: { rules: [{ url_path: { path: { exact: '/ext' } } }] } }] } },
    ]);
    // The mTLS chain gets the same filters.
    expect(httpFilters(inbound(texts).find((c) => c.filter_chain_match?.transport_protocol === 'tls')).filter((f) => f.name === 'envoy.filters.http.rbac')).toHaveLength(4);
  });

  it('ALLOW with no rules matches nothing (denies all); rules: [{}] matches everything; a namespace-wide policy applies', () => {
    const [none] = httpRbac([policy('deny-all', '{}')]);
    expect(compact(none?.rules?.policies['ns[default]-policy[deny-all]-rule[0]'])).toEqual({
      permissions: [{ not_rule: { any: true } }],
      principals: [{ not_id: { any: true } }],
    });
    const [all] = httpRbac([policy('allow-all', '{rules: [{}]}', 'istio-system')]);
    expect(compact(all?.rules?.policies['ns[istio-system]-policy[allow-all]-rule[0]'])).toEqual({ permissions: [any], principals: [anyId] });
  });

  it('puts istio.io/dry-run policies in shadow_rules (not enforced)', () => {
    const [f] = httpRbac([policy('dry', '{action: DENY, rules: [{}]}', 'default', '{"istio.io/dry-run": "true"}')]);
    expect(f?.rules).toBeNull();
    expect(f?.shadow_rules?.action).toBe('DENY');
    expect(Object.keys(f?.shadow_rules?.policies ?? {})).toEqual(['ns[default]-policy[dry]-rule[0]']);
    expect(f?.shadow_rules_stat_prefix).toBe('istio_dry_run_deny_');
  });

  it('rewrites cluster.local principals to the mesh trust domain, as Istio does', () => {
    const [f] = httpRbac([policy('td', '{rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/a, other.td/ns/default/sa/b]}}]}]}')], { trustDomain: 'example.org' });
    const ids = compact(f?.rules?.policies['ns[default]-policy[td]-rule[0]']?.principals) as { and_ids: { ids: { or_ids: { ids: unknown[] } }[] } }[];
    expect(ids[0]?.and_ids.ids[0]?.or_ids.ids).toEqual([
      { authenticated: { principal_name: { exact: 'spiffe://example.org/ns/default/sa/a' } } },
      { authenticated: { principal_name: { exact: 'spiffe://other.td/ns/default/sa/b' } } },
    ]);
  });

  it('skips a rule with an invalid value in ALLOW (allows less) but only the value in DENY (denies more)', () => {
    const texts = [
      policy('allow', '{rules: [{from: [{source: {ipBlocks: [not-an-ip]}}]}, {from: [{source: {ipBlocks: [10.0.0.1]}}]}]}'),
      policy('deny', '{action: DENY, rules: [{from: [{source: {ipBlocks: [not-an-ip, 10.0.0.2]}}]}]}'),
    ];
    const [deny, allow] = httpRbac(texts);
    expect(Object.keys(allow?.rules?.policies ?? {})).toEqual(['ns[default]-policy[allow]-rule[1]']);
    expect(compact(deny?.rules?.policies['ns[default]-policy[deny]-rule[0]']?.principals)).toEqual([
      { and_ids: { ids: [{ or_ids: { ids: [{ direct_remote_ip: { address_prefix: '10.0.0.2', prefix_len: { value: 32 } } }] } }] } },
    ]);
  });
});

describe('AuthorizationPolicy -> envoy.filters.network.rbac (TCP chains)', () => {
  it('puts the network RBAC filters before tcp_proxy, stat_prefix tcp.', () => {
    const texts = [policy('deny', '{action: DENY, rules: [{from: [{source: {ipBlocks: [10.9.9.9]}}]}]}'), policy('allow', '{rules: [{to: [{operation: {ports: ["7000"]}}]}]}')];
    const chain = inbound(texts, 7000).find((c) => c.filter_chain_match?.transport_protocol === 'raw_buffer');
    expect(must(chain).filters.map((f) => f.name)).toEqual(['envoy.filters.network.rbac', 'envoy.filters.network.rbac', 'envoy.filters.network.tcp_proxy']);
    const [deny, allow] = tcpRbac(texts);
    expect(deny?.stat_prefix).toBe('tcp.');
    expect(deny?.rules?.action).toBe('DENY');
    expect(compact(allow?.rules?.policies['ns[default]-policy[allow]-rule[0]']?.permissions)).toEqual([{ and_rules: { rules: [{ or_rules: { rules: [{ destination_port: 7000 }] } }] } }]);
  });

  it('drops ALLOW rules that use HTTP-only fields (so an ALLOW of only HTTP rules denies TCP) and keeps only the TCP fields of DENY rules', () => {
    const texts = [
      policy('allow', '{rules: [{to: [{operation: {methods: [GET]}}]}, {from: [{source: {namespaces: [default]}}], when: [{key: "request.headers[x]", values: [y]}]}]}'),
      policy('deny', '{action: DENY, rules: [{to: [{operation: {paths: [/admin], ports: ["7000"]}}]}, {to: [{operation: {methods: [POST]}}]}]}'),
    ];
    const [deny, allow] = tcpRbac(texts);
    expect(allow?.rules?.action).toBe('ALLOW');
    expect(allow?.rules?.policies).toEqual({});
    expect(compact(deny?.rules?.policies)).toEqual({
      'ns[default]-policy[deny]-rule[0]': { permissions: [{ and_rules: { rules: [{ or_rules: { rules: [{ destination_port: 7000 }] } }] } }], principals: [anyId] },
      'ns[default]-policy[deny]-rule[1]': { permissions: [any], principals: [anyId] },
    });
  });
});

describe('AuthorizationPolicy on gateways', () => {
  it('puts RBAC on the HTTP chains of the gateway workload the policy selects', () => {
    const gateway = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: ["*"]
`;
    const texts = [bookinfoPlatform(), gateway, policy('gw-deny', '{selector: {matchLabels: {istio: ingressgateway}}, action: DENY, rules: [{from: [{source: {remoteIpBlocks: [198.51.100.0/24]}}]}]}', 'istio-system')];
    const listeners = generate(pushFrom(texts), router('127.0.0.100', 'ingress-1', { istio: 'ingressgateway' }), LDS);
    const http = must(listeners.get('0.0.0.0_8080'));
    expect(httpFilters(http.filter_chains[0] as Chain).map((f) => f.name)).toEqual(['envoy.filters.http.rbac', 'envoy.filters.http.cors', 'envoy.filters.http.fault', 'envoy.filters.http.router']);
    const other = generate(pushFrom(texts), router('127.0.0.101', 'other-1', { istio: 'other' }), LDS);
    for (const l of other.values()) for (const c of l.filter_chains as Chain[]) expect(c.filters.some((f) => f.name.includes('rbac'))).toBe(false);
  });
});
