// VirtualService: Istio's ValidateVirtualService, validateHTTPRoute and friends, plus the CRD's
// duration rules and the unreachable-rule analysis Istio reports as warnings.
import { hostsMatch, hostSubsetOf, parseDurationNanos } from '@weft/mesh';
import type { CorsPolicy, FieldPath, HTTPFaultInjection, HTTPMatchRequest, HTTPRedirect, HTTPRetry, HTTPRewrite, HTTPRoute, HTTPRouteDestination, L4MatchAttributes, RouteDestination, TLSMatchAttributes, VirtualServiceSpec } from '@weft/model';
import { isIstioDns1123Label } from '../common.ts';
import { kindValidator, type ValidationContext } from '../context.ts';
import {
  checkDestination,
  checkDuration,
  checkExportTo,
  checkGatewayNames,
  checkHeaderOperations,
  checkLabels,
  checkPort,
  checkStringMatch,
  corsHeaderNameError,
  entries,
  filled,
  gatewayBoundDomainError,
  ipSubnetError,
  isAuthorityHeader,
  isIPAddress,
  isJwtClaimRoute,
  isObject,
  items,
  matchHeaderNameError,
  num,
  present,
  q,
  checkRegex,
  str,
  wildcardDomainError,
} from './shared.ts';

/** Annotation set on VirtualServices Istio derives from Gateway API routes. */
const routeSemanticsAnnotation = 'internal.istio.io/route-semantics';

export const virtualServiceValidator = kindValidator('networking.istio.io/VirtualService', (spec: VirtualServiceSpec, ctx) => {
  const hosts = items(spec.hosts).filter((h): h is string => typeof h === 'string');
  const gateways = items(spec.gateways).filter((g): g is string => typeof g === 'string');
  const delegate = items(spec.hosts).length === 0;
  const gatewaySemantics = ctx.config.metadata.annotations?.[routeSemanticsAnnotation] === 'gateway';

  if (delegate) {
    // A VirtualService without hosts is a delegate: only HTTP routes, and no gateways of its own.
    if (gateways.length > 0) ctx.error(['gateways'], 'delegate virtual service must have no gateways specified');
    if (filled(spec.tls)) ctx.error(['tls'], 'delegate virtual service must have no tls route specified');
    if (filled(spec.tcp)) ctx.error(['tcp'], 'delegate virtual service must have no tcp route specified');
  }

  let appliesToMesh = true;
  let appliesToGateway = false;
  if (gateways.length > 0) {
    checkGatewayNames(ctx, ['gateways'], gateways, gatewaySemantics);
    appliesToGateway = !gateways.includes('mesh');
    appliesToMesh = !appliesToGateway;
  }

  if (!appliesToGateway) {
    items(spec.http).forEach((route, i) => {
      if (!isObject(route)) return;
      items(route.match).forEach((m, j) => {
        if (!isObject(m)) return;
        for (const field of ['headers', 'withoutHeaders'] as const) {
          for (const [key] of entries(m[field])) {
            if (isJwtClaimRoute(key)) {
              ctx.error(['http', i, 'match', j, field, key], `JWT claim based routing (key: ${key}) is only supported for gateway, found no gateways: [${gateways.join(' ')}]`);
            }
          }
        }
      });
    });
  }

  const sni = items(spec.tls).some((t) => isObject(t) && items(t.match).some((m) => isObject(m) && filled(m.sniHosts)));
  let allHostsValid = true;
  items(spec.hosts).forEach((host, i) => {
    if (typeof host !== 'string') return;
    const err = appliesToGateway ? gatewayBoundDomainError(sni, host) : wildcardDomainError(host);
    if (err) {
      if (!isIPAddress(host)) {
        ctx.error(['hosts', i], err);
        allHostsValid = false;
      }
    } else if (appliesToMesh && host === '*') {
      ctx.error(['hosts', i], 'wildcard host * is not allowed for virtual services bound to the mesh gateway');
      allHostsValid = false;
    }
  });
  if (allHostsValid) {
    for (let i = 0; i < hosts.length; i++) {
      for (let j = i + 1; j < hosts.length; j++) {
        if (hostsMatch(hosts[i]!, hosts[j]!)) ctx.error(['hosts', j], `duplicate hosts in virtual service: ${hosts[i]} & ${hosts[j]}`);
      }
    }
  }

  if (!filled(spec.http) && !filled(spec.tcp) && !filled(spec.tls)) ctx.error([], 'http, tcp or tls must be provided in virtual service');

  items(spec.http).forEach((route, i) => {
    if (!isObject(route)) {
      ctx.error(['http', i], 'http route may not be null');
      return;
    }
    checkHTTPRoute(ctx, ['http', i], route, delegate, gatewaySemantics);
  });
  items(spec.tls).forEach((route, i) => {
    if (!isObject(route)) return;
    const p: FieldPath = ['tls', i];
    if (!filled(route.match)) ctx.error(p, 'TLS route must have at least one match condition');
    items(route.match).forEach((m, j) => {
      checkTLSMatch(ctx, [...p, 'match', j], m, hosts, gateways);
    });
    if (!filled(route.route)) ctx.error(p, 'TLS route is required');
    checkRouteDestinations(ctx, [...p, 'route'], route.route, gatewaySemantics);
  });
  items(spec.tcp).forEach((route, i) => {
    if (!isObject(route)) return;
    const p: FieldPath = ['tcp', i];
    items(route.match).forEach((m, j) => {
      checkL4Match(ctx, [...p, 'match', j], m);
    });
    if (!filled(route.route)) ctx.error(p, 'TCP route is required');
    checkRouteDestinations(ctx, [...p, 'route'], route.route, gatewaySemantics);
  });

  checkExportTo(ctx, spec.exportTo);

  analyzeUnreachableRules(ctx, 'http', items(spec.http));
  analyzeUnreachableRules(ctx, 'tcp', items(spec.tcp));
  analyzeUnreachableRules(ctx, 'tls', items(spec.tls));
  analyzeOverlappingPrefixes(ctx, items(spec.http));
});

