// RouteConfiguration -> CompiledRoutes, once per snapshot: virtual hosts indexed by domain
// (Envoy's exact / `*suffix` / `prefix*` / `*` rules), each route's match as a predicate, and its
// action with every policy pre-decoded, so a request only runs predicates and reads fields.
import { protoDurationMs } from '@weft/mesh';
import type { RouteConfiguration__Output } from '@weft/xds';
import { headerCluster, type RouteAction, singleCluster, type WeightedCluster, weightedClusters } from '../core/route-action.ts';
import { type CompiledCors, type CompiledFault, CorsFilterName, compileCors, compileFault, compileRouteCors, FaultFilterName } from './filters.ts';
import { compileHeaderMutation, type HeaderMutation } from './headers.ts';
import { compileMatch, compileRegexRewrite, type RegexRewrite, RouteConfigError } from './matchers.ts';
import {
  type CompiledHashPolicy,
  type CompiledMirror,
  type CompiledRetry,
  compileHashPolicy,
  compileMirrors,
  compileRetryPolicy,
  portStart,
} from './policies.ts';
import type { RequestView } from './view.ts';

type VirtualHostConfig = RouteConfiguration__Output['virtual_hosts'][number];
type RouteConfig = VirtualHostConfig['routes'][number];
type RouteActionConfig = NonNullable<RouteConfig['route']>;
type RedirectConfig = NonNullable<RouteConfig['redirect']>;
type ClusterWeightConfig = NonNullable<RouteActionConfig['weighted_clusters']>['clusters'][number];

/** Envoy's default route timeout when `timeout` is unset. */
export const defaultRouteTimeoutMs = 15_000;

export interface CompiledWeightedCluster extends WeightedCluster {
  readonly requestHeaders: HeaderMutation | undefined;
  readonly responseHeaders: HeaderMutation | undefined;
  readonly hostRewrite: string | undefined;
  readonly fault: CompiledFault | undefined;
  readonly cors: CompiledCors | undefined;
}

/** An HTTP route's action: which cluster (core/route-action.ts, shared with tcp_proxy), then how to send to it. */
export interface CompiledRouteAction extends RouteAction<CompiledWeightedCluster> {
  readonly clusterNotFoundStatus: number;
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: RegexRewrite | undefined;
  readonly hostRewriteLiteral: string | undefined;
  readonly autoHostRewrite: boolean;
  readonly hostRewriteHeader: string | undefined;
  readonly hostRewritePathRegex: RegexRewrite | undefined;
  /** Route timeout; 0 disables it. */
  readonly timeoutMs: number;
  /** Cap of a gRPC client's `grpc-timeout` (0: no cap); undefined ignores `grpc-timeout`. */
  readonly grpcTimeoutMaxMs: number | undefined;
  readonly grpcTimeoutOffsetMs: number;
  /** `max_stream_duration`: the whole exchange, response body included; undefined for none. */
  readonly maxStreamDurationMs: number | undefined;
  readonly retry: CompiledRetry | undefined;
  readonly hash: CompiledHashPolicy | undefined;
  readonly mirrors: readonly CompiledMirror[];
}

export interface CompiledRedirect {
  readonly scheme: string | undefined;
  readonly httpsRedirect: boolean;
  readonly host: string;
  /** `:8080`, or empty. */
  readonly port: string;
  readonly pathRedirect: string | undefined;
  readonly pathRedirectHasQuery: boolean;
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: RegexRewrite | undefined;
  readonly stripQuery: boolean;
  readonly status: number;
}

export interface CompiledVirtualHost {
  readonly name: string;
  readonly routes: readonly CompiledRoute[];
  readonly requireTls: 'NONE' | 'EXTERNAL_ONLY' | 'ALL';
  readonly includeRequestAttemptCount: boolean;
  readonly includeAttemptCountInResponse: boolean;
}

export interface CompiledRoute {
  readonly name: string;
  readonly virtualHost: CompiledVirtualHost;
  /** How long the path matcher's match is (for `prefix_rewrite`): the prefix, or the whole path. */
  readonly matchKind: 'prefix' | 'path' | 'safe_regex' | 'path_separated_prefix';
  readonly matchPrefix: string;
  readonly action: CompiledRouteAction | undefined;
  readonly redirect: CompiledRedirect | undefined;
  readonly directResponse: { readonly status: number; readonly body: Buffer | undefined } | undefined;
  /** Mutations in Envoy's evaluation order (route, virtual host, route configuration by default). */
  readonly requestHeaders: readonly HeaderMutation[];
  readonly responseHeaders: readonly HeaderMutation[];
  readonly fault: CompiledFault | undefined;
  readonly cors: CompiledCors | undefined;
  /** `decorator.operation`: the span name tracing will use. */
  readonly operation: string | undefined;
  /** The `istio` filter metadata's `config` (which VirtualService wrote this route), for debugging. */
  readonly config: string | undefined;
  matches(view: RequestView, random: () => number): boolean;
}

