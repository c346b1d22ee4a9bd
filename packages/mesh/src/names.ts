// Names Istio gives to resources every proxy and tool knows by name.

/** ALLOW_ANY's destination: the original destination of the connection. */
export const PassthroughCluster = 'PassthroughCluster';
/** REGISTRY_ONLY's destination: nowhere. */
export const BlackHoleCluster = 'BlackHoleCluster';
/** Inbound traffic to a port no service declares: the original destination on the workload. */
export const InboundPassthroughCluster = 'InboundPassthroughCluster';
/** The split-by-family variants older Istio versions generate; telemetry treats them like the others. */
export const InboundPassthroughClusterIpv4 = 'InboundPassthroughClusterIpv4';
export const InboundPassthroughClusterIpv6 = 'InboundPassthroughClusterIpv6';

const specialClusters: ReadonlySet<string> = new Set([
  PassthroughCluster,
  BlackHoleCluster,
  InboundPassthroughCluster,
  InboundPassthroughClusterIpv4,
  InboundPassthroughClusterIpv6,
]);

/** Clusters that are no service: Istio's metrics report their name as the destination service name. */
export function isSpecialCluster(name: string): boolean {
  return specialClusters.has(name);
}

/** The bootstrap cluster through which Envoy reaches the agent's SDS server. */
export const SdsClusterName = 'sds-grpc';

/** The listeners capture sends traffic to (ports 15001 and 15006). */
export const VirtualOutboundListener = 'virtualOutbound';
export const VirtualInboundListener = 'virtualInbound';
