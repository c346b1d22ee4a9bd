// Names Istio gives to generated resources that only pilot writes. Those other parts read too
// (cluster keys, special clusters, SDS names, virtual listeners) are @weft/mesh's.

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
