// HTTPRoute (and GRPCRoute, through the same shape) rules -> Istio VirtualService HTTP rules, one
// per (rule, match), with what Gateway API precedence sorts them by. Istio's conversion.go does
// the same: the existing route translation consumes the result, with `gateway` route semantics
// (route.ts: path-separated prefixes, prefix rewrites as regex, 500 for a missing cluster).
import { kubeServiceHost, parseDuration } from '@weft/mesh';
import type {
  Config,
  HTTPMatchRequest,
  HTTPRedirect,
  HTTPRoute,
  HTTPRouteDestination,
  HTTPRouteSpec,
  K8sHTTPBackendRef,
  K8sHTTPHeaderFilter,
  K8sHTTPRouteFilter,
  K8sHTTPRouteMatch,
  K8sHTTPRouteRule,
  Service,
  StringMatch,
} from '@weft/model';
import type { ReferenceGrants } from './references.ts';
import { Reason } from './status.ts';

/** The host a reference the conversion refuses is routed to: no cluster exists for it, so the route answers 500. */
export const invalidBackendHost = 'invalid-backend.weft.internal';

export interface RuleContext {
  domainSuffix: string;
  /** The service `hostname` defined in `namespace`, if any. */
  service(hostname: string, namespace: string): Service | undefined;
  grants: ReferenceGrants;
}

/** One (rule, match) of a route, converted, with what orders it among every route of a host. */
export interface RouteItem {
  http: HTTPRoute;
  match: K8sHTTPRouteMatch;
  created: number;
  /** `namespace/name` of the route, then the rule and match index: the last tie-breakers. */
  key: string;
  rule: number;
  index: number;
}

export interface RefProblem {
  reason: string;
  message: string;
}

export interface ConvertedRules {
  items: RouteItem[];
  /** The first backend reference that could not be resolved (ResolvedRefs False). */
  refProblem?: RefProblem;
  /** A field the conversion does not implement (Accepted False, UnsupportedValue). */
  unsupported?: string;
}

interface ResolvedBackend {
  host: string;
  port?: number;
  problem?: RefProblem;
}

/** A backendRef (or a mirror's) resolved: a Service in reach, or the invalid host with the reason. */
export function resolveBackend(
  ref: { group?: string; kind?: string; name: string; namespace?: string; port?: number },
  from: { kind: string; namespace: string },
  ctx: RuleContext,
): ResolvedBackend {
  const group = ref.group ?? '';
  const kind = ref.kind ?? 'Service';
  const namespace = ref.namespace ?? from.namespace;
  const invalid = (reason: string, message: string): ResolvedBackend => ({ host: invalidBackendHost, ...(ref.port !== undefined ? { port: ref.port } : {}), problem: { reason, message } });
  if (group !== '' || kind !== 'Service') {
    return invalid(Reason.invalidKind, `backendRef ${ref.name}: kind ${group ? `${group}/` : ''}${kind} is not supported (only Service)`);
  }
  if (!ctx.grants.allows({ fromGroup: 'gateway.networking.k8s.io', fromKind: from.kind, fromNamespace: from.namespace, toGroup: '', toKind: 'Service', toNamespace: namespace, toName: ref.name })) {
    return invalid(Reason.refNotPermitted, `backendRef ${namespace}/${ref.name} is in another namespace and no ReferenceGrant there allows it`);
  }
  const host = kubeServiceHost(ref.name, namespace, ctx.domainSuffix);
  const service = ctx.service(host, namespace);
  if (!service) return invalid(Reason.backendNotFound, `backend Service ${namespace}/${ref.name} not found`);
  if (ref.port === undefined && service.ports.length !== 1) {
    return invalid(Reason.unsupportedValue, `backendRef ${namespace}/${ref.name}: port is required`);
  }
  if (ref.port !== undefined && !service.ports.some((p) => p.port === ref.port)) {
    return invalid(Reason.backendNotFound, `backend Service ${namespace}/${ref.name} has no port ${ref.port}`);
  }
  return { host, ...(ref.port !== undefined ? { port: ref.port } : {}) };
}

function stringMatch(type: string | undefined, value: string): StringMatch {
  return type === 'RegularExpression' ? { regex: value } : { exact: value };
}

/** A Gateway API match as Istio's HTTPMatchRequest (headers first-wins by case-insensitive name). */
export function convertMatch(m: K8sHTTPRouteMatch, port: number | undefined): HTTPMatchRequest {
  const out: HTTPMatchRequest = {};
  const path = m.path ?? { type: 'PathPrefix', value: '/' };
  const value = path.value ?? '/';
  if (path.type === 'Exact') out.uri = { exact: value };
  else if (path.type === 'RegularExpression') out.uri = { regex: value };
  else out.uri = { prefix: value };
  if (m.headers?.length) {
    const headers: Record<string, StringMatch> = {};
    for (const h of m.headers) {
      const name = h.name.toLowerCase();
      if (!(name in headers)) headers[name] = stringMatch(h.type, h.value);
    }
    out.headers = headers;
  }
  if (m.queryParams?.length) {
    const params: Record<string, StringMatch> = {};
    for (const q of m.queryParams) if (!(q.name in params)) params[q.name] = stringMatch(q.type, q.value);
    out.queryParams = params;
  }
  if (m.method) out.method = { exact: m.method };
  if (port !== undefined) out.port = port;
  return out;
}

