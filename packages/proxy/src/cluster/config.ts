// What a cluster does, read once from its decoded Envoy Cluster when the definition arrives, so
// the request path reads plain numbers instead of walking proto messages. Defaults are Envoy's.
import { protoDurationMs } from '@weft/mesh';
import { type Cluster__Output, type ClusterLoadAssignment__Output, decodeAny, TypeUrl, type UpstreamTlsContext__Output } from '@weft/xds';
import { checkRe2Patterns } from '../core/re2.ts';

export type DiscoveryKind = 'EDS' | 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';
export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';
/** `downstream`: the protocol the downstream request arrived with (PassthroughCluster). */
export type UpstreamProtocol = 'http1' | 'http2' | 'downstream';

export interface Limits {
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRetries: number;
}

export interface OutlierSettings {
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  maxEjectionJitterMs: number;
  maxEjectionPercent: number;
  alwaysEjectOneHost: boolean;
  consecutive5xx: number;
  enforcing5xx: number;
  consecutiveGatewayFailure: number;
  enforcingGatewayFailure: number;
  splitLocalOrigin: boolean;
  consecutiveLocalOriginFailure: number;
  enforcingLocalOriginFailure: number;
}

/** One transport socket a cluster may use: plaintext, or TLS with an UpstreamTlsContext. */
export interface TransportChoice {
  readonly name: string;
  readonly tls: UpstreamTlsContext__Output | undefined;
  /** Set for `transport_socket_matches` entries: the endpoint metadata they match (empty: any). */
  readonly match: ReadonlyMap<string, string> | undefined;
}

export interface ClusterSettings {
  readonly name: string;
  readonly kind: DiscoveryKind;
  /** The name EDS knows the cluster by. */
  readonly edsName: string;
  readonly lbPolicy: LbPolicy;
  readonly connectTimeoutMs: number;
  readonly limits: Limits;
  readonly protocol: UpstreamProtocol;
  readonly h2MaxConcurrentStreams: number;
  /** Upstream idle timeout (common_http_protocol_options.idle_timeout); undefined: keep-alive defaults. */
  readonly idleTimeoutMs: number | undefined;
  readonly maxRequestsPerConnection: number;
  readonly maxConnectionDurationMs: number | undefined;
  readonly outlier: OutlierSettings | undefined;
  /** healthy_panic_threshold in percent. */
  readonly panicThreshold: number;
  readonly localityWeighted: boolean;
  readonly ringMin: number;
  readonly ringMax: number;
  readonly maglevTableSize: number;
  readonly leastRequestChoices: number;
  readonly dnsRefreshMs: number;
  readonly dnsFamily: 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';
  readonly cleanupIntervalMs: number;
  readonly bindAddress: string | undefined;
  readonly keepaliveTimeS: number | undefined;
  /** Cluster-wide transport socket (transport_socket); undefined: plaintext. */
  readonly transport: TransportChoice | undefined;
  /** transport_socket_matches in order; the first whose match the endpoint's metadata satisfies wins. */
  readonly transportMatches: readonly TransportChoice[];
  /** Inline endpoints (STATIC, DNS clusters). */
  readonly loadAssignment: ClusterLoadAssignment__Output | undefined;
}

type Wrapped<T> = { value?: T | null } | null | undefined;

function wrapped(v: Wrapped<number | string>, fallback: number): number {
  const x = v?.value;
  return x === undefined || x === null ? fallback : Number(x);
}

// Envoy's defaults when a cluster has no thresholds for the DEFAULT priority.
const defaultLimits: Limits = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 };

function limitsOf(c: Cluster__Output): Limits {
  const t = c.circuit_breakers?.thresholds?.find((x) => !x.priority || x.priority === 'DEFAULT');
  if (!t) return defaultLimits;
  return {
    maxConnections: wrapped(t.max_connections, defaultLimits.maxConnections),
    maxPendingRequests: wrapped(t.max_pending_requests, defaultLimits.maxPendingRequests),
    maxRequests: wrapped(t.max_requests, defaultLimits.maxRequests),
    maxRetries: wrapped(t.max_retries, defaultLimits.maxRetries),
  };
}