// ---------------------------------------------------------------------------------------------
// HTTP routes
// ---------------------------------------------------------------------------------------------

function checkHTTPRoute(ctx: ValidationContext, p: FieldPath, http: HTTPRoute, delegate: boolean, gatewaySemantics: boolean): void {
  const routeType = delegate ? 'delegate' : present(http.delegate) ? 'root' : 'independent';
  checkRouteConflicts(ctx, p, http, routeType);

  items(http.match).forEach((m, j) => {
    checkMatchRequest(ctx, [...p, 'match', j], m, http.redirect);
  });

  checkHeaderOperations(ctx, [...p, 'headers'], http.headers);
  checkCorsPolicy(ctx, [...p, 'corsPolicy'], http.corsPolicy);
  checkFault(ctx, [...p, 'fault'], http.fault);

  for (const field of ['mirrorPercent', 'mirror_percent'] as const) {
    const value = http[field];
    if (!present(value)) continue;
    if (typeof value === 'number' && value > 100) ctx.error([...p, field], `mirror_percent must have a max value of 100 (it has ${value})`);
    ctx.warning([...p, field], 'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead');
  }
  if (isObject(http.mirrorPercentage)) {
    const value = num(http.mirrorPercentage.value);
    if (value > 100) ctx.error([...p, 'mirrorPercentage', 'value'], `mirror_percentage must have a max value of 100 (it has ${value.toFixed(6)})`);
    if (value < 0) ctx.error([...p, 'mirrorPercentage', 'value'], `mirror_percentage must have a min value of 0 (it has ${value.toFixed(6)})`);
  }

  checkDestination(ctx, [...p, 'mirror'], http.mirror);
  items(http.mirrors).forEach((mirror, k) => {
    const mp: FieldPath = [...p, 'mirrors', k];
    if (!isObject(mirror)) {
      ctx.error(mp, 'mirror cannot be null');
      return;
    }
    checkDestination(ctx, [...mp, 'destination'], mirror.destination);
    if (isObject(mirror.percentage)) {
      const value = num(mirror.percentage.value);
      if (value > 100) ctx.error([...mp, 'percentage', 'value'], `mirror percentage must have a max value of 100 (it has ${value.toFixed(6)})`);
      if (value < 0) ctx.error([...mp, 'percentage', 'value'], `mirror percentage must have a min value of 0 (it has ${value.toFixed(6)})`);
    }
  });

  checkRedirect(ctx, [...p, 'redirect'], http.redirect);
  checkDirectResponse(ctx, [...p, 'directResponse'], http.directResponse);
  checkRetries(ctx, [...p, 'retries'], http.retries);
  checkRewrite(ctx, [...p, 'rewrite'], http.rewrite);
  checkAuthorityRewrite(ctx, p, http);
  checkHTTPRouteDestinations(ctx, [...p, 'route'], http.route, gatewaySemantics);
  checkDuration(ctx, [...p, 'timeout'], http.timeout);
}

