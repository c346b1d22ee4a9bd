// AuthorizationPolicy -> Envoy RBAC, as Istio's authz builder does it (pilot/pkg/security/authz:
// builder, model, matcher). Per workload: the policies that apply (push context, by selector or
// targetRef) become one `envoy.filters.http.rbac` filter per action on inbound HTTP chains and one
// `envoy.filters.network.rbac` filter per action on inbound TCP chains, in Istio's order:
// CUSTOM (here: a DENY that fails closed), AUDIT (RBAC action LOG), DENY, ALLOW. Each rule of a
// policy is one RBAC policy named `ns[<ns>]-policy[<name>]-rule[<i>]`.
//
// Istio's rules kept here:
// - A rule is (OR of its `from` sources) AND (OR of its `to` operations) AND (every `when`); in a
//   source or operation, each field is an OR of its values, `not*` fields a NOT of that OR, and all
//   fields are ANDed. Principals get `spiffe://` and `*` prefix/suffix matching; namespaces match the
//   principal `.*/ns/<ns>/.*`; ipBlocks are direct_remote_ip, remoteIpBlocks remote_ip.
// - HTTP-only fields (hosts, methods, paths, request.headers, requestPrincipals, request.auth.*) on a
//   TCP chain: an ALLOW rule that uses one is dropped (it allows less); a DENY or AUDIT rule drops just
//   those fields (it denies more). Invalid values (a bad CIDR) follow the same asymmetry.
// - No rules: an explicit policy that never matches (ALLOW with no rules denies everything once the
//   ALLOW filter exists; `rules: [{}]` matches everything).
// - requestPrincipals and request.auth.* match `istio_authn` dynamic metadata, which only JWT
//   authentication (RequestAuthentication) produces: Weft has none yet, so they never match.
// - `istio.io/dry-run: "true"` puts the policy into shadow_rules (evaluated, never enforced).
// - CUSTOM needs an ext_authz provider, which Weft does not support: the policy's rules become a DENY
//   filter with Istio's `…-deny-due-to-bad-CUSTOM-action` names, exactly what Istio generates when the
//   provider is unknown (fail closed). Galley warns about every CUSTOM policy.
import { spiffePrefix } from '@weft/mesh';
import type { AuthorizationPolicySpec, Condition, Config, Operation, Rule, Source } from '@weft/model';
import { encodeAny, type HttpRbac, type NetworkRbac, type RbacPolicies, TypeUrl } from '@weft/xds';
import type { MeshConfig, Proxy as MeshProxy, PushContext } from '../core/types.ts';
import type { HttpFilter, NetworkFilter } from './envoy.ts';

type RbacRules = RbacPolicies;
type RbacPolicy = NonNullable<RbacRules['policies']>[string];
export type RbacPermission = NonNullable<RbacPolicy['permissions']>[number];
export type RbacPrincipal = NonNullable<RbacPolicy['principals']>[number];
type StringMatcher = NonNullable<RbacPermission['requested_server_name']>;
type HeaderMatcher = NonNullable<RbacPermission['header']>;
type CidrRange = NonNullable<RbacPermission['destination_ip']>;
type MetadataMatcher = NonNullable<RbacPermission['metadata']>;
type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

export const RbacFilterNames = { http: 'envoy.filters.http.rbac', network: 'envoy.filters.network.rbac' } as const;
const dryRunAnnotation = 'istio.io/dry-run';
const tcpStatPrefix = 'tcp.';
const badCustomSuffix = '-deny-due-to-bad-CUSTOM-action';
const extAuthzPrefix = 'istio-ext-authz';

/** What a generator refuses: a field that needs HTTP on a TCP chain, or a value it cannot use. */
class Unusable extends Error {}

interface Generator {
  permission?(key: string, value: string, forTcp: boolean): RbacPermission;
  principal?(key: string, value: string, forTcp: boolean): RbacPrincipal;
}

interface RuleItem {
  key: string;
  values: readonly string[];
  notValues: readonly string[];
  g: Generator;
}

// ---------------------------------------------------------------- matchers (Istio's matcher package)

function regexMatcher(regex: string): StringMatcher {
  return { safe_regex: { regex } };
}

