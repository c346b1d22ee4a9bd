// CDS: clusters per visible service port and DestinationRule subset, following Istio's
// cluster.go, cluster_builder.go, cluster_traffic_policy.go and cluster_tls.go.
import { BlackHoleCluster, inboundClusterKey, InboundPassthroughCluster, outboundClusterKey, parseDuration, PassthroughCluster, type ProtoDuration, protoDuration, protoDurationOf, sniClusterKey, spiffeId, spiffePrefix } from '@weft/mesh';
import type {
  ClientTLSSettings,
  Config,
  ConnectionPoolSettings,
  DestinationRuleSpec,
  Endpoint,
  LoadBalancerSettings,
  OutlierDetection,
  Service,
  ServicePort,
  TrafficPolicy,
} from '@weft/model';
import { type Cluster, encodeAny, TypeUrl } from '@weft/xds';
import type { Generator, Proxy as MeshProxy, PushContext, XdsResource } from '../core/types.ts';
import { adsConfigSource, socketAddress, struct, uniqueSorted } from './envoy.ts';
import { localityLbEndpoints } from './eds.ts';
import { inboundPorts } from './inbound.ts';
import { effectiveLocalitySetting, wantsLocalityWeightedLb } from './locality.ts';
import { Filters } from './names.ts';
import { clientTlsUpstream, grpcMutualUpstream, istioMutualUpstream, upstreamTransportSocket } from './tls.ts';

const maxUint32 = 4294967295;

type Thresholds = NonNullable<NonNullable<Cluster['circuit_breakers']>['thresholds']>[number];
type ClusterOutlierDetection = NonNullable<Cluster['outlier_detection']>;

/** The traffic policy of one cluster (Istio's MergeTrafficPolicy): subset over top level; a port-level entry replaces all four parts. */
export function effectivePolicy(dr: DestinationRuleSpec | undefined, subset: string | undefined, port: number): TrafficPolicy | undefined {
  if (!dr) return undefined;
  const atPort = (policy: TrafficPolicy | undefined): TrafficPolicy | undefined => {
    if (!policy) return undefined;
    const pl = policy.portLevelSettings?.find((p) => p.port?.number === port);
    if (!pl) return { ...policy, portLevelSettings: [] };
    return { ...policy, portLevelSettings: [], connectionPool: pl.connectionPool, outlierDetection: pl.outlierDetection, loadBalancer: pl.loadBalancer, tls: pl.tls };
  };
  const top = atPort(dr.trafficPolicy);
  const sub = subset ? dr.subsets?.find((s) => s.name === subset)?.trafficPolicy : undefined;
  if (!sub) return top;
  const merged: TrafficPolicy = { ...top };
  if (sub.connectionPool) merged.connectionPool = sub.connectionPool;
  if (sub.outlierDetection) merged.outlierDetection = sub.outlierDetection;
  if (sub.loadBalancer) merged.loadBalancer = sub.loadBalancer;
  if (sub.tls) merged.tls = sub.tls;
  if (sub.tunnel) merged.tunnel = sub.tunnel;
  if (sub.proxyProtocol) merged.proxyProtocol = sub.proxyProtocol;
  const pl = sub.portLevelSettings?.find((p) => p.port?.number === port);
  if (pl) Object.assign(merged, { connectionPool: pl.connectionPool, outlierDetection: pl.outlierDetection, loadBalancer: pl.loadBalancer, tls: pl.tls });
  return merged;
}

/** The SPIFFE identities behind a service (its declared SANs and its endpoints' service accounts). */
export function serviceIdentities(push: PushContext, service: Service, port: number): string[] {
  const td = push.mesh.trustDomain;
  const ids: string[] = [];
  for (const sa of service.serviceAccounts) ids.push(sa.startsWith(spiffePrefix) ? sa : spiffeId(td, service.namespace, sa));
  for (const e of push.endpoints(service, port)) if (e.serviceAccount) ids.push(spiffeId(td, e.namespace, e.serviceAccount));
  return uniqueSorted(ids);
}