function checkRouteConflicts(ctx: ValidationContext, p: FieldPath, http: HTTPRoute, routeType: 'delegate' | 'root' | 'independent'): void {
  const name = str(http.name) ? ` ${http.name}` : '';
  if (routeType === 'root') {
    // A root route hands the request to its delegate: it may not also route or redirect.
    if (present(http.redirect)) ctx.error([...p, 'redirect'], `root HTTP route${name} must not specify redirect`);
    if (filled(http.route)) ctx.error([...p, 'route'], `root HTTP route${name} must not specify route`);
    return;
  }
  if (routeType === 'delegate' && present(http.delegate)) ctx.error([...p, 'delegate'], 'delegate HTTP route cannot contain delegate');
  if (present(http.redirect)) {
    if (filled(http.route)) ctx.error([...p, 'route'], 'HTTP route cannot contain both route and redirect');
    if (present(http.fault)) ctx.error([...p, 'fault'], 'HTTP route cannot contain both fault and redirect');
    if (present(http.rewrite)) ctx.error([...p, 'rewrite'], 'HTTP route rule cannot contain both rewrite and redirect');
    if (present(http.directResponse)) ctx.error([...p, 'directResponse'], 'HTTP route rule cannot contain both direct_response and redirect');
  } else if (present(http.directResponse)) {
    if (filled(http.route)) ctx.error([...p, 'route'], 'HTTP route cannot contain both route and direct_response');
    if (present(http.fault)) ctx.error([...p, 'fault'], 'HTTP route cannot contain both fault and direct_response');
    if (present(http.rewrite)) ctx.error([...p, 'rewrite'], 'HTTP route rule cannot contain both rewrite and direct_response');
  } else if (!filled(http.route)) {
    ctx.error(present(http.route) ? [...p, 'route'] : p, 'HTTP route, redirect or direct_response is required');
  }
  if (present(http.mirror) && filled(http.mirrors)) ctx.error([...p, 'mirrors'], 'HTTP route cannot contain both mirror and mirrors');
}