function headerOps(f: K8sHTTPHeaderFilter): { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] } {
  const out: { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] } = {};
  if (f.set?.length) out.set = Object.fromEntries(f.set.map((h) => [h.name, h.value]));
  if (f.add?.length) out.add = Object.fromEntries(f.add.map((h) => [h.name, h.value]));
  if (f.remove?.length) out.remove = [...f.remove];
  return out;
}

/** Go-style Gateway API durations (`1h30m`, `500ms`) as the `<seconds>s` a VirtualService takes. */
function seconds(d: string | undefined): string | undefined {
  if (d === undefined) return undefined;
  const s = parseDuration(d);
  return s === undefined ? undefined : `${s}s`;
}

interface FilterResult {
  http: Partial<HTTPRoute>;
  refProblem?: RefProblem;
  unsupported?: string;
}

/** The rule's filters, onto the Istio rule (the order of filters does not matter for these kinds). */
function applyFilters(filters: readonly K8sHTTPRouteFilter[], from: { kind: string; namespace: string }, ctx: RuleContext): FilterResult {
  const http: Partial<HTTPRoute> = {};
  let refProblem: RefProblem | undefined;
  let unsupported: string | undefined;
  for (const f of filters) {
    switch (f.type) {
      case 'RequestHeaderModifier':
        if (f.requestHeaderModifier) http.headers = { ...http.headers, request: headerOps(f.requestHeaderModifier) };
        break;
      case 'ResponseHeaderModifier':
        if (f.responseHeaderModifier) http.headers = { ...http.headers, response: headerOps(f.responseHeaderModifier) };
        break;
      case 'RequestRedirect': {
        const r = f.requestRedirect ?? {};
        const redirect: HTTPRedirect = { redirectCode: r.statusCode ?? 302 };
        if (r.scheme) redirect.scheme = r.scheme;
        if (r.hostname) redirect.authority = r.hostname;
        // Without port or scheme the spec keeps the listener's port; with a scheme, its well-known port.
        if (r.port) redirect.port = r.port;
        else if (!r.scheme) redirect.derivePort = 'FROM_REQUEST_PORT';
        if (r.path?.type === 'ReplaceFullPath') redirect.uri = r.path.replaceFullPath ?? '/';
        else if (r.path?.type === 'ReplacePrefixMatch') redirect.prefixRewrite = r.path.replacePrefixMatch ?? '/';
        http.redirect = redirect;
        break;
      }
      case 'URLRewrite': {
        const r = f.urlRewrite ?? {};
        const rewrite: NonNullable<HTTPRoute['rewrite']> = {};
        if (r.hostname) rewrite.authority = r.hostname;
        if (r.path?.type === 'ReplaceFullPath') rewrite.uriRegexRewrite = { match: '^/.*$', rewrite: r.path.replaceFullPath ?? '/' };
        else if (r.path?.type === 'ReplacePrefixMatch') rewrite.uri = r.path.replacePrefixMatch ?? '/';
        http.rewrite = rewrite;
        break;
      }
      case 'RequestMirror': {
        const m = f.requestMirror;
        if (!m) break;
        const b = resolveBackend(m.backendRef, from, ctx);
        if (b.problem) {
          refProblem ??= b.problem;
          break;
        }
        const percent = m.fraction ? (100 * m.fraction.numerator) / (m.fraction.denominator ?? 100) : (m.percent ?? 100);
        const mirrors = http.mirrors ?? [];
        mirrors.push({ destination: { host: b.host, ...(b.port ? { port: { number: b.port } } : {}) }, percentage: { value: percent } });
        http.mirrors = mirrors;
        break;
      }
      default:
        unsupported ??= `filter ${f.type} is not supported`;
    }
  }
  return { http, ...(refProblem ? { refProblem } : {}), ...(unsupported ? { unsupported } : {}) };
}

function destinations(refs: readonly K8sHTTPBackendRef[], from: { kind: string; namespace: string }, ctx: RuleContext): { route: HTTPRouteDestination[]; refProblem?: RefProblem; unsupported?: string } {
  let refProblem: RefProblem | undefined;
  let unsupported: string | undefined;
  const route: HTTPRouteDestination[] = [];
  for (const ref of refs) {
    const b = resolveBackend(ref, from, ctx);
    if (b.problem) refProblem ??= b.problem;
    const d: HTTPRouteDestination = { destination: { host: b.host, ...(b.port ? { port: { number: b.port } } : {}) }, weight: ref.weight ?? 1 };
    for (const f of ref.filters ?? []) {
      if (f.type === 'RequestHeaderModifier' && f.requestHeaderModifier) d.headers = { ...d.headers, request: headerOps(f.requestHeaderModifier) };
      else if (f.type === 'ResponseHeaderModifier' && f.responseHeaderModifier) d.headers = { ...d.headers, response: headerOps(f.responseHeaderModifier) };
      else unsupported ??= `backendRef filter ${f.type} is not supported`;
    }
    route.push(d);
  }
  return { route, ...(refProblem ? { refProblem } : {}), ...(unsupported ? { unsupported } : {}) };
}