/** Istio's StringMatcherWithPrefix: `*` any non-empty, `*x` suffix, `x*` prefix, else exact; `prefix` prepended. */
function stringMatcher(v: string, prefix = ''): StringMatcher {
  if (v === '*') return regexMatcher('.+');
  if (v.startsWith('*')) return prefix === '' ? { suffix: v.slice(1) } : regexMatcher(`${prefix}.*${v.slice(1)}`);
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1) };
  return { exact: prefix + v };
}

function headerMatcher(name: string, v: string): HeaderMatcher {
  if (v === '*') return { name, present_match: true };
  return { name, string_match: stringMatcher(v) };
}

/** Hosts match `:authority` ignoring case; a port in the request is not stripped (list `host:port` too, as in Istio). */
function hostMatcher(v: string): HeaderMatcher {
  if (v === '*') return { name: ':authority', present_match: true };
  return { name: ':authority', string_match: { ...stringMatcher(v), ignore_case: true } };
}

const containsPathTemplate = (p: string) => p.includes('{*}') || p.includes('{**}');

function uriTemplate(path: string): RbacPermission {
  const template = path.replaceAll('{**}', '**').replaceAll('{*}', '*');
  return { uri_template: { name: 'uri-template', typed_config: encodeAny(TypeUrl.UriTemplateMatchConfig, { path_template: template }) } };
}

/** Istio's AddrStrToCidrRange: an address (host prefix) or CIDR. */
function cidr(v: string): CidrRange {
  const slash = v.indexOf('/');
  const address = slash < 0 ? v : v.slice(0, slash);
  const v6 = address.includes(':');
  if (!isIp(address)) throw new Unusable(`invalid IP address ${JSON.stringify(v)}`);
  let len = v6 ? 128 : 32;
  if (slash >= 0) {
    const text = v.slice(slash + 1);
    len = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!(len >= 0 && len <= (v6 ? 128 : 32))) throw new Unusable(`invalid CIDR ${JSON.stringify(v)}`);
  }
  return { address_prefix: address, prefix_len: { value: len } };
}

function isIp(s: string): boolean {
  if (/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(s)) return s.split('.').every((p) => Number(p) <= 255);
  return s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s);
}

function port(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new Unusable(`invalid port ${v}`);
  return Number(v);
}

function authnMetadata(path: readonly string[], value: StringMatcher, list = false): MetadataMatcher {
  return {
    filter: 'istio_authn',
    path: path.map((key) => ({ key })),
    value: list ? { list_match: { one_of: { string_match: value } } } : { string_match: value },
  };
}

/** `[a]` or `[a][b]` after a prefix: the names inside the brackets. */
function bracketNames(rest: string): string[] {
  const out: string[] = [];
  const re = /\[([^\][]+)\]/y;
  let m: RegExpExecArray | null = re.exec(rest);
  while (m) {
    out.push(m[1]!);
    if (re.lastIndex === rest.length) return out;
    m = re.exec(rest);
  }
  throw new Unusable(`expecting format [<NAME>], found ${rest}`);
}

const httpOnly = (key: string, forTcp: boolean) => {
  if (forTcp) throw new Unusable(`${JSON.stringify(key)} is HTTP only`);
};

const authenticated = (principal_name: StringMatcher): RbacPrincipal => ({ authenticated: { principal_name } });

// ---------------------------------------------------------------- generators (Istio's model/generator.go)