function outlierOf(c: Cluster__Output): OutlierSettings | undefined {
  const o = c.outlier_detection;
  if (!o) return undefined;
  const baseEjectionMs = protoDurationMs(o.base_ejection_time) ?? 30_000;
  return {
    intervalMs: protoDurationMs(o.interval) ?? 10_000,
    baseEjectionMs,
    maxEjectionMs: protoDurationMs(o.max_ejection_time) ?? Math.max(300_000, baseEjectionMs),
    maxEjectionJitterMs: protoDurationMs(o.max_ejection_time_jitter) ?? 0,
    maxEjectionPercent: Math.min(100, wrapped(o.max_ejection_percent, 10)),
    alwaysEjectOneHost: o.always_eject_one_host?.value ?? false,
    consecutive5xx: wrapped(o.consecutive_5xx, 5),
    enforcing5xx: wrapped(o.enforcing_consecutive_5xx, 100),
    consecutiveGatewayFailure: wrapped(o.consecutive_gateway_failure, 5),
    enforcingGatewayFailure: wrapped(o.enforcing_consecutive_gateway_failure, 0),
    splitLocalOrigin: o.split_external_local_origin_errors ?? false,
    consecutiveLocalOriginFailure: wrapped(o.consecutive_local_origin_failure, 5),
    enforcingLocalOriginFailure: wrapped(o.enforcing_consecutive_local_origin_failure, 100),
  };
}

interface HttpSettings {
  protocol: UpstreamProtocol;
  h2MaxConcurrentStreams: number;
  idleTimeoutMs: number | undefined;
  maxRequestsPerConnection: number;
  maxConnectionDurationMs: number | undefined;
}

function httpOf(c: Cluster__Output): HttpSettings {
  const out: HttpSettings = {
    protocol: c.http2_protocol_options ? 'http2' : 'http1',
    h2MaxConcurrentStreams: wrapped(c.http2_protocol_options?.max_concurrent_streams, 100),
    idleTimeoutMs: protoDurationMs(c.common_http_protocol_options?.idle_timeout),
    maxRequestsPerConnection: wrapped(c.max_requests_per_connection, 0),
    maxConnectionDurationMs: protoDurationMs(c.common_http_protocol_options?.max_connection_duration),
  };
  const any = c.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
  if (any?.type_url !== TypeUrl.UpstreamHttpProtocolOptions) return out;
  const o = decodeAny(any, TypeUrl.UpstreamHttpProtocolOptions);
  const common = o.common_http_protocol_options;
  if (common) {
    out.idleTimeoutMs = protoDurationMs(common.idle_timeout) ?? out.idleTimeoutMs;
    out.maxRequestsPerConnection = wrapped(common.max_requests_per_connection, out.maxRequestsPerConnection);
    out.maxConnectionDurationMs = protoDurationMs(common.max_connection_duration) ?? out.maxConnectionDurationMs;
  }
  if (o.upstream_protocol_options === 'use_downstream_protocol_config') out.protocol = 'downstream';
  else if (o.upstream_protocol_options === 'auto_config') out.protocol = 'http1';
  else if (o.explicit_http_config?.protocol_config === 'http2_protocol_options') {
    out.protocol = 'http2';
    out.h2MaxConcurrentStreams = wrapped(o.explicit_http_config.http2_protocol_options?.max_concurrent_streams, 100);
  } else if (o.explicit_http_config) out.protocol = 'http1';
  return out;
}

type TransportSocket = NonNullable<Cluster__Output['transport_socket']>;
type StructValue = { stringValue?: string; kind?: string };

