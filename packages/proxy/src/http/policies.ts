// Route action policies compiled once: retries (Envoy's RetryPolicy and RetryStateImpl rules),
// consistent-hash keys (HashPolicy) and request mirroring.
import { protoDurationMs } from '@weft/mesh';
import { createHash } from 'node:crypto';
import type { RouteConfiguration__Output } from '@weft/xds';
import { compileHeaderMatcher, compileRegexRewrite, type Fraction, fraction, type HeaderTest, type RegexRewrite } from './matchers.ts';
import { RequestView } from './view.ts';

type RouteAction = NonNullable<RouteConfiguration__Output['virtual_hosts'][number]['routes'][number]['route']>;
export type RetryPolicyConfig = NonNullable<RouteAction['retry_policy']>;
type HashPolicyConfig = RouteAction['hash_policy'][number];
type MirrorPolicyConfig = RouteAction['request_mirror_policies'][number];

/** retry_on conditions as bits. */
export const RetryOn = {
  x5xx: 1 << 0,
  gatewayError: 1 << 1,
  connectFailure: 1 << 2,
  retriable4xx: 1 << 3,
  refusedStream: 1 << 4,
  retriableStatusCodes: 1 << 5,
  reset: 1 << 6,
  retriableHeaders: 1 << 7,
  resetBeforeRequest: 1 << 8,
  grpcCancelled: 1 << 9,
  grpcDeadlineExceeded: 1 << 10,
  grpcResourceExhausted: 1 << 11,
  grpcUnavailable: 1 << 12,
  grpcInternal: 1 << 13,
} as const;

const retryOnNames: Record<string, number> = {
  '5xx': RetryOn.x5xx,
  'gateway-error': RetryOn.gatewayError,
  'connect-failure': RetryOn.connectFailure,
  'retriable-4xx': RetryOn.retriable4xx,
  'refused-stream': RetryOn.refusedStream,
  'retriable-status-codes': RetryOn.retriableStatusCodes,
  reset: RetryOn.reset,
  'reset-before-request': RetryOn.resetBeforeRequest,
  'retriable-headers': RetryOn.retriableHeaders,
  cancelled: RetryOn.grpcCancelled,
  'deadline-exceeded': RetryOn.grpcDeadlineExceeded,
  'resource-exhausted': RetryOn.grpcResourceExhausted,
  unavailable: RetryOn.grpcUnavailable,
  internal: RetryOn.grpcInternal,
};

const grpcRetryBits: Record<string, number> = {
  '1': RetryOn.grpcCancelled,
  '4': RetryOn.grpcDeadlineExceeded,
  '8': RetryOn.grpcResourceExhausted,
  '13': RetryOn.grpcInternal,
  '14': RetryOn.grpcUnavailable,
};

export interface CompiledRetry {
  readonly on: number;
  readonly numRetries: number;
  readonly perTryTimeoutMs: number | undefined;
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
  /** retry_host_predicate previous_hosts: later attempts avoid endpoints already tried. */
  readonly previousHosts: boolean;
  readonly statusCodes: ReadonlySet<number>;
  readonly retriableHeaders: readonly HeaderTest[];
}

export function compileRetryPolicy(p: RetryPolicyConfig | null | undefined): CompiledRetry | undefined {
  if (!p) return undefined;
  let on = 0;
  for (const raw of p.retry_on.split(',')) {
    const bit = retryOnNames[raw.trim()];
    if (bit) on |= bit;
  }
  const base = protoDurationMs(p.retry_back_off?.base_interval) || 25;
  const max = protoDurationMs(p.retry_back_off?.max_interval) || base * 10;
  return {
    on,
    numRetries: p.num_retries ? p.num_retries.value : 1,
    perTryTimeoutMs: protoDurationMs(p.per_try_timeout) || undefined,
    baseIntervalMs: base,
    maxIntervalMs: Math.max(max, base),
    previousHosts: p.retry_host_predicate.some((h) => h.name === 'envoy.retry_host_predicates.previous_hosts'),
    statusCodes: new Set(p.retriable_status_codes),
    retriableHeaders: p.retriable_headers.map(compileHeaderMatcher),
  };
}