const destIp: Generator = { permission: (_k, v) => ({ destination_ip: cidr(v) }) };
const destPort: Generator = { permission: (_k, v) => ({ destination_port: port(v) }) };
const connSni: Generator = { permission: (_k, v) => ({ requested_server_name: stringMatcher(v) }) };
const envoyFilter: Generator = {
  permission(key, v) {
    // experimental.envoy.filters.a.b[c] -> filter envoy.filters.a.b, path [c]
    const open = key.indexOf('[');
    if (open < 0 || !key.endsWith(']')) throw new Unusable(`invalid key: ${key}`);
    const filter = key.slice('experimental.'.length, open);
    const path = [key.slice(open + 1, -1)];
    const list = v.startsWith('[') && v.endsWith(']');
    const value = stringMatcher(list ? v.slice(1, -1) : v);
    return { metadata: { filter, path: path.map((k) => ({ key: k })), value: list ? { list_match: { one_of: { string_match: value } } } : { string_match: value } } };
  },
};
const srcIp: Generator = { principal: (_k, v) => ({ direct_remote_ip: cidr(v) }) };
const remoteIp: Generator = { principal: (_k, v) => ({ remote_ip: cidr(v) }) };
const srcNamespace: Generator = { principal: (_k, v) => authenticated(regexMatcher(`.*/ns/${v.replaceAll('*', '.*')}/.*`)) };
const srcPrincipal: Generator = { principal: (_k, v) => authenticated(stringMatcher(v, spiffePrefix)) };
function srcServiceAccount(policyNamespace: string): Generator {
  return {
    principal(_k, v) {
      const slash = v.indexOf('/');
      const ns = slash < 0 ? policyNamespace : v.slice(0, slash);
      const sa = slash < 0 ? v : v.slice(slash + 1);
      return authenticated(regexMatcher(`spiffe://.+/ns/${ns}/(.+/|)sa/${sa}(/.+)?`));
    },
  };
}
function authnValue(metadataKey: string): Generator {
  return {
    principal(key, v, forTcp) {
      httpOnly(key, forTcp);
      return { metadata: authnMetadata([metadataKey], stringMatcher(v)) };
    },
  };
}
const requestHeader: Generator = {
  principal(key, v, forTcp) {
    httpOnly(key, forTcp);
    const [name] = bracketNames(key.slice('request.headers'.length));
    return { header: headerMatcher(name!, v) };
  },
};
const requestClaims: Generator = {
  principal(key, v, forTcp) {
    httpOnly(key, forTcp);
    const claims = bracketNames(key.slice('request.auth.claims'.length));
    return { metadata: authnMetadata(['request.auth.claims', ...claims], stringMatcher(v), true) };
  },
};
const host: Generator = {
  permission(key, v, forTcp) {
    httpOnly(key, forTcp);
    return { header: hostMatcher(v) };
  },
};
const path: Generator = {
  permission(key, v, forTcp) {
    httpOnly(key, forTcp);
    if (containsPathTemplate(v)) return uriTemplate(v);
    return { url_path: { path: stringMatcher(v) } };
  },
};
const method: Generator = {
  permission(key, v, forTcp) {
    httpOnly(key, forTcp);
    return { header: headerMatcher(':method', v) };
  },
};

// ---------------------------------------------------------------- model (Istio's model.go)

/** A rule as lists of conditions: one permission list per `to`, one principal list per `from`. */
interface Model {
  permissions: RuleItem[][];
  principals: RuleItem[][];
}

function item(g: Generator, key: string, values: readonly string[] | undefined, notValues: readonly string[] | undefined): RuleItem | undefined {
  if (!values?.length && !notValues?.length) return undefined;
  return { key, values: values ?? [], notValues: notValues ?? [], g };
}

function newModel(rule: Rule, policyNamespace: string, trustDomain: string): Model {
  const basePermission: RuleItem[] = [];
  const basePrincipal: RuleItem[] = [];
  for (const when of rule.when ?? []) {
    const k = when.key;
    const g = whenGenerator(k, policyNamespace);
    if (!g) throw new Unusable(`unknown attribute ${k}`);
    const it = item(g.g, k, values(when, 'values', k, trustDomain), values(when, 'notValues', k, trustDomain));
    if (it) (g.on === 'permission' ? basePermission : basePrincipal).push(it);
  }
  const principals: RuleItem[][] = [];
  for (const from of rule.from ?? []) {
    const s: Source = from.source ?? {};
    const front = [
      item(srcPrincipal, 'source.principal', trustDomainPrincipals(s.principals, trustDomain), trustDomainPrincipals(s.notPrincipals, trustDomain)),
      item(authnValue('request.auth.principal'), 'request.auth.principal', s.requestPrincipals, s.notRequestPrincipals),
      item(srcServiceAccount(policyNamespace), 'source.serviceAccount', s.serviceAccounts, s.notServiceAccounts),
      item(srcNamespace, 'source.namespace', s.namespaces, s.notNamespaces),
      item(remoteIp, 'remote.ip', s.remoteIpBlocks, s.notRemoteIpBlocks),
      item(srcIp, 'source.ip', s.ipBlocks, s.notIpBlocks),
    ].filter((x): x is RuleItem => x !== undefined);
    principals.push([...front, ...basePrincipal]);
  }
  if (!rule.from?.length) principals.push(basePrincipal);
  const permissions: RuleItem[][] = [];
  for (const to of rule.to ?? []) {
    const o: Operation = to.operation ?? {};
    const front = [
      item(host, 'hosts', o.hosts, o.notHosts),
      item(method, 'methods', o.methods, o.notMethods),
      item(path, 'paths', o.paths, o.notPaths),
      item(destPort, 'destination.port', o.ports, o.notPorts),
    ].filter((x): x is RuleItem => x !== undefined);
    permissions.push([...front, ...basePermission]);
  }
  if (!rule.to?.length) permissions.push(basePermission);
  return { permissions, principals };
}