/** One rule without its matches: filters, destinations (500 when none can take traffic), timeouts. */
function convertRule(rule: K8sHTTPRouteRule, from: { kind: string; namespace: string }, ctx: RuleContext): FilterResult {
  const filtered = applyFilters(rule.filters ?? [], from, ctx);
  const http = filtered.http;
  let refProblem = filtered.refProblem;
  let unsupported = filtered.unsupported;
  if (!http.redirect) {
    const d = destinations(rule.backendRefs ?? [], from, ctx);
    refProblem ??= d.refProblem;
    unsupported ??= d.unsupported;
    const weighted = d.route.filter((x) => (x.weight ?? 0) > 0);
    // The spec: no backend that can take traffic (none, or all weight 0) is a 500.
    if (weighted.length === 0) http.directResponse = { status: 500 };
    else http.route = weighted.length === 1 ? [{ ...weighted[0]!, weight: 100 }] : weighted;
  }
  const request = seconds(rule.timeouts?.request);
  const backend = seconds(rule.timeouts?.backendRequest);
  if (request !== undefined) http.timeout = request;
  else if (backend !== undefined) http.timeout = backend;
  if (rule.retry) {
    const codes = (rule.retry.codes ?? []).join(',');
    http.retries = {
      attempts: rule.retry.attempts ?? 0,
      ...(codes ? { retryOn: codes } : {}),
      ...(rule.retry.backoff ? { backoff: seconds(rule.retry.backoff)! } : {}),
      ...(backend !== undefined && request !== undefined ? { perTryTimeout: backend } : {}),
    };
  } else if (backend !== undefined && request !== undefined) {
    http.retries = { attempts: 2, perTryTimeout: backend };
  }
  return { http, ...(refProblem ? { refProblem } : {}), ...(unsupported ? { unsupported } : {}) };
}

/** Every (rule, match) of an HTTPRoute as an Istio rule; `port` restricts matches (a Service parentRef's port). */
export function convertHttpRules(route: Config<HTTPRouteSpec>, ctx: RuleContext, port?: number, kind = 'HTTPRoute'): ConvertedRules {
  const from = { kind, namespace: route.metadata.namespace };
  const created = Date.parse(route.metadata.creationTimestamp ?? '') || 0;
  const key = `${route.metadata.namespace}/${route.metadata.name}`;
  const items: RouteItem[] = [];
  let refProblem: RefProblem | undefined;
  let unsupported: string | undefined;
  (route.spec.rules ?? [{}]).forEach((rule, ruleIndex) => {
    const converted = convertRule(rule, from, ctx);
    refProblem ??= converted.refProblem;
    unsupported ??= converted.unsupported;
    const matches = rule.matches?.length ? rule.matches : [{}];
    matches.forEach((m, index) => {
      const http: HTTPRoute = { name: `${route.metadata.namespace}.${route.metadata.name}.${ruleIndex}.${index}`, match: [convertMatch(m, port)], ...converted.http };
      items.push({ http, match: m, created, key, rule: ruleIndex, index });
    });
  });
  return { items, ...(refProblem ? { refProblem } : {}), ...(unsupported ? { unsupported } : {}) };
}

function pathRank(m: K8sHTTPRouteMatch): [number, number] {
  const type = m.path?.type ?? 'PathPrefix';
  const len = (m.path?.value ?? '/').replace(/(.)\/+$/, '$1').length;
  if (type === 'Exact') return [0, -len];
  if (type === 'RegularExpression') return [1, -len];
  return [2, -len];
}

/**
 * The Gateway API's precedence among matches of every route of one host: exact path, the longest
 * prefix, a method, the most header matches, the most query matches, then the oldest route, then
 * `namespace/name`, then the order inside the route.
 */
export function comparePrecedence(a: RouteItem, b: RouteItem): number {
  const [ta, la] = pathRank(a.match);
  const [tb, lb] = pathRank(b.match);
  if (ta !== tb) return ta - tb;
  if (la !== lb) return la - lb;
  const ma = a.match.method ? 0 : 1;
  const mb = b.match.method ? 0 : 1;
  if (ma !== mb) return ma - mb;
  const ha = a.match.headers?.length ?? 0;
  const hb = b.match.headers?.length ?? 0;
  if (ha !== hb) return hb - ha;
  const qa = a.match.queryParams?.length ?? 0;
  const qb = b.match.queryParams?.length ?? 0;
  if (qa !== qb) return qb - qa;
  if (a.created !== b.created) return a.created - b.created;
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  if (a.rule !== b.rule) return a.rule - b.rule;
  return a.index - b.index;
}
