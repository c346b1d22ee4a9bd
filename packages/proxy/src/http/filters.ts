// Per-route configuration of the HTTP filters pilot puts before the router: fault injection
// (envoy.filters.http.fault) and CORS (envoy.filters.http.cors). Compiled once; evaluated per request.
import { protoDurationMs } from '@weft/mesh';
import { decodeAny, type HTTPFault__Output, type RouteConfiguration__Output, TypeUrl, type XdsOutput } from '@weft/xds';
import {
  compileHeaderMatcher,
  compileStringMatcher,
  type Fraction,
  fraction,
  type HeaderTest,
  RouteConfigError,
  type StringTest,
  sampled,
} from './matchers.ts';
import type { RequestView } from './view.ts';

type Any = RouteConfiguration__Output['typed_per_filter_config'][string];
type CorsPolicyConfig = XdsOutput<'envoy.extensions.filters.http.cors.v3.CorsPolicy'>;
type RouteCorsConfig = NonNullable<RouteConfiguration__Output['virtual_hosts'][number]['cors']>;

export const FaultFilterName = 'envoy.filters.http.fault';
export const CorsFilterName = 'envoy.filters.http.cors';
const FilterConfigType = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';

/** Unwraps `envoy.config.route.v3.FilterConfig` (used to disable a filter per route); undefined when disabled. */
function unwrap(any: Any): Any | undefined {
  if (any.type_url !== FilterConfigType) return any;
  const fc = decodeAny(any) as { config?: Any | null; disabled?: boolean };
  if (fc.disabled || !fc.config) return undefined;
  return fc.config;
}

export interface CompiledFault {
  readonly headers: readonly HeaderTest[];
  readonly upstreamCluster: string;
  readonly downstreamNodes: ReadonlySet<string> | undefined;
  readonly delay: { readonly fixedMs: number | undefined; readonly fromHeader: boolean; readonly percent: Fraction } | undefined;
  readonly abort:
    | { readonly httpStatus: number | undefined; readonly grpcStatus: number | undefined; readonly fromHeader: boolean; readonly percent: Fraction }
    | undefined;
  readonly maxActiveFaults: number | undefined;
}

export function compileFault(any: Any): CompiledFault | undefined {
  const inner = unwrap(any);
  if (!inner) return undefined;
  if (inner.type_url !== TypeUrl.HttpFault) throw new RouteConfigError(`${FaultFilterName}: unexpected config type ${inner.type_url}`);
  const f: HTTPFault__Output = decodeAny(inner, TypeUrl.HttpFault);
  const delay = f.delay
    ? {
        fixedMs: f.delay.fault_delay_secifier === 'fixed_delay' ? (protoDurationMs(f.delay.fixed_delay) ?? 0) : undefined,
        fromHeader: f.delay.fault_delay_secifier === 'header_delay',
        percent: fraction(f.delay.percentage),
      }
    : undefined;
  const abort = f.abort
    ? {
        httpStatus: f.abort.error_type === 'http_status' ? f.abort.http_status : undefined,
        grpcStatus: f.abort.error_type === 'grpc_status' ? f.abort.grpc_status : undefined,
        fromHeader: f.abort.error_type === 'header_abort',
        percent: fraction(f.abort.percentage),
      }
    : undefined;
  if (abort?.httpStatus !== undefined && (abort.httpStatus < 200 || abort.httpStatus >= 600)) {
    throw new RouteConfigError(`${FaultFilterName}: abort http_status ${abort.httpStatus} must be in [200, 600)`);
  }
  return {
    headers: f.headers.map(compileHeaderMatcher),
    upstreamCluster: f.upstream_cluster,
    downstreamNodes: f.downstream_nodes.length > 0 ? new Set(f.downstream_nodes) : undefined,
    delay,
    abort,
    maxActiveFaults: f.max_active_faults ? f.max_active_faults.value : undefined,
  };
}

/** Header-controlled percentage: capped by the configured numerator (Envoy's rule). */
function headerPercent(view: RequestView, name: string, configured: Fraction): Fraction {
  const raw = view.header(name);
  if (raw === undefined) return configured;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) return configured;
  return { numerator: Math.min(n, configured.numerator), denominator: configured.denominator };
}