function isHttp2(p: ServicePort): boolean {
  return p.protocol === 'HTTP2' || p.protocol === 'GRPC' || p.protocol === 'GRPC-WEB';
}

function defaultThresholds(): Thresholds {
  return {
    max_connections: { value: maxUint32 },
    max_pending_requests: { value: maxUint32 },
    max_requests: { value: maxUint32 },
    max_retries: { value: maxUint32 },
    track_remaining: true,
  };
}

function applyLoadBalancer(c: Cluster, lb: LoadBalancerSettings | undefined, grpc: boolean): void {
  c.lb_policy = grpc ? 'ROUND_ROBIN' : 'LEAST_REQUEST';
  if (!lb) return;
  const hash = lb.consistentHash;
  if (hash) {
    const tableSize = hash.maglev?.tableSize;
    if (tableSize !== undefined && !grpc) {
      c.lb_policy = 'MAGLEV';
      c.maglev_lb_config = { table_size: { value: String(tableSize) } };
    } else {
      c.lb_policy = 'RING_HASH';
      const min = hash.ringHash?.minimumRingSize ?? hash.minimumRingSize;
      c.ring_hash_lb_config = { minimum_ring_size: { value: String(min ?? 1024) } };
    }
    return;
  }
  if (grpc) return;
  switch (lb.simple) {
    case 'ROUND_ROBIN':
      c.lb_policy = 'ROUND_ROBIN';
      break;
    case 'RANDOM':
      c.lb_policy = 'RANDOM';
      break;
    case 'PASSTHROUGH':
      c.type = 'ORIGINAL_DST';
      c.lb_policy = 'CLUSTER_PROVIDED';
      delete c.eds_cluster_config;
      delete c.load_assignment;
      break;
    default:
      c.lb_policy = 'LEAST_REQUEST';
  }
}

interface CommonHttpOptions {
  idle_timeout?: ProtoDuration;
  max_requests_per_connection?: { value: number };
  max_connection_duration?: ProtoDuration;
}

interface HttpOptions {
  common: CommonHttpOptions;
  http2: boolean;
  useClientProtocol: boolean;
}

function encodeUpstreamHttp(value: {
  common_http_protocol_options?: CommonHttpOptions;
  http2?: { max_concurrent_streams?: { value: number } } | undefined;
  useClientProtocol: boolean;
}) {
  const common = value.common_http_protocol_options ?? {};
  const hasCommon = Object.keys(common).length > 0;
  return encodeAny(TypeUrl.UpstreamHttpProtocolOptions, {
    ...(hasCommon ? { common_http_protocol_options: common } : {}),
    ...(value.useClientProtocol
      ? { use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} } }
      : { explicit_http_config: value.http2 ? { http2_protocol_options: value.http2 } : { http_protocol_options: {} } }),
  });
}