/** Should a response with this status/headers be retried under the policy? */
export function retriableResponse(r: CompiledRetry, status: number, headers: Record<string, string | string[] | undefined>): boolean {
  const on = r.on;
  if (on & RetryOn.x5xx && status >= 500 && status < 600) return true;
  if (on & RetryOn.gatewayError && (status === 502 || status === 503 || status === 504)) return true;
  if (on & RetryOn.retriable4xx && status === 409) return true;
  if (on & RetryOn.retriableStatusCodes && r.statusCodes.has(status)) return true;
  if (on & RetryOn.retriableHeaders && r.retriableHeaders.length > 0) {
    const view = new RequestView('', '', '', '', headers);
    if (r.retriableHeaders.some((h) => h.test(view))) return true;
  }
  const grpc = headers['grpc-status'];
  if (typeof grpc === 'string') {
    const bit = grpcRetryBits[grpc];
    if (bit && on & bit) return true;
  }
  return false;
}

/** Why an attempt failed before response headers; `max-stream-duration` is the route's max_stream_duration (a local reset). */
export type ResetKind = 'connect-failure' | 'refused-stream' | 'reset' | 'timeout' | 'max-stream-duration' | 'overflow' | 'no-healthy-upstream';

/** Envoy's wouldRetryFromReset: overflow and no-healthy-upstream never retry. */
export function retriableReset(r: CompiledRetry, kind: ResetKind): boolean {
  if (kind === 'overflow' || kind === 'no-healthy-upstream') return false;
  const on = r.on;
  if (on & RetryOn.reset) return true;
  if (on & (RetryOn.x5xx | RetryOn.gatewayError)) return true;
  if (kind === 'refused-stream' && on & RetryOn.refusedStream) return true;
  if (kind === 'connect-failure' && on & (RetryOn.connectFailure | RetryOn.resetBeforeRequest)) return true;
  return false;
}

/**
 * Envoy's JitteredExponentialBackOffStrategy: the n-th retry (1-based) waits a random time in
 * [0, min(base * 2^(n-1), max)).
 */
export function backoffMs(r: CompiledRetry, retry: number, random: () => number): number {
  const interval = Math.min(r.baseIntervalMs * 2 ** Math.max(0, retry - 1), r.maxIntervalMs);
  return Math.floor(random() * interval);
}

export interface CookieToSet {
  name: string;
  path: string;
  ttlSeconds: number;
  attributes: readonly { name: string; value: string }[];
}

interface HashContext {
  view: RequestView;
  sourceAddress: string;
  /** Remote and local `address:port` of the downstream connection (seed of a generated cookie). */
  connectionKey: string;
}

type HashFn = (ctx: HashContext, setCookie: (c: CookieToSet, value: string) => void) => string | undefined;

export interface CompiledHashPolicy {
  readonly parts: readonly { fn: HashFn; terminal: boolean }[];
}

function headerHash(name: string, rewrite: RegexRewrite | undefined): HashFn {
  const n = name.toLowerCase();
  return ({ view }) => {
    const v = view.header(n);
    if (v === undefined) return undefined;
    return rewrite ? rewrite.re.globalReplace(v, rewrite.substitution) : v;
  };
}

function cookieValue(view: RequestView, name: string): string | undefined {
  const raw = view.header('cookie');
  if (!raw) return undefined;
  for (const part of raw.split(/;\s*|,/)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v;
  }
  return undefined;
}

function cookieHash(c: NonNullable<HashPolicyConfig['cookie']>): HashFn {
  const ttl = c.ttl ? (protoDurationMs(c.ttl) ?? 0) / 1000 : undefined;
  const spec: CookieToSet | undefined = ttl === undefined ? undefined : { name: c.name, path: c.path, ttlSeconds: Math.floor(ttl), attributes: c.attributes };
  return (ctx, setCookie) => {
    const v = cookieValue(ctx.view, c.name);
    if (v !== undefined) return v;
    if (!spec) return undefined;
    // Envoy derives the value from the connection's addresses, so racing requests on one connection agree.
    const generated = createHash('sha256').update(ctx.connectionKey).digest('hex').slice(0, 16);
    setCookie(spec, generated);
    return generated;
  };
}