function values(c: Condition, field: 'values' | 'notValues', key: string, trustDomain: string): readonly string[] | undefined {
  const v = c[field];
  return key === 'source.principal' ? trustDomainPrincipals(v, trustDomain) : v;
}

function whenGenerator(k: string, policyNamespace: string): { g: Generator; on: 'permission' | 'principal' } | undefined {
  switch (k) {
    case 'destination.ip':
      return { g: destIp, on: 'permission' };
    case 'destination.port':
      return { g: destPort, on: 'permission' };
    case 'connection.sni':
      return { g: connSni, on: 'permission' };
    case 'source.ip':
      return { g: srcIp, on: 'principal' };
    case 'remote.ip':
      return { g: remoteIp, on: 'principal' };
    case 'source.namespace':
      return { g: srcNamespace, on: 'principal' };
    case 'source.serviceAccount':
      return { g: srcServiceAccount(policyNamespace), on: 'principal' };
    case 'source.principal':
      return { g: srcPrincipal, on: 'principal' };
    case 'request.auth.principal':
    case 'request.auth.audiences':
    case 'request.auth.presenter':
      return { g: authnValue(k), on: 'principal' };
  }
  if (k.startsWith('experimental.envoy.filters.')) return { g: envoyFilter, on: 'permission' };
  if (k.startsWith('request.headers')) return { g: requestHeader, on: 'principal' };
  if (k.startsWith('request.auth.claims')) return { g: requestClaims, on: 'principal' };
  return undefined;
}

/**
 * Istio's trust domain handling for principals: `cluster.local/ns/x/sa/y` (and the mesh's own trust
 * domain) means "this mesh", so it is rewritten to the mesh's trust domain; `*` trust domains and
 * principals that are not `<td>/ns/<ns>/sa/<sa>` stay as written.
 */
function trustDomainPrincipals(principals: readonly string[] | undefined, trustDomain: string): readonly string[] | undefined {
  if (!principals) return principals;
  return principals.map((p) => {
    const parts = p.split('/');
    if (parts.length !== 5 || parts[0] === '*') return p;
    const td = parts[0]!;
    if (td !== trustDomain && td !== 'cluster.local') return p;
    return [trustDomain, ...parts.slice(1)].join('/');
  });
}

/** ALLOW: an unusable value makes the whole rule unusable (it allows less). DENY/LOG: the value is skipped (it denies more). */
function tolerate<T>(action: RbacAction, make: () => T): T | undefined {
  try {
    return make();
  } catch (err) {
    if (action === 'ALLOW' || !(err instanceof Unusable)) throw err;
    return undefined;
  }
}

function permissionsOf(list: readonly RuleItem[], forTcp: boolean, action: RbacAction): RbacPermission {
  const and: RbacPermission[] = [];
  for (const r of list) {
    const gen = r.g.permission;
    if (!gen) throw new Unusable(`${r.key} is not a permission`);
    const or = r.values.map((v) => tolerate(action, () => gen(r.key, v, forTcp))).filter((p): p is RbacPermission => p !== undefined);
    if (or.length > 0) and.push({ or_rules: { rules: or } });
    const not = r.notValues.map((v) => tolerate(action, () => gen(r.key, v, forTcp))).filter((p): p is RbacPermission => p !== undefined);
    if (not.length > 0) and.push({ not_rule: { or_rules: { rules: not } } });
  }
  if (and.length === 0) and.push({ any: true });
  return { and_rules: { rules: and } };
}

