// VirtualService HTTP rules -> Envoy routes, following Istio's route/route.go. Shared by sidecar
// RDS, gateway RDS and proxyless gRPC (which gets the subset gRPC accepts).
import { outboundClusterKey, parseClusterKey, protoDurationOf, resolveHost } from '@weft/mesh';
import type {
  Config,
  Destination,
  HTTPMatchRequest,
  HTTPRoute,
  HTTPRouteDestination,
  Service,
  VirtualServiceSpec,
} from '@weft/model';
import { type Any, encodeAny, type Route, TypeUrl } from '@weft/xds';
import type { Proxy as MeshProxy, PushContext } from '../core/types.ts';
import {
  configMetadata,
  fractionalPercent,
  integerPercent,
  labelsMatch,
  zeroDuration,
} from './envoy.ts';
import { labelsKey } from '../registry/labels.ts';
import { gatewayMatch, hasGatewaySemantics, prefixReplacement } from './gateway-semantics.ts';
import { Filters } from './names.ts';
import {
  type ClusterWeight,
  consistentHashFor,
  corsPolicy,
  defaultRetryPolicy,
  faultConfig,
  type HashPolicy,
  hashPolicy,
  headerOperations,
  isCatchAll,
  type MirrorPolicy,
  mirrorPercent,
  mirrorPolicy,
  type RouteAction,
  retryPolicy,
  routeMatch,
} from './route-parts.ts';

export { isCatchAll } from './route-parts.ts';


export interface RouteContext {
  push: PushContext;
  proxy: MeshProxy;
  /** The port the listener (and so the route configuration) serves. */
  listenPort: number;
  /** `mesh` for sidecars; `namespace/name` of the Gateways for routers. */
  gatewayNames: ReadonlySet<string>;
  /** Proxyless gRPC gets what gRPC accepts: no CORS, redirects or direct responses, stream-duration timeouts. */
  grpc?: boolean;
  /** Route is served on a TLS listener (redirect scheme default). */
  tls?: boolean;
}

/** The FQDN a destination names, resolved in the namespace of the config that wrote it. */
export function destinationHost(host: string, namespace: string, ctx: Pick<RouteContext, 'push'>): string {
  return resolveHost(host, namespace, ctx.push.mesh.domainSuffix);
}

/** Istio's GetDestinationCluster: explicit port, else the service's only port, else the listener port. */
export function destinationCluster(dest: Destination, namespace: string, ctx: RouteContext): string {
  const host = destinationHost(dest.host, namespace, ctx);
  const service = ctx.push.service(host, ctx.proxy.namespace);
  let port = ctx.listenPort;
  if (dest.port?.number) port = dest.port.number;
  else if (service && service.ports.length === 1) port = service.ports[0]!.port;
  return outboundClusterKey(host, port, dest.subset ?? '');
}


function sourceMatches(match: HTTPMatchRequest | undefined, vsNamespace: string, ctx: RouteContext): boolean {
  if (!match) return true;
  if (match.gateways?.length) return match.gateways.some((g) => ctx.gatewayNames.has(qualifyGateway(g, vsNamespace)));
  if (!labelsMatch(match.sourceLabels, ctx.proxy.labels)) return false;
  return !match.sourceNamespace || match.sourceNamespace === ctx.proxy.namespace;
}

/** `bookinfo-gateway` written in `default` is `default/bookinfo-gateway`; `mesh` stays `mesh`. */
export function qualifyGateway(name: string, namespace: string): string {
  if (name === 'mesh' || name.includes('/')) return name;
  return `${namespace}/${name}`;
}

/** Istio's GetRouteOperation: `host:port/path*` or `vsName:port/path*`. */
function routeOperation(route: Route, vsName: string, port: number): string {
  const m = route.match;
  let path = '/*';
  if (m?.prefix !== undefined) path = `${m.prefix}*`;
  else if (m?.path !== undefined) path = m.path;
  else if (m?.safe_regex) path = m.safe_regex.regex ?? '';
  const parsed = route.route?.cluster ? parseClusterKey(route.route.cluster) : undefined;
  if (parsed) return `${parsed.hostname}:${parsed.port}${path}`;
  return `${vsName}:${port}${path}`;
}

