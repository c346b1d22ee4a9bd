// The parts of an Envoy route that translate one field of an Istio HTTP rule each, after Istio's
// route/route.go and retry/retry.go: match, retries, header operations, fault, CORS, consistent
// hash, mirrors. route.ts puts them together into routes.
import { parseDuration, protoDurationOf } from '@weft/mesh';
import {
  type ConsistentHashLB,
  type CorsPolicy,
  type HeaderOperations,
  type Headers,
  type HTTPFaultInjection,
  type HTTPMatchRequest,
  type HTTPRetry,
  type HTTPRoute,
  routingClaim,
  type StringMatch,
  type TrafficPolicy,
} from '@weft/model';
import { type Any, encodeAny, type HTTPFault, type Route, TypeUrl } from '@weft/xds';
import {
  fractionalPercent,
  type HeaderMatcher,
  type HeaderValueOption,
  integerPercent,
  isPresentMatch,
  type RouteMatch,
  stringMatcher,
} from './envoy.ts';
import { JwtFilterNames } from './jwt.ts';
import { Filters } from './names.ts';
import type { RouteContext } from './route.ts';

export type RouteAction = NonNullable<Route['route']>;
export type RetryPolicy = NonNullable<RouteAction['retry_policy']>;
export type HashPolicy = NonNullable<RouteAction['hash_policy']>[number];
export type ClusterWeight = NonNullable<NonNullable<RouteAction['weighted_clusters']>['clusters']>[number];
export type MirrorPolicy = NonNullable<RouteAction['request_mirror_policies']>[number];

/** Istio's default retry policy, used when a route has none. */
export const defaultRetryOn = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

let previousHostsAny: Any | undefined;

function previousHosts(): NonNullable<RetryPolicy['retry_host_predicate']>[number] {
  // Every route with default retries has it: encoded once.
  previousHostsAny ??= encodeAny(TypeUrl.PreviousHostsPredicate, {});
  return { name: Filters.previousHosts, typed_config: previousHostsAny };
}

export function defaultRetryPolicy(consistentHash: boolean): RetryPolicy {
  const policy: RetryPolicy = {
    retry_on: defaultRetryOn,
    num_retries: { value: 2 },
    host_selection_retry_max_attempts: '5',
    retriable_status_codes: [503],
  };
  // With consistent hashing a retry must stay on the same host.
  if (!consistentHash) policy.retry_host_predicate = [previousHosts()];
  return policy;
}

/** Istio's retry.ConvertPolicy: undefined disables retries (attempts 0). */
export function retryPolicy(retries: HTTPRetry | undefined, consistentHash: boolean): RetryPolicy | undefined {
  const out = defaultRetryPolicy(consistentHash);
  if (!retries) return out;
  if (!retries.attempts || retries.attempts <= 0) return undefined;
  out.num_retries = { value: retries.attempts };
  if (retries.retryOn) {
    const codes: number[] = [];
    const on: string[] = [];
    for (const raw of retries.retryOn.split(',')) {
      const part = raw.trim();
      if (!part) continue;
      const n = Number(part);
      if (Number.isInteger(n) && n >= 100 && n <= 599) codes.push(n);
      else on.push(part);
    }
    let retryOn = on.join(',');
    if (codes.length > 0 && !retryOn.includes('retriable-status-codes')) retryOn = retryOn ? `${retryOn},retriable-status-codes` : 'retriable-status-codes';
    out.retry_on = retryOn;
    out.retriable_status_codes = codes;
  }
  const perTry = protoDurationOf(retries.perTryTimeout);
  if (perTry) out.per_try_timeout = perTry;
  if (retries.retryIgnorePreviousHosts !== undefined) out.retry_host_predicate = retries.retryIgnorePreviousHosts ? [previousHosts()] : [];
  const backoff = protoDurationOf(retries.backoff);
  if (backoff) out.retry_back_off = { base_interval: backoff };
  return out;
}

type MetadataMatcher = NonNullable<RouteMatch['dynamic_metadata']>[number];

/**
 * Istio's MetadataMatcherForJWTClaims: a `@request.auth.claims…` header match looks at the verified
 * JWT payload jwt_authn leaves in its metadata (`payload`), the claim a string or a list holding one.
 */
function claimMatcher(claims: readonly string[], m: StringMatch | undefined, invert: boolean): MetadataMatcher {
  const value = (m && !isPresentMatch(m) ? stringMatcher(m) : undefined) ?? { safe_regex: { regex: '.+' } };
  return {
    filter: JwtFilterNames.jwt,
    path: [JwtFilterNames.payload, ...claims].map((key) => ({ key })),
    value: { or_match: { value_matchers: [{ list_match: { one_of: { string_match: value } } }, { string_match: value }] } },
    invert,
  };
}