export interface CompileOptions {
  /** HTTP filters present in the connection manager; per-route configs of absent filters are ignored. Default: both. */
  faultFilter?: boolean;
  corsFilter?: boolean;
}

interface Wildcard {
  len: number;
  map: Map<string, CompiledVirtualHost>;
}

/** A compiled route configuration: immutable, shared by every request of a snapshot. */
export class CompiledRoutes {
  readonly name: string;
  readonly virtualHosts: readonly CompiledVirtualHost[];
  readonly ignorePortInHostMatching: boolean;
  private readonly exact = new Map<string, CompiledVirtualHost>();
  private readonly suffixes: Wildcard[] = [];
  private readonly prefixes: Wildcard[] = [];
  private defaultHost: CompiledVirtualHost | undefined;

  constructor(rc: RouteConfiguration__Output, options: CompileOptions = {}) {
    this.name = rc.name;
    this.ignorePortInHostMatching = rc.ignore_port_in_host_matching;
    const rcLevel = {
      requestHeaders: compileHeaderMutation(rc.request_headers_to_add, rc.request_headers_to_remove),
      responseHeaders: compileHeaderMutation(rc.response_headers_to_add, rc.response_headers_to_remove),
      mirrors: rc.request_mirror_policies,
      perFilter: rc.typed_per_filter_config,
      mostSpecificWins: rc.most_specific_header_mutations_wins,
    };
    const hosts: CompiledVirtualHost[] = [];
    const suffixes = new Map<number, Map<string, CompiledVirtualHost>>();
    const prefixes = new Map<number, Map<string, CompiledVirtualHost>>();
    for (const vh of rc.virtual_hosts) {
      const compiled = compileVirtualHost(vh, rcLevel, options);
      hosts.push(compiled);
      for (const raw of vh.domains) {
        const domain = raw.toLowerCase();
        const dup = () => new RouteConfigError(`route configuration ${rc.name}: domain ${JSON.stringify(raw)} appears in more than one virtual host (${vh.name})`);
        if (domain === '*') {
          if (this.defaultHost) throw dup();
          this.defaultHost = compiled;
        } else if (domain.startsWith('*')) {
          const s = domain.slice(1);
          const m = suffixes.get(s.length) ?? new Map();
          if (m.has(s)) throw dup();
          m.set(s, compiled);
          suffixes.set(s.length, m);
        } else if (domain.endsWith('*')) {
          const p = domain.slice(0, -1);
          const m = prefixes.get(p.length) ?? new Map();
          if (m.has(p)) throw dup();
          m.set(p, compiled);
          prefixes.set(p.length, m);
        } else {
          if (this.exact.has(domain)) throw dup();
          this.exact.set(domain, compiled);
        }
      }
    }
    this.virtualHosts = hosts;
    // Longest wildcard first: `*.bar.foo.com` beats `*.foo.com`.
    for (const [len, map] of [...suffixes].sort((a, b) => b[0] - a[0])) this.suffixes.push({ len, map });
    for (const [len, map] of [...prefixes].sort((a, b) => b[0] - a[0])) this.prefixes.push({ len, map });
  }

  /** Envoy's findVirtualHost: exact domain, then longest `*suffix`, then longest `prefix*`, then `*`. */
  virtualHost(authority: string): CompiledVirtualHost | undefined {
    if (this.exact.size === 0 && this.suffixes.length === 0 && this.prefixes.length === 0) return this.defaultHost;
    let host = authority;
    if (this.ignorePortInHostMatching) {
      const p = portStart(host);
      if (p >= 0) host = host.slice(0, p);
    }
    host = host.toLowerCase();
    const exact = this.exact.get(host);
    if (exact) return exact;
    for (const w of this.suffixes) {
      if (w.len >= host.length) continue;
      const vh = w.map.get(host.slice(host.length - w.len));
      if (vh) return vh;
    }
    for (const w of this.prefixes) {
      if (w.len >= host.length) continue;
      const vh = w.map.get(host.slice(0, w.len));
      if (vh) return vh;
    }
    return this.defaultHost;
  }