function checkMatchRequest(ctx: ValidationContext, p: FieldPath, m: HTTPMatchRequest | undefined, redirect: HTTPRedirect | undefined): void {
  if (!isObject(m)) return;
  for (const [name, header] of entries(m.headers)) {
    const err = matchHeaderNameError(name);
    if (err) ctx.error([...p, 'headers', name], err);
    if (!present(header)) ctx.error([...p, 'headers', name], `header match ${name} cannot be null`);
    checkStringMatch(ctx, [...p, 'headers', name], header, 'headers');
  }
  for (const [name, header] of entries(m.withoutHeaders)) {
    const err = matchHeaderNameError(name);
    if (err) ctx.error([...p, 'withoutHeaders', name], err);
    // `regex: "*"` is not a regex: it means "header present".
    if (isObject(header) && header.regex !== '*') checkStringMatch(ctx, [...p, 'withoutHeaders', name], header, 'withoutHeaders');
  }
  // An empty uri prefix matches everything (Envoy accepts it); scheme/method/authority may not be empty.
  checkStringMatch(ctx, [...p, 'uri'], m.uri, 'uri', { allowEmptyPrefix: true });
  checkStringMatch(ctx, [...p, 'scheme'], m.scheme, 'scheme');
  checkStringMatch(ctx, [...p, 'method'], m.method, 'method');
  checkStringMatch(ctx, [...p, 'authority'], m.authority, 'authority');
  for (const [name, qp] of entries(m.queryParams)) checkStringMatch(ctx, [...p, 'queryParams', name], qp, 'queryParams');

  if (present(m.port) && num(m.port) !== 0) checkPort(ctx, [...p, 'port'], m.port);
  checkLabels(ctx, [...p, 'sourceLabels'], m.sourceLabels);
  checkGatewayNames(ctx, [...p, 'gateways'], m.gateways, false);
  if (typeof m.sourceNamespace === 'string' && m.sourceNamespace !== '' && !isIstioDns1123Label(m.sourceNamespace)) {
    ctx.error([...p, 'sourceNamespace'], `sourceNamespace match ${m.sourceNamespace} is invalid`);
  }
  // A redirect's prefixRewrite replaces the matched prefix, so the match must be on a uri prefix.
  if (isObject(redirect) && str(redirect.prefixRewrite) && isObject(m.uri) && !present(m.uri.prefix)) {
    ctx.error([...p, 'uri'], 'redirect prefixRewrite requires the uri match to be a prefix match');
  }
}

const supportedCorsMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);

function checkCorsPolicy(ctx: ValidationContext, p: FieldPath, cors: CorsPolicy | undefined): void {
  if (!isObject(cors)) return;
  items(cors.allowOrigins).forEach((origin, i) => {
    if (!isObject(origin)) return;
    const value = str(origin.exact ?? origin.prefix ?? origin.regex);
    if (value === '') {
      ctx.error([...p, 'allowOrigins', i], `'${value}' is not a valid match type for CORS allow origins`);
      return;
    }
    checkStringMatch(ctx, [...p, 'allowOrigins', i], origin, 'corsPolicy.allowOrigins', { allowEmptyPrefix: true });
  });
  items(cors.allowMethods).forEach((method, i) => {
    if (typeof method === 'string' && !supportedCorsMethods.has(method)) ctx.error([...p, 'allowMethods', i], `${q(method)} is not a supported HTTP method`);
  });
  for (const field of ['allowHeaders', 'exposeHeaders'] as const) {
    items(cors[field]).forEach((name, i) => {
      if (typeof name !== 'string') return;
      const err = corsHeaderNameError(name);
      if (err) ctx.error([...p, field, i], err);
    });
  }
  if (typeof cors.maxAge === 'string') {
    checkDuration(ctx, [...p, 'maxAge'], cors.maxAge);
    const ns = parseDurationNanos(cors.maxAge);
    if (ns !== undefined && ns % 1_000_000_000n !== 0n) ctx.error([...p, 'maxAge'], 'max_age duration is accurate only to seconds precision');
  }
}

/** Istio's validatePercentage: 0, or between 0.0001 and 100. */
function checkPercentage(ctx: ValidationContext, p: FieldPath, percentage: { value?: number } | undefined): void {
  if (!isObject(percentage)) return;
  const v = num(percentage.value);
  if (v < 0 || v > 100 || (v > 0 && v < 0.0001)) ctx.error([...p, 'value'], `percentage ${v} is neither 0.0, nor in range [0.0001, 100.0]`);
}

const grpcStatuses = new Set([
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
]);

/** Istio accepts 200..600 here (its message says 599). */
function httpStatusError(status: number): string | undefined {
  return status < 200 || status > 600 ? `HTTP status ${status} is not in range 200-599` : undefined;
}