/** Istio's applyConnectionPool: circuit breaker thresholds, HTTP connection settings, connect timeout, keepalive. */
function applyConnectionPool(c: Cluster, pool: ConnectionPoolSettings | undefined, port: ServicePort, grpc: boolean): void {
  const thresholds = defaultThresholds();
  const http: HttpOptions = { common: {}, http2: isHttp2(port), useClientProtocol: false };
  let h2Streams: number | undefined;
  if (pool?.http) {
    const h = pool.http;
    if ((h.http2MaxRequests ?? 0) > 0) thresholds.max_requests = { value: h.http2MaxRequests! };
    if ((h.http1MaxPendingRequests ?? 0) > 0) thresholds.max_pending_requests = { value: h.http1MaxPendingRequests! };
    if ((h.maxRetries ?? 0) > 0) thresholds.max_retries = { value: h.maxRetries! };
    const idle = protoDurationOf(h.idleTimeout);
    if (idle) http.common.idle_timeout = idle;
    if ((h.maxRequestsPerConnection ?? 0) > 0) http.common.max_requests_per_connection = { value: h.maxRequestsPerConnection! };
    if ((h.maxConcurrentStreams ?? 0) > 0) h2Streams = h.maxConcurrentStreams;
    if (h.h2UpgradePolicy === 'UPGRADE' && port.protocol === 'HTTP') http.http2 = true;
    if (h.useClientProtocol) http.useClientProtocol = true;
  }
  if (pool?.tcp) {
    const t = pool.tcp;
    const ct = protoDurationOf(t.connectTimeout);
    if (ct) c.connect_timeout = ct;
    if ((t.maxConnections ?? 0) > 0) thresholds.max_connections = { value: t.maxConnections! };
    const mcd = protoDurationOf(t.maxConnectionDuration);
    if (mcd) http.common.max_connection_duration = mcd;
    if (t.tcpKeepalive) {
      const k = t.tcpKeepalive;
      const time = k.time !== undefined ? parseDuration(k.time) : undefined;
      const interval = k.interval !== undefined ? parseDuration(k.interval) : undefined;
      c.upstream_connection_options = {
        tcp_keepalive: {
          ...(k.probes ? { keepalive_probes: { value: k.probes } } : {}),
          ...(time !== undefined ? { keepalive_time: { value: Math.floor(time) } } : {}),
          ...(interval !== undefined ? { keepalive_interval: { value: Math.floor(interval) } } : {}),
        },
      };
    }
  }
  if (!grpc) c.circuit_breakers = { thresholds: [thresholds] };
  else if (pool?.http?.http2MaxRequests) c.circuit_breakers = { thresholds: [{ max_requests: { value: pool.http.http2MaxRequests } }] };
  const isHttpPort = port.protocol === 'HTTP' || isHttp2(port);
  if (grpc || !isHttpPort) return;
  if (http.http2 || http.useClientProtocol || Object.keys(http.common).length > 0) {
    c.typed_extension_protocol_options = {
      [Filters.upstreamHttpProtocolOptions]: encodeUpstreamHttp({
        common_http_protocol_options: http.common,
        http2: http.http2 ? (h2Streams ? { max_concurrent_streams: { value: h2Streams } } : {}) : undefined,
        useClientProtocol: http.useClientProtocol,
      }),
    };
  }
}

/** Istio's applyOutlierDetection. */
function applyOutlierDetection(c: Cluster, od: OutlierDetection | undefined): void {
  if (!od) return;
  const out: ClusterOutlierDetection = { enforcing_success_rate: { value: 0 } };
  const consecutive5xx = od.consecutive5xxErrors ?? od.consecutiveErrors;
  if (consecutive5xx !== undefined) {
    out.consecutive_5xx = { value: consecutive5xx };
    out.enforcing_consecutive_5xx = { value: consecutive5xx > 0 ? 100 : 0 };
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    out.consecutive_gateway_failure = { value: od.consecutiveGatewayErrors };
    out.enforcing_consecutive_gateway_failure = { value: od.consecutiveGatewayErrors > 0 ? 100 : 0 };
  }
  const interval = protoDurationOf(od.interval);
  if (interval) out.interval = interval;
  const base = protoDurationOf(od.baseEjectionTime);
  if (base) out.base_ejection_time = base;
  if ((od.maxEjectionPercent ?? 0) > 0) out.max_ejection_percent = { value: od.maxEjectionPercent! };
  if (od.splitExternalLocalOriginErrors) {
    out.split_external_local_origin_errors = true;
    if ((od.consecutiveLocalOriginFailures ?? 0) > 0) {
      out.consecutive_local_origin_failure = { value: od.consecutiveLocalOriginFailures! };
      out.enforcing_consecutive_local_origin_failure = { value: 100 };
    }
    out.enforcing_local_origin_success_rate = { value: 0 };
  }
  c.outlier_detection = out;
  // Istio reads minHealthPercent as the proto's int32 (unset is 0) and always sets the threshold.
  const minHealthPercent = od.minHealthPercent ?? 0;
  if (minHealthPercent >= 0) c.common_lb_config = { ...c.common_lb_config, healthy_panic_threshold: { value: minHealthPercent } };
}