function setTimeout(action: RouteAction, timeout: string | undefined, ctx: RouteContext): void {
  const d = protoDurationOf(timeout) ?? zeroDuration;
  action.timeout = d;
  if (ctx.grpc) action.max_stream_duration = { max_stream_duration: d };
  else action.max_grpc_timeout = d;
}

function translateDestinations(
  out: Route,
  action: RouteAction,
  http: HTTPRoute,
  vsNamespace: string,
  authority: string,
  ctx: RouteContext,
): boolean {
  let consistentHash = false;
  const destinations = http.route ?? [];
  const hashFor = (dst: HTTPRouteDestination) => {
    const host = destinationHost(dst.destination.host, vsNamespace, ctx);
    return hashPolicy(consistentHashFor(host, dst.destination.subset, dst.destination.port?.number, ctx));
  };
  const weighted = destinations.filter((d) => (d.weight ?? 0) > 0);
  if (destinations.length === 1 || weighted.length === 0) {
    const dst = destinations[0];
    if (!dst) return false;
    action.cluster = destinationCluster(dst.destination, vsNamespace, ctx);
    if (dst.headers) {
      const ops = headerOperations(dst.headers);
      out.request_headers_to_add = [...(out.request_headers_to_add ?? []), ...ops.requestAdd];
      out.request_headers_to_remove = [...(out.request_headers_to_remove ?? []), ...ops.requestRemove];
      out.response_headers_to_add = [...(out.response_headers_to_add ?? []), ...ops.responseAdd];
      out.response_headers_to_remove = [...(out.response_headers_to_remove ?? []), ...ops.responseRemove];
      if (ops.authority && !authority) action.host_rewrite_literal = ops.authority;
    }
    const hp = hashFor(dst);
    if (hp) {
      action.hash_policy = [hp];
      consistentHash = true;
    }
  } else {
    const clusters: ClusterWeight[] = [];
    const hashes: HashPolicy[] = [];
    for (const dst of weighted) {
      const cw: ClusterWeight = { name: destinationCluster(dst.destination, vsNamespace, ctx), weight: { value: dst.weight ?? 0 } };
      if (dst.headers) {
        const ops = headerOperations(dst.headers);
        cw.request_headers_to_add = ops.requestAdd;
        cw.request_headers_to_remove = ops.requestRemove;
        cw.response_headers_to_add = ops.responseAdd;
        cw.response_headers_to_remove = ops.responseRemove;
        if (ops.authority) cw.host_rewrite_literal = ops.authority;
      }
      clusters.push(cw);
      const hp = hashFor(dst);
      if (hp) hashes.push(hp);
    }
    action.weighted_clusters = { clusters };
    if (hashes.length > 0) action.hash_policy = hashes;
  }
  return consistentHash;
}