  /** The first route of the request's virtual host whose match accepts it. */
  route(view: RequestView, random: () => number = Math.random): { virtualHost: CompiledVirtualHost | undefined; route: CompiledRoute | undefined } {
    const virtualHost = this.virtualHost(view.authority);
    if (!virtualHost) return { virtualHost, route: undefined };
    for (const r of virtualHost.routes) if (r.matches(view, random)) return { virtualHost, route: r };
    return { virtualHost, route: undefined };
  }
}

/** Compiles a decoded RouteConfiguration; throws `RouteConfigError` for what Envoy would reject (NACK it). */
export function compileRouteConfiguration(rc: RouteConfiguration__Output, options: CompileOptions = {}): CompiledRoutes {
  return new CompiledRoutes(rc, options);
}

const cache = new WeakMap<RouteConfiguration__Output, Map<string, CompiledRoutes>>();

/**
 * The compiled form of a route configuration object, compiled on first use and cached by object
 * identity: snapshots that carry the same decoded object reuse it; a new object compiles anew.
 */
export function compiledRoutesFor(rc: RouteConfiguration__Output, options: CompileOptions = {}): CompiledRoutes {
  const key = `${options.faultFilter !== false ? 'f' : ''}${options.corsFilter !== false ? 'c' : ''}`;
  let byOptions = cache.get(rc);
  if (!byOptions) {
    byOptions = new Map();
    cache.set(rc, byOptions);
  }
  let compiled = byOptions.get(key);
  if (!compiled) {
    compiled = new CompiledRoutes(rc, options);
    byOptions.set(key, compiled);
  }
  return compiled;
}

interface RouteConfigLevel {
  requestHeaders: HeaderMutation | undefined;
  responseHeaders: HeaderMutation | undefined;
  mirrors: RouteConfiguration__Output['request_mirror_policies'];
  perFilter: RouteConfiguration__Output['typed_per_filter_config'];
  mostSpecificWins: boolean;
}

function compileVirtualHost(vh: VirtualHostConfig, rc: RouteConfigLevel, options: CompileOptions): CompiledVirtualHost {
  const requireTls = vh.require_tls === 'ALL' || vh.require_tls === 'EXTERNAL_ONLY' ? vh.require_tls : 'NONE';
  const out: { name: string; routes: CompiledRoute[]; requireTls: CompiledVirtualHost['requireTls']; includeRequestAttemptCount: boolean; includeAttemptCountInResponse: boolean } = {
    name: vh.name,
    routes: [],
    requireTls,
    includeRequestAttemptCount: vh.include_request_attempt_count,
    includeAttemptCountInResponse: vh.include_attempt_count_in_response,
  };
  const level = {
    requestHeaders: compileHeaderMutation(vh.request_headers_to_add, vh.request_headers_to_remove),
    responseHeaders: compileHeaderMutation(vh.response_headers_to_add, vh.response_headers_to_remove),
    fault: options.faultFilter !== false ? perFilter(vh.typed_per_filter_config, rc.perFilter, FaultFilterName, compileFault) : undefined,
    cors: options.corsFilter !== false ? (perFilter(vh.typed_per_filter_config, rc.perFilter, CorsFilterName, compileCors) ?? compileRouteCors(vh.cors)) : undefined,
    retry: vh.retry_policy,
    mirrors: vh.request_mirror_policies.length > 0 ? vh.request_mirror_policies : rc.mirrors,
  };
  for (const r of vh.routes) {
    try {
      out.routes.push(compileRoute(r, out, rc, level, options));
    } catch (err) {
      if (err instanceof RouteConfigError) throw new RouteConfigError(`virtual host ${vh.name}, route ${r.name || '(unnamed)'}: ${err.message}`);
      throw err;
    }
  }
  return out;
}

function perFilter<T>(
  specific: RouteConfig['typed_per_filter_config'] | undefined,
  fallback: RouteConfig['typed_per_filter_config'] | undefined,
  name: string,
  compile: (any: NonNullable<RouteConfig['typed_per_filter_config']>[string]) => T | undefined,
): T | undefined {
  const any = specific?.[name] ?? fallback?.[name];
  return any ? compile(any) : undefined;
}

