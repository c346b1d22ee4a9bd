// Names Istio gives to generated resources. Proxies, tools and dashboards parse these, so they
// must match Istio's byte for byte.

export const PassthroughCluster = 'PassthroughCluster';
export const BlackHoleCluster = 'BlackHoleCluster';
export const InboundPassthroughCluster = 'InboundPassthroughCluster';
export const VirtualOutboundListener = 'virtualOutbound';
export const VirtualInboundListener = 'virtualInbound';
/** The bootstrap cluster through which Envoy reaches the agent's SDS server. */
export const SdsClusterName = 'sds-grpc';
/** SDS resource names of the workload certificate and the mesh root. */
export const WorkloadCertSecret = 'default';
export const RootCertSecret = 'ROOTCA';
/** SDS resource prefix of gateway credentials (`credentialName`) served by pilot. */
export const CredentialSecretPrefix = 'kubernetes://';
/** Suffix Istio appends to a credential's name for its CA bundle. */
export const CredentialCaSuffix = '-cacert';

export const OutboundCapturePort = 15001;
export const InboundCapturePort = 15006;

/** Filter chain names of the virtual listeners (Istio's constants). */
export const FilterChainNames = {
  virtualOutboundBlackhole: 'virtualOutbound-blackhole',
  virtualOutboundCatchAllTcp: 'virtualOutbound-catchall-tcp',
  virtualInboundBlackhole: 'virtualInbound-blackhole',
  virtualInboundCatchAllHttp: 'virtualInbound-catchall-http',
  virtualInbound: 'virtualInbound',
  passthrough: 'PassthroughFilterChain',
} as const;

/** Well-known Envoy extension names. */
export const Filters = {
  httpConnectionManager: 'envoy.filters.network.http_connection_manager',
  tcpProxy: 'envoy.filters.network.tcp_proxy',
  router: 'envoy.filters.http.router',
  fault: 'envoy.filters.http.fault',
  cors: 'envoy.filters.http.cors',
  originalDst: 'envoy.filters.listener.original_dst',
  tlsInspector: 'envoy.filters.listener.tls_inspector',
  httpInspector: 'envoy.filters.listener.http_inspector',
  tlsTransportSocket: 'envoy.transport_sockets.tls',
  rawBufferTransportSocket: 'envoy.transport_sockets.raw_buffer',
  upstreamHttpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  previousHosts: 'envoy.retry_host_predicates.previous_hosts',
  transportSocketMatch: 'envoy.transport_socket_match',
} as const;

export type TrafficDirection = 'outbound' | 'inbound';

/** `outbound|9080|v1|reviews.default.svc.cluster.local`: Istio's subset key. */
export function subsetKey(direction: TrafficDirection, subset: string, hostname: string, port: number): string {
  return `${direction}|${port}|${subset}|${hostname}`;
}

export function outboundCluster(hostname: string, port: number, subset = ''): string {
  return subsetKey('outbound', subset, hostname, port);
}

/** `inbound|9080||`: the cluster to the local application. */
export function inboundCluster(port: number): string {
  return `inbound|${port}||`;
}

export interface ParsedSubsetKey {
  direction: TrafficDirection;
  port: number;
  subset: string;
  hostname: string;
}

/** Parses `outbound|9080|v1|reviews...`; undefined for names that are not subset keys (PassthroughCluster...). */
export function parseSubsetKey(name: string): ParsedSubsetKey | undefined {
  const parts = name.split('|');
  if (parts.length !== 4) return undefined;
  const [direction, port, subset, hostname] = parts as [string, string, string, string];
  if (direction !== 'outbound' && direction !== 'inbound') return undefined;
  const n = Number(port);
  if (!Number.isInteger(n) || n <= 0) return undefined;
  return { direction, port: n, subset, hostname };
}

/** `outbound_.9080_.v1_.reviews.default.svc.cluster.local`: the SNI Istio sets for ISTIO_MUTUAL. */
export function dnsSrvSubsetKey(hostname: string, port: number, subset = ''): string {
  return `outbound_.${port}_.${subset}_.${hostname}`;
}

/** `0.0.0.0_9080`, `10.0.0.1_3306`: listener names. */
export function listenerName(bind: string, port: number): string {
  return `${bind}_${port}`;
}

/** `reviews.default.svc.cluster.local:9080`; IPv6 addresses in brackets. */
export function domainName(host: string, port: number): string {
  return `${ipv6Compliant(host)}:${port}`;
}

export function ipv6Compliant(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Route configuration names of gateways: `http.80`, `https.443.https.bookinfo-gateway.default`. */
export function gatewayRouteName(protocol: 'http' | 'https', port: number, portName?: string, gateway?: { name: string; namespace: string }): string {
  if (protocol === 'http' || !gateway) return `http.${port}`;
  return `https.${port}.${portName ?? ''}.${gateway.name}.${gateway.namespace}`;
}