function principalsOf(list: readonly RuleItem[], forTcp: boolean, action: RbacAction): RbacPrincipal {
  const and: RbacPrincipal[] = [];
  for (const r of list) {
    const gen = r.g.principal;
    if (!gen) throw new Unusable(`${r.key} is not a principal`);
    const or = r.values.map((v) => tolerate(action, () => gen(r.key, v, forTcp))).filter((p): p is RbacPrincipal => p !== undefined);
    if (or.length > 0) and.push({ or_ids: { ids: or } });
    const not = r.notValues.map((v) => tolerate(action, () => gen(r.key, v, forTcp))).filter((p): p is RbacPrincipal => p !== undefined);
    if (not.length > 0) and.push({ not_id: { or_ids: { ids: not } } });
  }
  if (and.length === 0) and.push({ any: true });
  return { and_ids: { ids: and } };
}

/** One rule as an RBAC policy; throws Unusable when Istio would skip the rule. */
export function rulePolicy(rule: Rule, policyNamespace: string, forTcp: boolean, action: RbacAction, trustDomain = 'cluster.local'): RbacPolicy {
  const m = newModel(rule, policyNamespace, trustDomain);
  return {
    permissions: m.permissions.map((l) => permissionsOf(l, forTcp, action)),
    principals: m.principals.map((l) => principalsOf(l, forTcp, action)),
  };
}

const matchNever: RbacPolicy = {
  permissions: [{ not_rule: { any: true } }],
  principals: [{ not_id: { any: true } }],
};

export function policyName(namespace: string, name: string, rule: number, custom = false): string {
  return `${custom ? `${extAuthzPrefix}-` : ''}ns[${namespace}]-policy[${name}]-rule[${rule}]`;
}

function isDryRun(p: Config<AuthorizationPolicySpec>): boolean {
  const v = p.metadata.annotations?.[dryRunAnnotation];
  return v !== undefined && /^(1|t|true)$/i.test(v.trim());
}

interface Built {
  rules: RbacRules | undefined;
  shadow: RbacRules | undefined;
}

/** Istio's Builder.build for one action: enforced rules, and dry-run ones as shadow rules. */
function build(policies: readonly Config<AuthorizationPolicySpec>[], action: RbacAction, forTcp: boolean, trustDomain: string, custom = false): Built | undefined {
  if (policies.length === 0) return undefined;
  let rules: RbacRules | undefined;
  let shadow: RbacRules | undefined;
  for (const p of policies) {
    const dry = isDryRun(p);
    if (dry && custom) continue;
    if (dry) shadow ??= { action, policies: {} };
    else rules ??= { action, policies: {} };
    const out = (dry ? shadow : rules)!.policies!;
    const specRules = p.spec?.rules ?? [];
    specRules.forEach((rule, i) => {
      if (!rule) return;
      try {
        out[policyName(p.metadata.namespace, p.metadata.name, i, custom)] = rulePolicy(rule, p.metadata.namespace, forTcp, action, trustDomain);
      } catch (err) {
        if (!(err instanceof Unusable)) throw err;
        // Skipped, as Istio does: an ALLOW rule that cannot be expressed on this chain allows nothing.
      }
    });
    if (specRules.length === 0) out[policyName(p.metadata.namespace, p.metadata.name, 0, custom)] = matchNever;
  }
  if (custom && rules) {
    const renamed: Record<string, RbacPolicy> = {};
    for (const [k, v] of Object.entries(rules.policies!)) renamed[k + badCustomSuffix] = v;
    rules = { action: 'DENY', policies: renamed };
  }
  return { rules, shadow };
}

const shadowPrefix = (action: RbacAction) => (action === 'ALLOW' ? 'istio_dry_run_allow_' : action === 'DENY' ? 'istio_dry_run_deny_' : '');