function orderMutations(levels: (HeaderMutation | undefined)[], mostSpecificWins: boolean): HeaderMutation[] {
  // Later mutations win. By default the least specific (route configuration) is evaluated last.
  const ordered = mostSpecificWins ? [...levels].reverse() : levels;
  return ordered.filter((m): m is HeaderMutation => m !== undefined);
}

const redirectCodes: Record<string, number> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };
const notFoundCodes: Record<string, number> = { SERVICE_UNAVAILABLE: 503, NOT_FOUND: 404, INTERNAL_SERVER_ERROR: 500 };

function compileRedirect(r: RedirectConfig): CompiledRedirect {
  const path = r.path_rewrite_specifier === 'path_redirect' ? r.path_redirect : undefined;
  return {
    scheme: r.scheme_rewrite_specifier === 'scheme_redirect' && r.scheme_redirect ? r.scheme_redirect.toLowerCase() : undefined,
    httpsRedirect: r.scheme_rewrite_specifier === 'https_redirect' && r.https_redirect === true,
    host: r.host_redirect,
    port: r.port_redirect ? `:${r.port_redirect}` : '',
    pathRedirect: path || undefined,
    pathRedirectHasQuery: path?.includes('?') ?? false,
    prefixRewrite: r.path_rewrite_specifier === 'prefix_rewrite' ? r.prefix_rewrite : undefined,
    regexRewrite: r.path_rewrite_specifier === 'regex_rewrite' ? compileRegexRewrite(r.regex_rewrite) : undefined,
    stripQuery: r.strip_query,
    status: redirectCodes[r.response_code] ?? 301,
  };
}

function compileWeighted(c: ClusterWeightConfig, options: CompileOptions): CompiledWeightedCluster {
  return {
    name: c.name,
    clusterHeader: c.cluster_header.toLowerCase(),
    weight: c.weight?.value ?? 0,
    requestHeaders: compileHeaderMutation(c.request_headers_to_add, c.request_headers_to_remove),
    responseHeaders: compileHeaderMutation(c.response_headers_to_add, c.response_headers_to_remove),
    hostRewrite: c.host_rewrite_specifier === 'host_rewrite_literal' ? c.host_rewrite_literal || undefined : undefined,
    fault: options.faultFilter !== false ? perFilter(c.typed_per_filter_config, undefined, FaultFilterName, compileFault) : undefined,
    cors: options.corsFilter !== false ? perFilter(c.typed_per_filter_config, undefined, CorsFilterName, compileCors) : undefined,
  };
}

function compileAction(a: RouteActionConfig, vhRetry: VirtualHostConfig['retry_policy'], mirrors: CompiledMirror[], options: CompileOptions): CompiledRouteAction {
  const kind = a.cluster_specifier;
  if (kind !== 'cluster' && kind !== 'cluster_header' && kind !== 'weighted_clusters') {
    throw new RouteConfigError(`unsupported cluster specifier ${kind ?? '(none)'}`);
  }
  const weighted = kind === 'weighted_clusters' ? (a.weighted_clusters?.clusters ?? []).map((c) => compileWeighted(c, options)) : [];
  if (kind === 'weighted_clusters' && weighted.length === 0) throw new RouteConfigError('weighted_clusters has no clusters');
  const sum = weighted.reduce((s, c) => s + c.weight, 0);
  const total = a.weighted_clusters?.total_weight?.value || sum;
  if (kind === 'weighted_clusters' && total <= 0) throw new RouteConfigError('weighted_clusters total weight is 0');
  const timeout = protoDurationMs(a.timeout);
  const msd = a.max_stream_duration;
  let grpcMax: number | undefined;
  let grpcOffset = 0;
  if (msd?.grpc_timeout_header_max) {
    grpcMax = protoDurationMs(msd.grpc_timeout_header_max);
    grpcOffset = protoDurationMs(msd.grpc_timeout_header_offset) ?? 0;
  } else if (a.max_grpc_timeout) {
    grpcMax = protoDurationMs(a.max_grpc_timeout);
    grpcOffset = protoDurationMs(a.grpc_timeout_offset) ?? 0;
  }
  const target: RouteAction<CompiledWeightedCluster> =
    kind === 'weighted_clusters' ? weightedClusters(weighted, total) : kind === 'cluster' ? singleCluster(a.cluster ?? '') : headerCluster(a.cluster_header ?? '');
  return {
    ...target,
    clusterNotFoundStatus: notFoundCodes[a.cluster_not_found_response_code] ?? 503,
    prefixRewrite: a.prefix_rewrite || undefined,
    regexRewrite: compileRegexRewrite(a.regex_rewrite),
    hostRewriteLiteral: a.host_rewrite_specifier === 'host_rewrite_literal' ? a.host_rewrite_literal || undefined : undefined,
    autoHostRewrite: a.host_rewrite_specifier === 'auto_host_rewrite' && a.auto_host_rewrite?.value === true,
    hostRewriteHeader: a.host_rewrite_specifier === 'host_rewrite_header' ? a.host_rewrite_header?.toLowerCase() : undefined,
    hostRewritePathRegex: a.host_rewrite_specifier === 'host_rewrite_path_regex' ? compileRegexRewrite(a.host_rewrite_path_regex) : undefined,
    timeoutMs: timeout ?? defaultRouteTimeoutMs,
    grpcTimeoutMaxMs: grpcMax,
    grpcTimeoutOffsetMs: grpcOffset,
    maxStreamDurationMs: protoDurationMs(msd?.max_stream_duration) || undefined,
    retry: compileRetryPolicy(a.retry_policy ?? vhRetry),
    hash: compileHashPolicy(a.hash_policy),
    mirrors: a.request_mirror_policies.length > 0 ? compileMirrors(a.request_mirror_policies) : mirrors,
  };
}