/**
 * Istio's applyLoadBalancer: pilot sends a service's not-ready endpoints (as UNHEALTHY), so Envoy's
 * default panic threshold (50%) would send traffic to pods that are not ready whenever half a
 * cluster is, as a one-pod subset is during its rollout. Unless outlier detection set one, the
 * threshold is 0: never panic. ORIGINAL_DST clusters get it too (Istio sets CLUSTER_PROVIDED after
 * its load balancer settings; Envoy ignores it there).
 */
function disablePanicThreshold(c: Cluster): void {
  if (c.common_lb_config?.healthy_panic_threshold) return;
  c.common_lb_config = { ...c.common_lb_config, healthy_panic_threshold: { value: 0 } };
}

/**
 * Whether a cluster's assignment leaves out its UNHEALTHY endpoints: Istio sends them, except where
 * outlier detection asks for a minimum health percentage (a panic threshold above 0), since Envoy
 * would balance over them in panic.
 */
export function excludesUnhealthyEndpoints(policy: TrafficPolicy | undefined): boolean {
  return (policy?.outlierDetection?.minHealthPercent ?? 0) > 0;
}

export interface ClusterOptions {
  grpc?: boolean;
}

function serviceMetadata(service: Service, port: number, subset: string | undefined, dr: Config<DestinationRuleSpec> | undefined) {
  const parts = service.hostname.split('.');
  const name = service.hostname.endsWith(`.svc.${parts.slice(3).join('.')}`) && parts.length > 3 ? parts[0]! : service.hostname;
  const istio: Record<string, unknown> = {
    services: [{ host: service.hostname, name, namespace: service.namespace }],
    default_original_port: port,
  };
  if (subset) istio.subset = subset;
  if (dr) istio.config = `/apis/networking.istio.io/v1/namespaces/${dr.metadata.namespace}/destination-rule/${dr.metadata.name}`;
  return { filter_metadata: { istio: struct(istio) } };
}

/** Istio's TLS selection: explicit DestinationRule TLS, else auto mTLS toward sidecars, else plaintext. */
function applyTls(c: Cluster, tls: ClientTLSSettings | undefined, service: Service, port: ServicePort, subset: string, push: PushContext, grpc: boolean): void {
  const h2 = isHttp2(port);
  const sni = sniClusterKey(service.hostname, port.port, subset);
  const sans = () => (tls?.subjectAltNames?.length ? [...tls.subjectAltNames] : serviceIdentities(push, service, port.port));
  const mode = tls?.mode;
  if (mode === 'ISTIO_MUTUAL') {
    const ctx = grpc ? grpcMutualUpstream(sans(), tls?.sni ?? sni) : istioMutualUpstream(sans(), tls?.sni ?? sni, h2);
    c.transport_socket = upstreamTransportSocket(ctx);
    return;
  }
  if (mode === 'SIMPLE' || mode === 'MUTUAL') {
    if (grpc) return;
    const ctx = clientTlsUpstream(tls!, undefined, h2);
    if (ctx) c.transport_socket = upstreamTransportSocket(ctx);
    return;
  }
  if (mode === 'DISABLE' || grpc) return;
  // Auto mTLS: mTLS to endpoints labelled as having a sidecar, plaintext to the rest.
  if (!push.mesh.enableAutoMtls || service.location === 'MESH_EXTERNAL' || c.type === 'ORIGINAL_DST') return;
  c.transport_socket_matches = [
    {
      name: 'tlsMode-istio',
      match: struct({ tlsMode: 'istio' }),
      transport_socket: upstreamTransportSocket(istioMutualUpstream(sans(), sni, h2)),
    },
    {
      name: 'tlsMode-disabled',
      match: {},
      transport_socket: { name: Filters.rawBufferTransportSocket, typed_config: encodeAny(TypeUrl.RawBuffer, {}) },
    },
  ];
}