export function compileHashPolicy(list: readonly HashPolicyConfig[]): CompiledHashPolicy | undefined {
  const parts: { fn: HashFn; terminal: boolean }[] = [];
  for (const p of list) {
    let fn: HashFn | undefined;
    switch (p.policy_specifier) {
      case 'header': {
        fn = headerHash(p.header!.header_name, compileRegexRewrite(p.header?.regex_rewrite));
        break;
      }
      case 'cookie':
        fn = cookieHash(p.cookie!);
        break;
      case 'connection_properties':
        if (p.connection_properties?.source_ip) fn = (ctx) => ctx.sourceAddress || undefined;
        break;
      case 'query_parameter': {
        const name = p.query_parameter!.name;
        fn = ({ view }) => view.queryParam(name);
        break;
      }
      default:
        break;
    }
    if (fn) parts.push({ fn, terminal: p.terminal });
  }
  return parts.length > 0 ? { parts } : undefined;
}

/**
 * The consistent-hash key: the values of the policies that produced one, in order, stopping after
 * a terminal policy that produced one (Envoy combines the hashes the same way). Undefined when
 * none did (the load balancer then picks at random).
 */
export function hashKey(p: CompiledHashPolicy, ctx: HashContext, setCookie: (c: CookieToSet, value: string) => void): string | undefined {
  let key: string | undefined;
  for (const part of p.parts) {
    const v = part.fn(ctx, setCookie);
    if (v === undefined) continue;
    key = key === undefined ? v : `${key}\n${v}`;
    if (part.terminal) break;
  }
  return key;
}

/** `name="value"; Max-Age=N; Path=/p; attr=v; HttpOnly`, as Envoy's makeSetCookieValue writes it. */
export function setCookieValue(c: CookieToSet, value: string): string {
  let out = `${c.name}="${value}"`;
  if (c.ttlSeconds > 0) out += `; Max-Age=${c.ttlSeconds}`;
  if (c.path) out += `; Path=${c.path}`;
  for (const a of c.attributes) out += a.value ? `; ${a.name}=${a.value}` : `; ${a.name}`;
  return `${out}; HttpOnly`;
}

export interface CompiledMirror {
  readonly cluster: string;
  readonly clusterHeader: string;
  readonly fraction: Fraction;
  readonly appendShadowSuffix: boolean;
}

export function compileMirrors(list: readonly MirrorPolicyConfig[]): CompiledMirror[] {
  return list
    .filter((m) => m.cluster || m.cluster_header)
    .map((m) => ({
      cluster: m.cluster,
      clusterHeader: m.cluster_header.toLowerCase(),
      fraction: fraction(m.runtime_fraction?.default_value),
      appendShadowSuffix: !m.disable_shadow_host_suffix_append,
    }));
}

/** `foo:8080` -> `foo-shadow:8080`; `[::1]:80` -> `[::1]-shadow:80` (Envoy's shadowAppendedHost). */
export function shadowAuthority(authority: string): string {
  const port = portStart(authority);
  return port < 0 ? `${authority}-shadow` : `${authority.slice(0, port)}-shadow${authority.slice(port)}`;
}

/** Index of the `:port` part of an authority, or -1 (IPv6 literals in brackets are respected). */
export function portStart(authority: string): number {
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    return close >= 0 && authority[close + 1] === ':' ? close + 1 : -1;
  }
  const i = authority.lastIndexOf(':');
  if (i < 0) return -1;
  // A bare IPv6 address without brackets has several colons: no port.
  if (authority.indexOf(':') !== i) return -1;
  for (let j = i + 1; j < authority.length; j++) {
    const c = authority.charCodeAt(j);
    if (c < 48 || c > 57) return -1;
  }
  return i + 1 < authority.length ? i : -1;
}