function checkFault(ctx: ValidationContext, p: FieldPath, fault: HTTPFaultInjection | undefined): void {
  if (!isObject(fault)) return;
  if (!present(fault.abort) && !present(fault.delay)) ctx.error(p, 'HTTP fault injection must have an abort and/or a delay');
  const abort = fault.abort;
  if (isObject(abort)) {
    const ap: FieldPath = [...p, 'abort'];
    checkPercentage(ctx, [...ap, 'percentage'], abort.percentage);
    if (present(abort.grpcStatus)) {
      if (!grpcStatuses.has(str(abort.grpcStatus))) {
        ctx.error([...ap, 'grpcStatus'], `gRPC status ${q(str(abort.grpcStatus))} is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of supported codes, for example 'NOT_FOUND'`);
      }
    } else if (present(abort.http2Error)) {
      ctx.error([...ap, 'http2Error'], 'HTTP/2 abort fault injection not supported yet');
    } else if (present(abort.httpStatus)) {
      const err = httpStatusError(num(abort.httpStatus));
      if (err) ctx.error([...ap, 'httpStatus'], err);
    } else {
      ctx.warning(ap, 'abort configured, but error type not set');
    }
  }
  const delay = fault.delay;
  if (isObject(delay)) {
    const dp: FieldPath = [...p, 'delay'];
    checkPercentage(ctx, [...dp, 'percentage'], delay.percentage);
    if (typeof delay.percent === 'number' && (delay.percent < 0 || delay.percent > 100)) ctx.error([...dp, 'percent'], `percentage ${delay.percent} is not in range 0..100`);
    checkDuration(ctx, [...dp, 'fixedDelay'], delay.fixedDelay);
    if (present(delay.exponentialDelay)) {
      checkDuration(ctx, [...dp, 'exponentialDelay'], delay.exponentialDelay);
      ctx.error([...dp, 'exponentialDelay'], 'exponentialDelay not supported yet');
    }
  }
}

function checkRedirect(ctx: ValidationContext, p: FieldPath, r: HTTPRedirect | undefined): void {
  if (!isObject(r)) return;
  if (!str(r.uri) && !str(r.authority) && !present(r.port) && !present(r.derivePort) && !str(r.scheme) && !str(r.prefixRewrite)) {
    ctx.error(p, 'redirect must specify URI, authority, scheme, or port');
  }
  if (str(r.uri) && str(r.prefixRewrite)) ctx.error([...p, 'prefixRewrite'], 'redirect may only contain one of uri or prefixRewrite');
  const code = num(r.redirectCode);
  if (code !== 0 && (code < 300 || code > 399)) ctx.error([...p, 'redirectCode'], `${code} is not a valid redirect code, must be 3xx`);
  if (str(r.scheme) && r.scheme !== 'http' && r.scheme !== 'https') ctx.error([...p, 'scheme'], 'invalid redirect scheme, must be "http" or "https"');
  if (num(r.port) > 0) checkPort(ctx, [...p, 'port'], r.port);
}

function checkDirectResponse(ctx: ValidationContext, p: FieldPath, dr: { status?: number; body?: { string?: string; bytes?: string } } | undefined): void {
  if (!isObject(dr)) return;
  if (isObject(dr.body)) {
    const size = typeof dr.body.string === 'string' ? Buffer.byteLength(dr.body.string) : typeof dr.body.bytes === 'string' ? Buffer.from(dr.body.bytes, 'base64').length : 0;
    if (size > 1024 * 1024) ctx.error([...p, 'body'], 'large direct_responses may impact control plane performance, must be less than 1MB');
    else if (size > 100 * 1024) ctx.warning([...p, 'body'], 'large direct_responses may impact control plane performance');
  }
  if (present(dr.status)) {
    const err = httpStatusError(num(dr.status));
    if (err) ctx.error([...p, 'status'], err);
  }
}

const retryOnPolicies = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

/** Status codes Go's net/http has a text for (what Istio accepts as a retryOn code). */
const knownStatusCodes = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424,
  425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

