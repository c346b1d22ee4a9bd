// EDS: one ClusterLoadAssignment per EDS cluster, endpoints grouped by locality, with the
// metadata Istio attaches (workload identity for telemetry, tlsMode for auto mTLS).
import { parseClusterKey } from '@weft/mesh';
import { isIP } from 'node:net';
import type { Endpoint, Locality, TrafficPolicy } from '@weft/model';
import type { ClusterLoadAssignment } from '@weft/xds';
import type { Generator, Proxy as MeshProxy, PushContext, XdsResource } from '../core/types.ts';
import { type Metadata, socketAddress, struct } from './envoy.ts';
import { Filters } from './names.ts';
import { effectivePolicy, excludesUnhealthyEndpoints } from './cds.ts';
import { applyLocalityLoadBalancer, effectiveLocalitySetting, type LocalityGroup, type LocalityLbEndpoints, proxyLocality, proxyTopologyLabels } from './locality.ts';

export type LbEndpoint = NonNullable<LocalityLbEndpoints['lb_endpoints']>[number];

/** `reviews-v1;default;reviews;v1;Kubernetes`: Istio's workload metadata, read by telemetry. */
function workloadMetadata(e: Endpoint): string {
  const name = e.workloadName ?? '';
  const app = e.labels['service.istio.io/canonical-name'] ?? e.labels.app ?? name;
  const version = e.labels['service.istio.io/canonical-revision'] ?? e.labels.version ?? 'latest';
  return `${name};${e.namespace};${app};${version};Kubernetes`;
}

function endpointMetadata(e: Endpoint, mtls: boolean): Metadata {
  const filter: Record<string, ReturnType<typeof struct>> = { istio: struct({ workload: workloadMetadata(e) }) };
  if (mtls) filter[Filters.transportSocketMatch] = struct({ tlsMode: 'istio' });
  return { filter_metadata: filter };
}

/** `mtls`: whether auto mTLS should pick TLS for it (default: the endpoint has a sidecar). */
export function lbEndpoint(e: Endpoint, mtls = e.tlsMode === 'istio'): LbEndpoint {
  return {
    endpoint: { address: socketAddress(e.address, e.port) },
    health_status: e.healthy ? 'HEALTHY' : 'UNHEALTHY',
    load_balancing_weight: { value: e.weight > 0 ? e.weight : 1 },
    metadata: endpointMetadata(e, mtls),
  };
}

/**
 * Istio's mtlsChecker: an endpoint gets the `tlsMode: istio` match (auto mTLS) when the
 * DestinationRule says ISTIO_MUTUAL, or, without a DestinationRule TLS mode, when it has a
 * sidecar and its own PeerAuthentication does not DISABLE mTLS on the endpoint's port.
 */
function mtlsChecker(push: PushContext, drMode: string | undefined): (e: Endpoint) => boolean {
  if (drMode !== undefined) return () => drMode === 'ISTIO_MUTUAL';
  return (e) => {
    if (e.tlsMode !== 'istio') return false;
    const pa = push.workloadPeerAuthentication(e.namespace, e.labels);
    return (pa.portLevel.get(e.port) ?? pa.mode) !== 'DISABLE';
  };
}

function localityKey(l: Locality): string {
  return `${l.region ?? ''}/${l.zone ?? ''}/${l.subzone ?? ''}`;
}

export interface EndpointOptions {
  /** gRPC accepts only IP addresses. */
  grpc?: boolean;
}

/** The assignment for one cluster name; empty (but present) when the service or subset is unknown, as Istio answers. */
export function clusterLoadAssignment(push: PushContext, proxy: MeshProxy, clusterName: string, options: EndpointOptions = {}): ClusterLoadAssignment {
  const empty: ClusterLoadAssignment = { cluster_name: clusterName, endpoints: [] };
  const key = parseClusterKey(clusterName);
  if (key?.direction !== 'outbound') return empty;
  const service = push.service(key.hostname, proxy.namespace);
  if (!service?.ports.some((p) => p.port === key.port)) return empty;
  let labels: Readonly<Record<string, string>> | undefined;
  const dr = push.destinationRule(proxy, key.hostname);
  if (key.subset) {
    const subset = dr?.spec.subsets?.find((s) => s.name === key.subset);
    if (!subset) return empty;
    labels = subset.labels ?? {};
  }
  const policy = effectivePolicy(dr?.spec, key.subset || undefined, key.port);
  const mtls = mtlsChecker(push, policy?.tls?.mode);
  const healthyOnly = excludesUnhealthyEndpoints(policy);
  const endpoints = push.endpoints(service, key.port, labels).filter((e) => {
    if (healthyOnly && !e.healthy) return false;
    if (options.grpc) return isIP(e.address) !== 0;
    return isIP(e.address) !== 0 || e.address.startsWith('unix://');
  });
  return { cluster_name: clusterName, endpoints: localityLbEndpoints(push, proxy, endpoints, policy, mtls) };
}

/**
 * Endpoints grouped by locality (weights summed), with the locality load balancing of `policy`
 * relative to the asking proxy: priorities or weights, so the result differs per proxy locality.
 * EDS assignments and DNS clusters' inline assignments alike (Istio's ApplyToLoadAssignment).
 */
export function localityLbEndpoints(
  push: PushContext,
  proxy: MeshProxy,
  endpoints: readonly Endpoint[],
  policy: TrafficPolicy | undefined,
  mtls: (e: Endpoint) => boolean = (e) => e.tlsMode === 'istio',
): LocalityLbEndpoints[] {
  const groups = new Map<string, { locality: Locality; endpoints: LbEndpoint[]; sources: Endpoint[]; weight: number }>();
  for (const e of endpoints) {
    const k = localityKey(e.locality);
    let g = groups.get(k);
    if (!g) {
      g = { locality: e.locality, endpoints: [], sources: [], weight: 0 };
      groups.set(k, g);
    }
    g.endpoints.push(lbEndpoint(e, mtls(e)));
    g.sources.push(e);
    g.weight += e.weight > 0 ? e.weight : 1;
  }
  const located: LocalityGroup[] = [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, g]) => ({
      group: {
        locality: {
          ...(g.locality.region ? { region: g.locality.region } : {}),
          ...(g.locality.zone ? { zone: g.locality.zone } : {}),
          ...(g.locality.subzone ? { sub_zone: g.locality.subzone } : {}),
        },
        lb_endpoints: g.endpoints,
        load_balancing_weight: { value: g.weight },
      },
      endpoints: g.sources,
    }));
  const setting = effectiveLocalitySetting(policy?.loadBalancer, push.mesh.localityLbSetting);
  // Nothing to apply without weights to distribute or outlier detection (the common case): skip the proxy's locality.
  if (!setting || located.length === 0 || (!setting.distribute?.length && policy?.outlierDetection === undefined)) return located.map((g) => g.group);
  const where = proxyLocality(push, proxy);
  return applyLocalityLoadBalancer(located, where, proxyTopologyLabels(proxy.labels, where), setting, policy?.outlierDetection !== undefined);
}

export function edsGenerator(clusterNames: (push: PushContext, proxy: MeshProxy) => string[], options: EndpointOptions = {}): Generator {
  return (push, proxy, request) => {
    const names = request.names?.length ? request.names : clusterNames(push, proxy);
    const out: XdsResource[] = [];
    for (const name of names) out.push({ name, resource: clusterLoadAssignment(push, proxy, name, options) });
    return out;
  };
}
