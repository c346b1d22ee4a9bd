// Cluster names Istio generates (BuildSubsetKey, BuildInboundSubsetKey, BuildDNSSrvSubsetKey).
// Proxies, tools and dashboards parse them, so they must match Istio's byte for byte.

export type TrafficDirection = 'outbound' | 'inbound';

/** The parts of a cluster key `outbound|9080|v1|reviews.default.svc.cluster.local`. */
export interface ClusterKey {
  direction: TrafficDirection;
  port: number;
  /** '' when the key names no subset. */
  subset: string;
  /** '' for inbound keys (`inbound|9080||`). */
  hostname: string;
}

/** `outbound|9080|v1|reviews.default.svc.cluster.local`: Istio's subset key. */
export function clusterKey(direction: TrafficDirection, port: number, subset: string, hostname: string): string {
  return `${direction}|${port}|${subset}|${hostname}`;
}

/** `outbound|<port>|<subset>|<hostname>`; no subset by default. */
export function outboundClusterKey(hostname: string, port: number, subset = ''): string {
  return clusterKey('outbound', port, subset, hostname);
}

/** `inbound|9080||`: a sidecar's cluster to its local application on that port. */
export function inboundClusterKey(port: number): string {
  return clusterKey('inbound', port, '', '');
}

/** Parses a cluster key; undefined for names of another shape (PassthroughCluster, a gateway's own names...). */
export function parseClusterKey(name: string): ClusterKey | undefined {
  const parts = name.split('|');
  if (parts.length !== 4) return undefined;
  const [direction, port, subset, hostname] = parts as [string, string, string, string];
  if (direction !== 'outbound' && direction !== 'inbound') return undefined;
  if (!/^[1-9]\d{0,4}$/.test(port) || Number(port) > 65535) return undefined;
  return { direction, port: Number(port), subset, hostname };
}

/** `outbound_.9080_.v1_.reviews.default.svc.cluster.local`: the SNI Istio sets for ISTIO_MUTUAL (BuildDNSSrvSubsetKey). */
export function sniClusterKey(hostname: string, port: number, subset = ''): string {
  return `outbound_.${port}_.${subset}_.${hostname}`;
}