function checkRetries(ctx: ValidationContext, p: FieldPath, r: HTTPRetry | undefined): void {
  if (!isObject(r)) return;
  const attempts = num(r.attempts);
  if (attempts < 0) ctx.error([...p, 'attempts'], 'attempts cannot be negative');
  if (attempts === 0 && (present(r.perTryTimeout) || str(r.retryOn) || present(r.retryRemoteLocalities))) {
    ctx.error(present(r.attempts) ? [...p, 'attempts'] : p, 'http retry policy configured when attempts are set to 0 (disabled)');
  }
  checkDuration(ctx, [...p, 'perTryTimeout'], r.perTryTimeout);
  if (str(r.retryOn)) {
    for (const policy of str(r.retryOn).split(',')) {
      const code = /^[+-]?\d+$/.test(policy) ? Number(policy) : 0;
      if (!knownStatusCodes.has(code) && !retryOnPolicies.has(policy)) ctx.error([...p, 'retryOn'], `${q(policy)} is not a valid retryOn policy`);
    }
  }
  checkDuration(ctx, [...p, 'backoff'], r.backoff);
}

function checkRewrite(ctx: ValidationContext, p: FieldPath, r: HTTPRewrite | undefined): void {
  if (!isObject(r)) return;
  if (str(r.uri) && present(r.uriRegexRewrite)) ctx.error([...p, 'uriRegexRewrite'], 'rewrite may only contain one of URI or UriRegexRewrite');
  if (!str(r.uri) && !present(r.uriRegexRewrite) && !str(r.authority)) {
    ctx.error(p, 'rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of URI or UriRegexRewrite may be specified');
  }
  const rr = r.uriRegexRewrite;
  if (isObject(rr)) {
    const rp: FieldPath = [...p, 'uriRegexRewrite'];
    if (!str(rr.match) || !str(rr.rewrite)) {
      ctx.error(!str(rr.match) && present(rr.match) ? [...rp, 'match'] : rp, 'UriRegexRewrite has errors: UriRegexRewrite requires both Rewrite and Match fields to be specified');
    } else {
      checkRegex(ctx, [...rp, 'match'], str(rr.match), 'UriRegexRewrite has errors: "HTTPRewrite.UriRegexRewrite.Match"');
    }
  }
}

/** The authority may be rewritten in one place only: `rewrite.authority` or a request `:authority`/`host` header. */
function checkAuthorityRewrite(ctx: ValidationContext, p: FieldPath, http: HTTPRoute): void {
  let current = isObject(http.rewrite) ? str(http.rewrite.authority) : '';
  const request = isObject(http.headers) && isObject(http.headers.request) ? http.headers.request : undefined;
  for (const op of ['set', 'add'] as const) {
    for (const [k, v] of entries(request?.[op])) {
      if (!isAuthorityHeader(k)) continue;
      if (current !== '') {
        ctx.error([...p, 'headers', 'request', op, k], `authority header cannot be set multiple times: have ${q(current)}, attempting to set ${q(str(v))}`);
        return;
      }
      current = str(v);
    }
  }
}

function checkHTTPRouteDestinations(ctx: ValidationContext, p: FieldPath, route: HTTPRouteDestination[] | undefined, gatewaySemantics: boolean): void {
  let total = 0;
  items(route).forEach((rd, k) => {
    const rp: FieldPath = [...p, k];
    if (!isObject(rd)) {
      ctx.error(rp, 'weight may not be nil');
      return;
    }
    checkHeaderOperations(ctx, [...rp, 'headers'], rd.headers);
    if (!gatewaySemantics) checkDestination(ctx, [...rp, 'destination'], rd.destination);
    const w = num(rd.weight);
    if (w < 0) ctx.error([...rp, 'weight'], `weight ${w} < 0`);
    total += w;
  });
  if (items(route).length > 1 && total === 0) ctx.error(p, 'total destination weight = 0');
}

// ---------------------------------------------------------------------------------------------
// TLS and TCP routes
// ---------------------------------------------------------------------------------------------

function checkRouteDestinations(ctx: ValidationContext, p: FieldPath, route: RouteDestination[] | undefined, gatewaySemantics: boolean): void {
  let total = 0;
  items(route).forEach((rd, k) => {
    const rp: FieldPath = [...p, k];
    if (!isObject(rd)) {
      ctx.error(rp, 'weight may not be nil');
      return;
    }
    if (!gatewaySemantics) checkDestination(ctx, [...rp, 'destination'], rd.destination);
    const w = num(rd.weight);
    if (w < 0) ctx.error([...rp, 'weight'], `weight ${w} < 0`);
    total += w;
  });
  if (items(route).length > 1 && total === 0) ctx.error(p, 'total destination weight = 0');
}