export interface FaultDecision {
  delayMs: number | undefined;
  /** Decided after the delay (as Envoy does): call `abortStatus` then. */
  fault: CompiledFault;
}

function applies(f: CompiledFault, view: RequestView, cluster: string | undefined): boolean {
  if (f.upstreamCluster && f.upstreamCluster !== cluster) return false;
  if (f.downstreamNodes && !f.downstreamNodes.has(view.header('x-envoy-downstream-service-node') ?? '')) return false;
  for (const h of f.headers) if (!h.test(view)) return false;
  return true;
}

/** The delay to inject (ms), or undefined; `cluster` is the route's chosen upstream cluster. */
export function faultDelay(f: CompiledFault, view: RequestView, cluster: string | undefined, random: () => number): number | undefined {
  if (!f.delay || !applies(f, view, cluster)) return undefined;
  let ms = f.delay.fixedMs;
  if (f.delay.fromHeader) {
    const raw = view.header('x-envoy-fault-delay-request');
    const n = raw === undefined ? Number.NaN : Number(raw);
    if (!Number.isInteger(n) || n <= 0) return undefined;
    ms = n;
  }
  if (ms === undefined || ms <= 0) return undefined;
  return sampled(headerPercent(view, 'x-envoy-fault-delay-request-percentage', f.delay.percent), random) ? ms : undefined;
}

/** The abort to inject: HTTP status (200 for a gRPC status abort) and optional gRPC status. */
export function faultAbort(f: CompiledFault, view: RequestView, cluster: string | undefined, random: () => number): { status: number; grpcStatus: number | undefined } | undefined {
  if (!f.abort || !applies(f, view, cluster)) return undefined;
  let http = f.abort.httpStatus;
  let grpc = f.abort.grpcStatus;
  if (f.abort.fromHeader) {
    const h = view.header('x-envoy-fault-abort-request');
    const g = view.header('x-envoy-fault-abort-grpc-request');
    const hn = h === undefined ? Number.NaN : Number(h);
    const gn = g === undefined ? Number.NaN : Number(g);
    http = Number.isInteger(hn) && hn >= 200 && hn < 600 ? hn : undefined;
    grpc = http === undefined && Number.isInteger(gn) && gn >= 0 ? gn : undefined;
  }
  if (http === undefined && grpc === undefined) return undefined;
  if (!sampled(headerPercent(view, 'x-envoy-fault-abort-request-percentage', f.abort.percent), random)) return undefined;
  return http !== undefined ? { status: http, grpcStatus: undefined } : { status: 200, grpcStatus: grpc };
}

export interface CompiledCors {
  readonly origins: readonly StringTest[];
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly maxAge: string;
  readonly allowCredentials: boolean;
  readonly enabled: Fraction;
  readonly forwardNotMatchingPreflights: boolean;
}

function compileCorsFields(c: CorsPolicyConfig | RouteCorsConfig): CompiledCors {
  return {
    origins: c.allow_origin_string_match.map(compileStringMatcher),
    allowMethods: c.allow_methods,
    allowHeaders: c.allow_headers,
    exposeHeaders: c.expose_headers,
    maxAge: c.max_age,
    allowCredentials: c.allow_credentials?.value ?? false,
    enabled: 'filter_enabled' in c && c.filter_enabled ? fraction(c.filter_enabled.default_value) : { numerator: 100, denominator: 100 },
    forwardNotMatchingPreflights: 'forward_not_matching_preflights' in c ? (c.forward_not_matching_preflights?.value ?? true) : true,
  };
}

export function compileCors(any: Any): CompiledCors | undefined {
  const inner = unwrap(any);
  if (!inner) return undefined;
  if (inner.type_url !== TypeUrl.CorsPolicy) throw new RouteConfigError(`${CorsFilterName}: unexpected config type ${inner.type_url}`);
  return compileCorsFields(decodeAny(inner, TypeUrl.CorsPolicy));
}

/** The route-configuration CorsPolicy (`VirtualHost.cors`, `RouteAction.cors`), used when no typed config is given. */
export function compileRouteCors(c: RouteCorsConfig | null | undefined): CompiledCors | undefined {
  return c ? compileCorsFields(c) : undefined;
}

export function corsOriginAllowed(c: CompiledCors, origin: string): boolean {
  for (const t of c.origins) if (t('*') || t(origin)) return true;
  return false;
}