/** Istio's translateRoute for one (rule, match) pair; undefined when the match does not apply to this proxy/port. */
export function translateRoute(
  http: HTTPRoute,
  match: HTTPMatchRequest | undefined,
  vs: Config<VirtualServiceSpec>,
  ctx: RouteContext,
): Route | undefined {
  if (match?.port && match.port !== ctx.listenPort) return undefined;
  if (!sourceMatches(match, vs.metadata.namespace, ctx)) return undefined;
  const name = match?.name ? `${http.name ?? ''}.${match.name}` : (http.name ?? '');
  const gatewaySemantics = hasGatewaySemantics(vs);
  const envoyMatch = gatewaySemantics ? gatewayMatch(routeMatch(match)) : routeMatch(match);
  const out: Route = { ...(name ? { name } : {}), match: envoyMatch, metadata: configMetadata('VirtualService', vs.metadata.namespace, vs.metadata.name) };
  if (match?.statPrefix) out.stat_prefix = match.statPrefix;
  let authority = '';
  if (http.headers) {
    const ops = headerOperations(http.headers);
    out.request_headers_to_add = ops.requestAdd;
    out.request_headers_to_remove = ops.requestRemove;
    out.response_headers_to_add = ops.responseAdd;
    out.response_headers_to_remove = ops.responseRemove;
    authority = ops.authority;
  }
  if (http.redirect) {
    if (ctx.grpc) return undefined;
    const r = http.redirect;
    const redirect: NonNullable<Route['redirect']> = {};
    if (r.authority) redirect.host_redirect = r.authority;
    if (r.uri) redirect.path_redirect = r.uri;
    else if (r.prefixRewrite !== undefined) {
      const rx = gatewaySemantics ? prefixReplacement(envoyMatch, r.prefixRewrite) : undefined;
      if (rx) redirect.regex_rewrite = rx;
      else redirect.prefix_rewrite = r.prefixRewrite;
    }
    if (r.scheme) redirect.scheme_redirect = r.scheme;
    let port: number | undefined;
    if (r.port) port = r.port;
    else if (r.derivePort === 'FROM_REQUEST_PORT') port = ctx.listenPort;
    if (port !== undefined) {
      const scheme = r.scheme || (ctx.tls ? 'https' : 'http');
      if (!((port === 80 && scheme === 'http') || (port === 443 && scheme === 'https'))) redirect.port_redirect = port;
    }
    const codes: Record<number, NonNullable<typeof redirect.response_code>> = {
      301: 'MOVED_PERMANENTLY',
      302: 'FOUND',
      303: 'SEE_OTHER',
      307: 'TEMPORARY_REDIRECT',
      308: 'PERMANENT_REDIRECT',
    };
    const code = codes[r.redirectCode ?? 301];
    if (!code) return undefined;
    redirect.response_code = code;
    out.redirect = redirect;
  } else if (http.directResponse) {
    if (ctx.grpc) return undefined;
    const body = http.directResponse.body;
    out.direct_response = {
      status: http.directResponse.status,
      ...(body?.string !== undefined ? { body: { inline_string: body.string } } : body?.bytes !== undefined ? { body: { inline_bytes: Buffer.from(body.bytes, 'base64') } } : {}),
    };
  } else {
    const action: RouteAction = {};
    setTimeout(action, http.timeout, ctx);
    if (http.rewrite) {
      const rx = http.rewrite.uriRegexRewrite;
      if (rx?.match !== undefined) action.regex_rewrite = { pattern: { regex: rx.match }, substitution: rx.rewrite ?? '' };
      else if (http.rewrite.uri) {
        const prefixRx = gatewaySemantics ? prefixReplacement(envoyMatch, http.rewrite.uri) : undefined;
        if (prefixRx) action.regex_rewrite = prefixRx;
        else action.prefix_rewrite = http.rewrite.uri;
      }
      if (http.rewrite.authority) authority = http.rewrite.authority;
    }
    if (authority) action.host_rewrite_literal = authority;
    const mirrors: MirrorPolicy[] = [];
    if (http.mirror) {
      const mp = mirrorPercent(http);
      if (mp) mirrors.push(mirrorPolicy(destinationCluster(http.mirror, vs.metadata.namespace, ctx), mp));
    }
    for (const m of http.mirrors ?? []) {
      const mp = m.percentage ? ((m.percentage.value ?? 0) > 0 ? fractionalPercent(m.percentage.value ?? 0) : undefined) : integerPercent(100);
      if (mp) mirrors.push(mirrorPolicy(destinationCluster(m.destination, vs.metadata.namespace, ctx), mp));
    }
    if (mirrors.length > 0) action.request_mirror_policies = mirrors;
    const consistentHash = translateDestinations(out, action, http, vs.metadata.namespace, authority, ctx);
    if (!action.cluster && !action.weighted_clusters) return undefined;
    // The Gateway API: a backend that cannot be resolved answers 500.
    if (gatewaySemantics) action.cluster_not_found_response_code = 'INTERNAL_SERVER_ERROR';
    const retry = retryPolicy(http.retries, consistentHash);
    if (retry) action.retry_policy = retry;
    out.route = action;
  }
  if (!ctx.grpc) out.decorator = { operation: routeOperation(out, vs.metadata.name, ctx.listenPort) };
  const perFilter: Record<string, Any> = {};
  if (http.fault) {
    const fault = faultConfig(http.fault);
    if (fault) perFilter[Filters.fault] = encodeAny(TypeUrl.HttpFault, fault);
  }
  if (http.corsPolicy && !ctx.grpc) perFilter[Filters.cors] = encodeAny(TypeUrl.CorsPolicy, corsPolicy(http.corsPolicy));
  if (Object.keys(perFilter).length > 0) out.typed_per_filter_config = perFilter;
  return out;
}