function checkTLSMatch(ctx: ValidationContext, p: FieldPath, m: TLSMatchAttributes | undefined, hosts: readonly string[], gateways: readonly string[]): void {
  if (!isObject(m)) {
    ctx.error(p, 'TLS match may not be null');
    return;
  }
  if (!filled(m.sniHosts)) ctx.error(present(m.sniHosts) ? [...p, 'sniHosts'] : p, 'TLS match must have at least one SNI host');
  items(m.sniHosts).forEach((sni, k) => {
    if (typeof sni !== 'string') return;
    const at: FieldPath = [...p, 'sniHosts', k];
    // With no gateways at all Istio validates SNI hosts as for a gateway (its isGateway finds no `mesh`).
    const err = !gateways.includes('mesh') ? gatewayBoundDomainError(true, sni) : wildcardDomainError(sni);
    if (err) {
      if (isIPAddress(sni)) ctx.warning(at, `using an IP address (${q(sni)}) goes against SNI spec and most clients do not support this`);
      else ctx.error(at, err);
      return;
    }
    if (!hosts.some((h) => hostSubsetOf(sni, h))) ctx.error(at, `SNI host ${q(sni)} is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`);
  });
  checkL4Common(ctx, p, m);
}

function checkL4Match(ctx: ValidationContext, p: FieldPath, m: L4MatchAttributes | undefined): void {
  if (!isObject(m)) {
    ctx.error(p, 'tcp match may not be nil');
    return;
  }
  checkL4Common(ctx, p, m);
}

function checkL4Common(ctx: ValidationContext, p: FieldPath, m: L4MatchAttributes | TLSMatchAttributes): void {
  items(m.destinationSubnets).forEach((subnet, k) => {
    if (typeof subnet !== 'string') return;
    const err = ipSubnetError(subnet);
    if (err) ctx.error([...p, 'destinationSubnets', k], err);
  });
  if (present(m.port) && num(m.port) !== 0) checkPort(ctx, [...p, 'port'], m.port);
  checkLabels(ctx, [...p, 'sourceLabels'], m.sourceLabels);
  checkGatewayNames(ctx, [...p, 'gateways'], m.gateways, false);
}

// ---------------------------------------------------------------------------------------------
// Unreachable rules and ineffective matches (warnings, as Istio's analyzers IST0130/IST0131)
// ---------------------------------------------------------------------------------------------

/** Canonical JSON of a match without its name, with Go's zero values dropped, to compare matches. */
function matchKey(match: unknown): string {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.length === 0 ? undefined : v.map(strip);
    if (isObject(v)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const s = strip(v[k]);
        if (s !== undefined) out[k] = s;
      }
      return Object.keys(out).length === 0 ? undefined : out;
    }
    if (v === null || v === '' || v === 0 || v === false) return undefined;
    return v;
  };
  const m = isObject(match) ? { ...match, name: undefined } : match;
  return JSON.stringify(strip(m) ?? {});
}

const routeName = (route: unknown, n: number): string => (isObject(route) && typeof route.name === 'string' && route.name !== '' ? q(route.name) : `#${n}`);
const matchName = (match: unknown, n: number): string => (isObject(match) && typeof match.name === 'string' && match.name !== '' ? q(match.name) : `#${n}`);