function httpFilter(b: Built, action: RbacAction): HttpFilter {
  const config: HttpRbac = {};
  if (b.rules) config.rules = b.rules;
  if (b.shadow) {
    config.shadow_rules = b.shadow;
    config.shadow_rules_stat_prefix = shadowPrefix(action);
  }
  return { name: RbacFilterNames.http, typed_config: encodeAny(TypeUrl.HttpRbac, config) };
}

function networkFilter(b: Built, action: RbacAction): NetworkFilter {
  const config: NetworkRbac = { stat_prefix: tcpStatPrefix };
  if (b.rules) config.rules = b.rules;
  if (b.shadow) {
    config.shadow_rules = b.shadow;
    config.shadow_rules_stat_prefix = shadowPrefix(action);
  }
  return { name: RbacFilterNames.network, typed_config: encodeAny(TypeUrl.NetworkRbac, config) };
}

/** The authorization filters of one workload's chains. */
export interface AuthzFilters {
  /** For inbound (and gateway) HTTP connection managers, before everything else. */
  readonly http: readonly HttpFilter[];
  /** For inbound (and gateway) TCP chains, before tcp_proxy. */
  readonly tcp: readonly NetworkFilter[];
}

/** No policy applies. */
export const noAuthzFilters: AuthzFilters = Object.freeze({ http: [], tcp: [] });
const cache = new WeakMap<PushContext, WeakMap<MeshProxy, AuthzFilters>>();

/** The RBAC filters for a workload's (or gateway's) chains, in Istio's order. */
export function authzFilters(push: PushContext, proxy: MeshProxy): AuthzFilters {
  let perProxy = cache.get(push);
  if (!perProxy) {
    perProxy = new WeakMap();
    cache.set(push, perProxy);
  }
  let out = perProxy.get(proxy);
  if (!out) {
    out = buildAuthzFilters(push.authorization(proxy), push.mesh);
    perProxy.set(proxy, out);
  }
  return out;
}

export function buildAuthzFilters(
  policies: { allow: readonly Config<AuthorizationPolicySpec>[]; deny: readonly Config<AuthorizationPolicySpec>[]; audit: readonly Config<AuthorizationPolicySpec>[]; custom: readonly Config<AuthorizationPolicySpec>[] },
  mesh: Pick<MeshConfig, 'trustDomain'>,
): AuthzFilters {
  if (policies.allow.length + policies.deny.length + policies.audit.length + policies.custom.length === 0) return noAuthzFilters;
  const http: HttpFilter[] = [];
  const tcp: NetworkFilter[] = [];
  const td = mesh.trustDomain;
  const steps: [readonly Config<AuthorizationPolicySpec>[], RbacAction, boolean][] = [
    [policies.custom, 'DENY', true],
    [policies.audit, 'LOG', false],
    [policies.deny, 'DENY', false],
    [policies.allow, 'ALLOW', false],
  ];
  for (const [list, action, custom] of steps) {
    const h = build(list, action, false, td, custom);
    if (h && (h.rules || h.shadow)) http.push(httpFilter(h, action));
    const t = build(list, action, true, td, custom);
    if (t && (t.rules || t.shadow)) tcp.push(networkFilter(t, action));
  }
  return { http, tcp };
}

/**
 * A proxyless gRPC server's RBAC filters (Istio's grpcgen buildRBAC): gRPC knows only DENY and
 * ALLOW (no CUSTOM, no AUDIT) and no shadow rules, so dry-run policies are left out; DENY comes
 * first, and each action has a filter name of its own (gRPC refuses an HTTP filter name twice).
 */
export function grpcAuthzFilters(push: PushContext, proxy: MeshProxy): HttpFilter[] {
  const policies = push.authorization(proxy);
  const out: HttpFilter[] = [];
  const steps: [readonly Config<AuthorizationPolicySpec>[], RbacAction, string][] = [
    [policies.deny, 'DENY', `${RbacFilterNames.http}.DENY`],
    [policies.allow, 'ALLOW', RbacFilterNames.http],
  ];
  for (const [list, action, name] of steps) {
    const rules = build(
      list.filter((p) => !isDryRun(p)),
      action,
      false,
      push.mesh.trustDomain,
    )?.rules;
    if (rules) out.push({ name, typed_config: encodeAny(TypeUrl.HttpRbac, { rules } satisfies HttpRbac) });
  }
  return out;
}