/**
 * Merges a delegate's rule under its root rule (Istio's mergeHTTPRoute): the root's match
 * conditions are combined with the delegate's, and unset delegate fields take the root's.
 */
function mergeDelegateRoute(root: HTTPRoute, delegate: HTTPRoute): HTTPRoute {
  const rootMatches = root.match ?? [];
  const delegateMatches = delegate.match ?? [];
  let match: HTTPMatchRequest[] | undefined;
  if (rootMatches.length === 0) match = delegate.match;
  else if (delegateMatches.length === 0) match = root.match;
  else {
    match = [];
    for (const r of rootMatches) {
      for (const d of delegateMatches) {
        match.push({
          ...r,
          ...d,
          headers: { ...r.headers, ...d.headers },
          queryParams: { ...r.queryParams, ...d.queryParams },
          withoutHeaders: { ...r.withoutHeaders, ...d.withoutHeaders },
          sourceLabels: { ...r.sourceLabels, ...d.sourceLabels },
          uri: d.uri ?? r.uri,
        });
      }
    }
  }
  const merged: HTTPRoute = { ...delegate, ...(match ? { match } : {}) };
  merged.name = delegate.name ? (root.name ? `${root.name}-${delegate.name}` : delegate.name) : root.name;
  for (const key of ['rewrite', 'timeout', 'retries', 'fault', 'mirror', 'mirrors', 'mirrorPercentage', 'corsPolicy', 'headers'] as const) {
    if (merged[key] === undefined && root[key] !== undefined) (merged as Record<string, unknown>)[key] = root[key];
  }
  return merged;
}

interface RuleWithOrigin {
  http: HTTPRoute;
  vs: Config<VirtualServiceSpec>;
}

/** The VirtualService's HTTP rules with delegates expanded (each rule keeps the config it came from). */
function expandDelegates(vs: Config<VirtualServiceSpec>, push: PushContext): RuleWithOrigin[] {
  const out: RuleWithOrigin[] = [];
  for (const http of vs.spec.http ?? []) {
    if (http.delegate?.name) {
      const delegate = push.delegate(http.delegate.namespace ?? vs.metadata.namespace, http.delegate.name);
      for (const d of delegate?.spec.http ?? []) out.push({ http: mergeDelegateRoute(http, d), vs: delegate! });
      continue;
    }
    out.push({ http, vs });
  }
  return out;
}

/**
 * Routes already translated, per push context and VirtualService, under a key of everything else
 * they depend on (routesKey). Proxies that differ only in what routes do not read (most sidecars
 * of a namespace) share them: with thousands of VirtualServices, translating them again for
 * every proxy was most of a push's time.
 */
const routeCache = new WeakMap<PushContext, WeakMap<Config<VirtualServiceSpec>, Map<string, Route[]>>>();

/** What of a VirtualService's expanded rules the key reads: destination hosts, and whether any match has sourceLabels. */
interface RuleInputs {
  hosts: string[];
  sourceLabels: boolean;
}
const ruleInputs = new WeakMap<PushContext, WeakMap<Config<VirtualServiceSpec>, RuleInputs>>();
/** Per push context and proxy: destination host -> the DestinationRule in force (`ns/name`, or ''). */
const ruleCache = new WeakMap<PushContext, WeakMap<MeshProxy, Map<string, string>>>();

function inner<K extends object, V>(outer: WeakMap<PushContext, WeakMap<K, V>>, push: PushContext): WeakMap<K, V> {
  let m = outer.get(push);
  if (!m) {
    m = new WeakMap();
    outer.set(push, m);
  }
  return m;
}

/**
 * What translateRoute reads besides the rules: the listener (port, gateways, gRPC, TLS), the
 * proxy's namespace (service visibility, sourceNamespace), its labels when a match has
 * sourceLabels, and the DestinationRule it gets for each destination (consistent hashing).
 */