function analyzeUnreachableRules(ctx: ValidationContext, kind: 'http' | 'tcp' | 'tls', routes: readonly unknown[]): void {
  const seen = new Map<string, number>();
  let emptyMatchAt = -1;
  routes.forEach((route, n) => {
    if (!isObject(route)) return;
    const matches = items(route.match as unknown[] | undefined);
    if (matches.length === 0) {
      if (emptyMatchAt >= 0) ctx.warning([kind, n], `virtualService rule ${routeName(route, n)} not used (only the last rule can have no matches)`, 'IST0130');
      emptyMatchAt = n;
      return;
    }
    let duplicates = 0;
    matches.forEach((match, j) => {
      if (emptyMatchAt >= 0) {
        ctx.warning([kind, n, 'match', j], `virtualService rule ${routeName(route, n)} not used (route without matches defined before)`, 'IST0130');
        return;
      }
      const key = matchKey(match);
      const dup = seen.get(key);
      if (dup !== undefined) {
        ctx.warning([kind, n, 'match', j], `virtualService rule ${routeName(route, n)} match ${matchName(match, j)} is not used (duplicate/overlapping match in rule ${routeName(routes[dup], dup)})`, 'IST0131');
        duplicates++;
        return;
      }
      seen.set(key, n);
    });
    if (duplicates === matches.length) ctx.warning([kind, n], `virtualService rule ${routeName(route, n)} not used (all matches used by prior rules)`, 'IST0130');
  });
}

interface PrefixMatch {
  path: FieldPath;
  route: string;
  match: string;
  prefix: string;
  port: number;
  method: string;
  authority: string;
  headers: Map<string, string>;
  queryParams: Map<string, string>;
  withoutHeaders: Map<string, string>;
}

const exactOrPrefix = (sm: unknown): string => (isObject(sm) ? (str(sm.exact) ? `exact:${sm.exact}` : str(sm.prefix) ? `prefix:${sm.prefix}` : '') : '');

/** Later uri-prefix matches that an earlier, shorter prefix match with the same conditions already takes. */
function analyzeOverlappingPrefixes(ctx: ValidationContext, routes: readonly HTTPRoute[]): void {
  const prefixMatches: PrefixMatch[] = [];
  const seen = new Set<string>();
  let emptyMatchAt = -1;
  routes.forEach((route, n) => {
    if (!isObject(route)) return;
    const matches = items(route.match);
    if (matches.length === 0) {
      emptyMatchAt = n;
      return;
    }
    matches.forEach((m, j) => {
      if (emptyMatchAt >= 0 || !isObject(m)) return;
      const key = matchKey(m);
      if (seen.has(key)) return;
      seen.add(key);
      const prefix = isObject(m.uri) ? str(m.uri.prefix) : '';
      if (prefix === '') return;
      const toMap = (x: Record<string, unknown> | undefined) => new Map(entries(x).map(([k, v]) => [k, exactOrPrefix(v)]));
      prefixMatches.push({
        path: ['http', n, 'match', j],
        route: routeName(route, n),
        match: matchName(m, j),
        prefix,
        port: num(m.port),
        method: exactOrPrefix(m.method) || 'exact:GET',
        authority: exactOrPrefix(m.authority),
        headers: toMap(m.headers),
        queryParams: toMap(m.queryParams),
        withoutHeaders: toMap(m.withoutHeaders),
      });
    });
  });
  const sameOrNarrower = (a: Map<string, string>, b: Map<string, string>): boolean => a.size === b.size && [...a].every(([k, v]) => b.has(k) && (v === b.get(k) || v.startsWith(b.get(k)!)));
  const covers = (a: PrefixMatch, b: PrefixMatch): boolean =>
    b.prefix.startsWith(a.prefix) &&
    a.port === b.port &&
    (a.method === b.method || a.method.startsWith(b.method)) &&
    (a.authority === b.authority || a.authority.startsWith(b.authority)) &&
    sameOrNarrower(a.headers, b.headers) &&
    sameOrNarrower(a.queryParams, b.queryParams) &&
    sameOrNarrower(a.withoutHeaders, b.withoutHeaders);
  for (let i = 0; i < prefixMatches.length; i++) {
    for (let j = i + 1; j < prefixMatches.length; j++) {
      const a = prefixMatches[i]!;
      const b = prefixMatches[j]!;
      if (a.prefix === b.prefix || !covers(a, b)) continue;
      ctx.warning(b.path, `virtualService rule ${b.route} match ${b.match} of prefix ${b.prefix} is not used (duplicate/overlapping match in rule ${a.match} of prefix ${a.prefix} on ${a.route})`, 'IST0131');
    }
  }
}