function transportChoice(name: string, ts: TransportSocket | null | undefined, match: ReadonlyMap<string, string> | undefined): TransportChoice {
  const any = ts?.typed_config;
  const tls = any?.type_url === TypeUrl.UpstreamTlsContext ? decodeAny(any, TypeUrl.UpstreamTlsContext) : undefined;
  // Subject alt name regexes are matched at each handshake; one RE2 refuses is refused here, as Envoy NACKs it.
  if (tls) {
    try {
      checkRe2Patterns(tls);
    } catch (err) {
      throw new Error(`transport socket ${name || '(unnamed)'}: ${(err as Error).message}`);
    }
  }
  return { name, tls, match };
}

function matchOf(fields: Record<string, StructValue> | undefined): ReadonlyMap<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of Object.entries(fields ?? {})) m.set(k, v.stringValue ?? '');
  return m;
}

function kindOf(c: Cluster__Output): DiscoveryKind {
  switch (c.type) {
    case 'EDS':
    case 'STRICT_DNS':
    case 'LOGICAL_DNS':
    case 'ORIGINAL_DST':
      return c.type;
    default:
      return 'STATIC';
  }
}

function lbOf(c: Cluster__Output): LbPolicy {
  switch (c.lb_policy) {
    case 'LEAST_REQUEST':
    case 'RANDOM':
    case 'RING_HASH':
    case 'MAGLEV':
      return c.lb_policy;
    default:
      return 'ROUND_ROBIN';
  }
}

/** Reads everything the data path needs from one cluster definition. Throws on what it cannot serve. */
export function clusterSettings(c: Cluster__Output): ClusterSettings {
  if (c.cluster_discovery_type === 'cluster_type') throw new Error(`cluster ${c.name}: custom cluster types (${c.cluster_type?.name}) are not supported`);
  const http = httpOf(c);
  const common = c.common_lb_config;
  return {
    name: c.name,
    kind: kindOf(c),
    edsName: c.eds_cluster_config?.service_name || c.name,
    lbPolicy: lbOf(c),
    connectTimeoutMs: protoDurationMs(c.connect_timeout) ?? 5000,
    limits: limitsOf(c),
    ...http,
    outlier: outlierOf(c),
    panicThreshold: common?.healthy_panic_threshold ? Number(common.healthy_panic_threshold.value ?? 0) : 50,
    localityWeighted: common?.locality_config_specifier === 'locality_weighted_lb_config',
    ringMin: wrapped(c.ring_hash_lb_config?.minimum_ring_size, 1024),
    ringMax: wrapped(c.ring_hash_lb_config?.maximum_ring_size, 8 * 1024 * 1024),
    maglevTableSize: wrapped(c.maglev_lb_config?.table_size, 65537),
    leastRequestChoices: Math.max(2, wrapped(c.least_request_lb_config?.choice_count, 2)),
    dnsRefreshMs: protoDurationMs(c.dns_refresh_rate) ?? 5000,
    dnsFamily: c.dns_lookup_family ?? 'AUTO',
    cleanupIntervalMs: protoDurationMs(c.cleanup_interval) ?? 5000,
    bindAddress: c.upstream_bind_config?.source_address?.address || undefined,
    keepaliveTimeS: c.upstream_connection_options?.tcp_keepalive?.keepalive_time?.value ?? undefined,
    transport: c.transport_socket ? transportChoice(c.transport_socket.name, c.transport_socket, undefined) : undefined,
    transportMatches: (c.transport_socket_matches ?? []).map((m) =>
      transportChoice(m.name, m.transport_socket, matchOf(m.match?.fields as Record<string, StructValue> | undefined)),
    ),
    loadAssignment: c.load_assignment ?? undefined,
  };
}

/**
 * Structural equality of two decoded messages (Buffers by content). CDS pushes carry every
 * cluster again; this decides which ones really changed, so unchanged clusters keep their state.
 */
export function sameMessage(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
  }
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameMessage(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ak = Object.keys(a);
  const bk = Object.keys(b);
  if (ak.length !== bk.length) return false;
  for (const k of ak) {
    if (!sameMessage((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