function routesKey(vs: Config<VirtualServiceSpec>, rules: readonly RuleWithOrigin[], ctx: RouteContext): string {
  const byVs = inner(ruleInputs, ctx.push);
  let inputs = byVs.get(vs);
  if (!inputs) {
    inputs = { hosts: [], sourceLabels: false };
    for (const { http, vs: origin } of rules) {
      for (const m of http.match ?? []) if (m.sourceLabels && Object.keys(m.sourceLabels).length > 0) inputs.sourceLabels = true;
      for (const d of http.route ?? []) if (d.destination?.host) inputs.hosts.push(destinationHost(d.destination.host, origin.metadata.namespace, ctx));
    }
    byVs.set(vs, inputs);
  }
  const byProxy = inner(ruleCache, ctx.push);
  let rulesFor = byProxy.get(ctx.proxy);
  if (!rulesFor) {
    rulesFor = new Map();
    byProxy.set(ctx.proxy, rulesFor);
  }
  let key = `${ctx.listenPort}|${ctx.grpc ? 1 : 0}|${ctx.tls ? 1 : 0}|${ctx.gatewayNames.size === 1 ? ctx.gatewayNames.values().next().value : [...ctx.gatewayNames].sort().join(',')}|${ctx.proxy.namespace}|${inputs.sourceLabels ? labelsKey(ctx.proxy.labels) : '*'}|`;
  for (const host of inputs.hosts) {
    let id = rulesFor.get(host);
    if (id === undefined) {
      const dr = ctx.push.destinationRule(ctx.proxy, host);
      id = dr ? `${dr.metadata.namespace}/${dr.metadata.name}` : '';
      rulesFor.set(host, id);
    }
    key += `${id},`;
  }
  return key;
}

/** Istio's BuildHTTPRoutesForVirtualService: routes in order, stopping after the first catch-all. */
export function routesForVirtualService(vs: Config<VirtualServiceSpec>, ctx: RouteContext): Route[] {
  const rules = expandDelegates(vs, ctx.push);
  const byVs = inner(routeCache, ctx.push);
  let cached = byVs.get(vs);
  if (!cached) {
    cached = new Map();
    byVs.set(vs, cached);
  }
  const key = routesKey(vs, rules, ctx);
  let out = cached.get(key);
  if (!out) {
    out = translateRules(rules, ctx);
    cached.set(key, out);
  }
  return out;
}

function translateRules(rules: readonly RuleWithOrigin[], ctx: RouteContext): Route[] {
  const out: Route[] = [];
  for (const { http, vs: origin } of rules) {
    let catchAll = false;
    if (!http.match?.length) {
      const r = translateRoute(http, undefined, origin, ctx);
      if (r) out.push(r);
      catchAll = true;
    } else {
      for (const m of http.match) {
        const r = translateRoute(http, m, origin, ctx);
        if (!r) continue;
        out.push(r);
        if (isCatchAll(r.match)) {
          catchAll = true;
          break;
        }
      }
    }
    if (catchAll) break;
  }
  return out;
}

/** Istio's BuildDefaultHTTPOutboundRoute: everything to one cluster, default retries, no timeout. */
export function defaultOutboundRoute(service: Service, port: number, ctx: RouteContext): Route {
  const cluster = outboundClusterKey(service.hostname, port);
  const action: RouteAction = { cluster };
  setTimeout(action, undefined, ctx);
  const hp = hashPolicy(consistentHashFor(service.hostname, undefined, port, ctx));
  if (hp) action.hash_policy = [hp];
  action.retry_policy = defaultRetryPolicy(false);
  const route: Route = { name: 'default', match: { prefix: '/' }, route: action };
  if (!ctx.grpc) route.decorator = { operation: `${service.hostname}:${port}/*` };
  return route;
}

/** Inbound: everything to the local application, never timing out (the caller's sidecar enforces timeouts). */
export function defaultInboundRoute(cluster: string, operation: string): Route {
  return {
    name: 'default',
    match: { prefix: '/' },
    route: {
      cluster,
      timeout: zeroDuration,
      max_stream_duration: { max_stream_duration: zeroDuration, grpc_timeout_header_max: zeroDuration },
    },
    decorator: { operation },
  };
}