/** One outbound cluster: `outbound|<port>|<subset>|<host>`. */
export function outboundClusterFor(
  push: PushContext,
  proxy: MeshProxy,
  service: Service,
  port: ServicePort,
  subset: { name: string; labels?: Record<string, string> } | undefined,
  options: ClusterOptions = {},
): Cluster {
  const grpc = options.grpc ?? false;
  const name = outboundClusterKey(service.hostname, port.port, subset?.name ?? '');
  const dr = push.destinationRule(proxy, service.hostname);
  const c: Cluster = { name, connect_timeout: protoDuration(push.mesh.connectTimeoutSeconds) };
  if (grpc) {
    c.type = 'EDS';
    c.eds_cluster_config = { eds_config: adsConfigSource(false), service_name: name };
  } else {
    switch (service.resolution) {
      case 'DNS':
      case 'DNS_ROUND_ROBIN': {
        c.type = service.resolution === 'DNS' ? 'STRICT_DNS' : 'LOGICAL_DNS';
        c.dns_lookup_family = 'V4_ONLY';
        c.respect_dns_ttl = true;
        let eps = push.endpoints(service, port.port, subset?.labels);
        if (eps.length === 0 && !service.hostname.startsWith('*')) eps = [dnsSelfEndpoint(service, port)];
        // LOGICAL_DNS takes exactly one host.
        if (c.type === 'LOGICAL_DNS') eps = eps.slice(0, 1);
        // Grouped by locality, with the DestinationRule's locality load balancing (Istio's ApplyToCluster).
        c.load_assignment = { cluster_name: name, endpoints: localityLbEndpoints(push, proxy, eps, effectivePolicy(dr?.spec, subset?.name, port.port)) };
        break;
      }
      case 'NONE':
        // A gateway has no original destination to pass through to: it balances over the
        // endpoints (Istio's cluster builder falls back to EDS for routers; the Gateway API's
        // backendRefs to headless Services need it).
        if (proxy.type !== 'router') {
          c.type = 'ORIGINAL_DST';
          break;
        }
        c.type = 'EDS';
        c.eds_cluster_config = { eds_config: adsConfigSource(), service_name: name };
        break;
      default:
        c.type = 'EDS';
        c.eds_cluster_config = { eds_config: adsConfigSource(), service_name: name };
    }
    c.metadata = serviceMetadata(service, port.port, subset?.name, dr);
  }
  const policy = effectivePolicy(dr?.spec, subset?.name, port.port);
  applyLoadBalancer(c, policy?.loadBalancer, grpc);
  if (c.type === 'ORIGINAL_DST') c.lb_policy = 'CLUSTER_PROVIDED';
  applyConnectionPool(c, policy?.connectionPool, port, grpc);
  applyOutlierDetection(c, policy?.outlierDetection);
  if (!grpc) disablePanicThreshold(c);
  if (c.lb_policy !== 'CLUSTER_PROVIDED' && wantsLocalityWeightedLb(effectiveLocalitySetting(policy?.loadBalancer, push.mesh.localityLbSetting), c.outlier_detection !== undefined)) {
    c.common_lb_config = { ...c.common_lb_config, locality_weighted_lb_config: {} };
  }
  applyTls(c, policy?.tls, service, port, subset?.name ?? '', push, grpc);
  return c;
}

function dnsSelfEndpoint(service: Service, port: ServicePort): Endpoint {
  return {
    address: service.hostname,
    port: port.targetPort ?? port.port,
    servicePort: port,
    hostname: service.hostname,
    namespace: service.namespace,
    labels: {},
    locality: {},
    weight: 1,
    healthy: true,
    tlsMode: 'disabled',
  };
}