function headerMatcher(name: string, m: StringMatch | undefined): HeaderMatcher {
  if (isPresentMatch(m)) return { name, present_match: true };
  const sm = m ? stringMatcher(m) : undefined;
  return sm ? { name, string_match: sm } : { name, present_match: true };
}

/** Istio's TranslateRouteMatch. */
export function routeMatch(match: HTTPMatchRequest | undefined): RouteMatch {
  const out: RouteMatch = { prefix: '/' };
  if (!match) return out;
  const headers: HeaderMatcher[] = [];
  const claims: MetadataMatcher[] = [];
  for (const [name, m] of Object.entries(match.headers ?? {})) {
    const claim = routingClaim(name);
    if (claim) claims.push(claimMatcher(claim, m, false));
    else headers.push(headerMatcher(name, m));
  }
  for (const [name, m] of Object.entries(match.withoutHeaders ?? {})) {
    const claim = routingClaim(name);
    if (claim) {
      claims.push(claimMatcher(claim, m, true));
      continue;
    }
    const h = headerMatcher(name, m);
    h.invert_match = true;
    if (!isPresentMatch(m)) h.treat_missing_header_as_empty = true;
    headers.push(h);
  }
  headers.sort((a, b) => ((a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0));
  if (match.uri) {
    delete out.prefix;
    if (match.uri.exact !== undefined) out.path = match.uri.exact;
    else if (match.uri.prefix !== undefined) out.prefix = match.uri.prefix;
    else if (match.uri.regex !== undefined) out.safe_regex = { regex: match.uri.regex };
    else out.prefix = '/';
  }
  out.case_sensitive = { value: !match.ignoreUriCase };
  if (match.method) headers.push(headerMatcher(':method', match.method));
  if (match.authority) headers.push(headerMatcher(':authority', match.authority));
  if (match.scheme) headers.push(headerMatcher(':scheme', match.scheme));
  out.headers = headers;
  if (claims.length > 0) out.dynamic_metadata = claims;
  const query = Object.entries(match.queryParams ?? {}).map(([name, m]) => {
    if (isPresentMatch(m)) return { name, present_match: true };
    return { name, string_match: stringMatcher(m) };
  });
  if (query.length > 0) out.query_parameters = query;
  return out;
}

export function isCatchAll(match: RouteMatch | null | undefined): boolean {
  if (!match) return true;
  const pathCatchAll = match.prefix === '/' || match.safe_regex?.regex === '.*';
  return pathCatchAll && (match.headers?.length ?? 0) === 0 && (match.query_parameters?.length ?? 0) === 0 && (match.dynamic_metadata?.length ?? 0) === 0;
}

interface HeaderOps {
  requestAdd: HeaderValueOption[];
  requestRemove: string[];
  responseAdd: HeaderValueOption[];
  responseRemove: string[];
  authority: string;
}

const isInternal = (key: string) => key.startsWith(':') || key.toLowerCase() === 'host';
const isAuthority = (key: string) => key.toLowerCase() === ':authority' || key.toLowerCase() === 'host';

function appendHeaders(headers: Record<string, string> | undefined, append: boolean): { options: HeaderValueOption[]; authority: string } {
  let authority = '';
  const options: HeaderValueOption[] = [];
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (isAuthority(key)) authority = value;
    if (isInternal(key)) continue;
    options.push({ header: { key, value }, append_action: append ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD' });
  }
  options.sort((a, b) => ((a.header?.key ?? '') < (b.header?.key ?? '') ? -1 : 1));
  return { options, authority };
}

/** Istio's TranslateHeadersOperations: `set` overwrites, `add` appends, `:authority`/`host` become a host rewrite. */
export function headerOperations(headers: Headers | undefined): HeaderOps {
  const req: HeaderOperations = headers?.request ?? {};
  const resp: HeaderOperations = headers?.response ?? {};
  const reqSet = appendHeaders(req.set, false);
  const reqAdd = appendHeaders(req.add, true);
  return {
    requestAdd: [...reqSet.options, ...reqAdd.options],
    requestRemove: (req.remove ?? []).filter((k) => !isInternal(k)),
    responseAdd: [...appendHeaders(resp.set, false).options, ...appendHeaders(resp.add, true).options],
    responseRemove: (resp.remove ?? []).filter((k) => !isInternal(k)),
    authority: reqSet.authority || reqAdd.authority,
  };
}

/** Istio's TranslateFault; undefined when nothing can be injected. */
export function faultConfig(fault: HTTPFaultInjection): HTTPFault | undefined {
  const out: HTTPFault = {};
  if (fault.delay) {
    const fixed = protoDurationOf(fault.delay.fixedDelay);
    if (fixed) {
      out.delay = {
        fixed_delay: fixed,
        percentage: fault.delay.percentage ? fractionalPercent(fault.delay.percentage.value ?? 0) : integerPercent(fault.delay.percent ?? 0),
      };
    }
  }
  if (fault.abort) {
    const abort: NonNullable<HTTPFault['abort']> = {};
    if (fault.abort.percentage) abort.percentage = fractionalPercent(fault.abort.percentage.value ?? 0);
    if (fault.abort.httpStatus !== undefined) abort.http_status = fault.abort.httpStatus;
    else if (fault.abort.grpcStatus !== undefined) {
      const code = grpcStatusCodes[fault.abort.grpcStatus.toUpperCase()];
      if (code !== undefined) abort.grpc_status = code;
    }
    if (abort.http_status !== undefined || abort.grpc_status !== undefined) out.abort = abort;
  }
  return out.delay || out.abort ? out : undefined;
}

const grpcStatusCodes: Record<string, number> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/** Istio's TranslateCORSPolicy (per-route config of `envoy.filters.http.cors`). */
export function corsPolicy(cors: CorsPolicy) {
  const origins = cors.allowOrigins?.length
    ? cors.allowOrigins.map((m) => stringMatcher(m)).filter((m) => m !== undefined)
    : (cors.allowOrigin ?? []).map((o) => ({ exact: o }));
  const maxAge = cors.maxAge !== undefined ? parseDuration(cors.maxAge) : undefined;
  return {
    allow_origin_string_match: origins,
    allow_methods: (cors.allowMethods ?? []).join(','),
    allow_headers: (cors.allowHeaders ?? []).join(','),
    expose_headers: (cors.exposeHeaders ?? []).join(','),
    ...(maxAge !== undefined ? { max_age: String(Math.floor(maxAge)) } : {}),
    ...(cors.allowCredentials !== undefined ? { allow_credentials: { value: cors.allowCredentials } } : {}),
    filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' as const } },
    forward_not_matching_preflights: { value: cors.unmatchedPreflights !== 'IGNORE' },
  };
}

function portPolicyHash(policy: TrafficPolicy | undefined, port: number | undefined): ConsistentHashLB | undefined {
  if (port === undefined) return undefined;
  return policy?.portLevelSettings?.find((p) => p.port?.number === port)?.loadBalancer?.consistentHash;
}

/** Istio's hashForHTTPDestination: subset port-level > subset > port-level > top-level. */
export function consistentHashFor(host: string, subset: string | undefined, port: number | undefined, ctx: Pick<RouteContext, 'push' | 'proxy'>) {
  const dr = ctx.push.destinationRule(ctx.proxy, host)?.spec;
  if (!dr) return undefined;
  const sub = subset ? dr.subsets?.find((s) => s.name === subset) : undefined;
  return (
    portPolicyHash(sub?.trafficPolicy, port) ??
    sub?.trafficPolicy?.loadBalancer?.consistentHash ??
    portPolicyHash(dr.trafficPolicy, port) ??
    dr.trafficPolicy?.loadBalancer?.consistentHash
  );
}

/** Istio's consistentHashToHashPolicy. */
export function hashPolicy(hash: ConsistentHashLB | undefined): HashPolicy | undefined {
  if (!hash) return undefined;
  if (hash.httpHeaderName) return { header: { header_name: hash.httpHeaderName } };
  if (hash.httpCookie) {
    const ttl = protoDurationOf(hash.httpCookie.ttl);
    return { cookie: { name: hash.httpCookie.name, ...(ttl ? { ttl } : {}), ...(hash.httpCookie.path ? { path: hash.httpCookie.path } : {}) } };
  }
  if (hash.useSourceIp) return { connection_properties: { source_ip: true } };
  if (hash.httpQueryParameterName) return { query_parameter: { name: hash.httpQueryParameterName } };
  return undefined;
}

export function mirrorPercent(route: HTTPRoute) {
  if (route.mirrorPercentage) return (route.mirrorPercentage.value ?? 0) > 0 ? fractionalPercent(route.mirrorPercentage.value ?? 0) : undefined;
  const legacy = route.mirrorPercent ?? route.mirror_percent;
  if (legacy !== undefined) return legacy > 0 ? integerPercent(legacy) : undefined;
  return integerPercent(100);
}

export function mirrorPolicy(cluster: string, percent: { numerator: number; denominator: 'MILLION' | 'HUNDRED' }): MirrorPolicy {
  return { cluster, runtime_fraction: { default_value: percent }, trace_sampled: { value: false } };
}