function istioConfig(meta: RouteConfig['metadata']): string | undefined {
  const v = meta?.filter_metadata?.istio?.fields?.config as { stringValue?: string } | undefined;
  return v?.stringValue;
}

function compileRoute(
  r: RouteConfig,
  vh: CompiledVirtualHost,
  rc: RouteConfigLevel,
  level: {
    requestHeaders: HeaderMutation | undefined;
    responseHeaders: HeaderMutation | undefined;
    fault: CompiledFault | undefined;
    cors: CompiledCors | undefined;
    retry: VirtualHostConfig['retry_policy'];
    mirrors: RouteConfiguration__Output['request_mirror_policies'];
  },
  options: CompileOptions,
): CompiledRoute {
  const m = compileMatch(r.match);
  let action: CompiledRouteAction | undefined;
  let redirect: CompiledRedirect | undefined;
  let directResponse: CompiledRoute['directResponse'];
  switch (r.action) {
    case 'route':
      action = compileAction(r.route!, level.retry, compileMirrors(level.mirrors), options);
      break;
    case 'redirect':
      redirect = compileRedirect(r.redirect!);
      break;
    case 'direct_response': {
      const d = r.direct_response!;
      const b = d.body;
      let body: Buffer | undefined;
      if (b?.specifier === 'inline_string') body = Buffer.from(b.inline_string ?? '', 'utf8');
      else if (b?.specifier === 'inline_bytes') body = Buffer.from(b.inline_bytes ?? []);
      else if (b?.specifier) throw new RouteConfigError(`direct_response body from ${b.specifier} is not supported`);
      if (d.status < 200 || d.status >= 600) throw new RouteConfigError(`direct_response status ${d.status} must be in [200, 600)`);
      directResponse = { status: d.status, body: body && body.length > 0 ? body : undefined };
      break;
    }
    default:
      // non_forwarding_action / filter_action: nothing the router can do; requests get 404 (NR).
      break;
  }
  const routeReq = compileHeaderMutation(r.request_headers_to_add, r.request_headers_to_remove);
  const routeResp = compileHeaderMutation(r.response_headers_to_add, r.response_headers_to_remove);
  return {
    name: r.name,
    virtualHost: vh,
    matchKind: m.kind,
    matchPrefix: m.prefix,
    action,
    redirect,
    directResponse,
    requestHeaders: orderMutations([routeReq, level.requestHeaders, rc.requestHeaders], rc.mostSpecificWins),
    responseHeaders: orderMutations([routeResp, level.responseHeaders, rc.responseHeaders], rc.mostSpecificWins),
    fault: options.faultFilter !== false ? (perFilter(r.typed_per_filter_config, undefined, FaultFilterName, compileFault) ?? level.fault) : undefined,
    cors:
      options.corsFilter !== false
        ? (perFilter(r.typed_per_filter_config, undefined, CorsFilterName, compileCors) ?? compileRouteCors(r.route?.cors) ?? level.cors)
        : undefined,
    operation: r.decorator?.operation || undefined,
    config: istioConfig(r.metadata),
    matches: m.matches,
  };
}