/** Clusters for every port of `service` and every subset of its DestinationRule. */
export function clustersForService(push: PushContext, proxy: MeshProxy, service: Service, options: ClusterOptions = {}): Cluster[] {
  const out: Cluster[] = [];
  const dr = push.destinationRule(proxy, service.hostname);
  for (const port of service.ports) {
    if (port.protocol === 'UDP') continue;
    out.push(outboundClusterFor(push, proxy, service, port, undefined, options));
    for (const subset of dr?.spec.subsets ?? []) {
      out.push(outboundClusterFor(push, proxy, service, port, { name: subset.name, ...(subset.labels ? { labels: subset.labels } : {}) }, options));
    }
  }
  return out;
}

export function passthroughCluster(push: PushContext): Cluster {
  return {
    name: PassthroughCluster,
    type: 'ORIGINAL_DST',
    connect_timeout: protoDuration(push.mesh.connectTimeoutSeconds),
    lb_policy: 'CLUSTER_PROVIDED',
    circuit_breakers: { thresholds: [defaultThresholds()] },
    typed_extension_protocol_options: {
      [Filters.upstreamHttpProtocolOptions]: encodeUpstreamHttp({ useClientProtocol: true }),
    },
  };
}

export function blackHoleCluster(push: PushContext): Cluster {
  return { name: BlackHoleCluster, type: 'STATIC', connect_timeout: protoDuration(push.mesh.connectTimeoutSeconds) };
}

/** Unmatched inbound traffic goes to its original destination, from Istio's inbound source address 127.0.0.6. */
export function inboundPassthroughCluster(push: PushContext): Cluster {
  return {
    name: InboundPassthroughCluster,
    type: 'ORIGINAL_DST',
    connect_timeout: protoDuration(push.mesh.connectTimeoutSeconds),
    lb_policy: 'CLUSTER_PROVIDED',
    circuit_breakers: { thresholds: [defaultThresholds()] },
    upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } },
    typed_extension_protocol_options: {
      [Filters.upstreamHttpProtocolOptions]: encodeUpstreamHttp({ useClientProtocol: true }),
    },
  };
}

/** `inbound|<port>||`: the local application on loopback, where the sidecar forwards inbound traffic. */
export function inboundClusterFor(push: PushContext, port: number, hostname: string, endpoint: { address: string; port: number } = { address: '127.0.0.1', port }): Cluster {
  const name = inboundClusterKey(port);
  return {
    name,
    type: 'STATIC',
    connect_timeout: protoDuration(push.mesh.connectTimeoutSeconds),
    lb_policy: 'CLUSTER_PROVIDED',
    circuit_breakers: { thresholds: [defaultThresholds()] },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(endpoint.address, endpoint.port) } }] }] },
    metadata: { filter_metadata: { istio: struct({ services: [{ host: hostname }] }) } },
  };
}

/** All clusters of a sidecar or gateway. */
export function envoyClusters(push: PushContext, proxy: MeshProxy): Cluster[] {
  const out: Cluster[] = [];
  for (const service of push.sidecarScope(proxy).services) out.push(...clustersForService(push, proxy, service));
  out.push(blackHoleCluster(push), passthroughCluster(push));
  if (proxy.type === 'sidecar') {
    out.push(inboundPassthroughCluster(push));
    for (const p of inboundPorts(push, proxy)) out.push(inboundClusterFor(push, p.targetPort, p.service.hostname, p.endpoint));
  }
  return out;
}

export const envoyCds: Generator = (push, proxy, request) => {
  const wanted = request.names?.length ? new Set(request.names) : undefined;
  const out: XdsResource[] = [];
  for (const c of envoyClusters(push, proxy)) {
    if (wanted && !wanted.has(c.name!)) continue;
    out.push({ name: c.name!, resource: c });
  }
  return out;
};

/** Endpoint subset labels for a cluster's subset, from the DestinationRule the proxy sees. */
export function subsetLabels(push: PushContext, proxy: MeshProxy, hostname: string, subset: string): Record<string, string> | undefined | null {
  if (!subset) return undefined;
  const s = push.destinationRule(proxy, hostname)?.spec.subsets?.find((x) => x.name === subset);
  if (!s) return null;
  return s.labels ?? {};
}

