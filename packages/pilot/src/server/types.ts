// xDS type facts the server needs: order, wildcard rules, and which config kinds affect which types.
import { parseClusterKey } from '@weft/mesh';
import { TypeUrl } from '@weft/xds';
import type { Generator } from '../core/types.ts';

/** Generators by type URL: `{ [TypeUrl.Cluster]: cds, ... }`. */
export type GeneratorSet = Readonly<Record<string, Generator>>;

/** Generator sets by the proxy's `generator` (node metadata `GENERATOR`); `grpc` falls back to `envoy`. */
export interface Generators {
  envoy: GeneratorSet;
  grpc?: GeneratorSet;
}

/**
 * Order of a full push: clusters before their endpoints, listeners before their routes, so a
 * client never holds a reference to something it has not been sent (Istio's PushOrder).
 */
export const pushOrder: readonly string[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  // A new route configuration's virtual hosts (VHDS) before the configuration itself, so that a
  // client never serves it without them.
  TypeUrl.VirtualHost,
  TypeUrl.RouteConfiguration,
  TypeUrl.Secret,
];

/** Listener and Cluster subscriptions with no names (or `*`) mean "everything"; other types list names. */
export function isWildcardType(typeUrl: string): boolean {
  return typeUrl === TypeUrl.Listener || typeUrl === TypeUrl.Cluster;
}

/**
 * In state of the world, every Listener and Cluster response carries the full set (a resource
 * left out is deleted); responses of other types may carry only what changed.
 */
export function isFullStateType(typeUrl: string): boolean {
  return isWildcardType(typeUrl);
}

const shortNames: Record<string, string> = {
  [TypeUrl.Listener]: 'lds',
  [TypeUrl.RouteConfiguration]: 'rds',
  [TypeUrl.Cluster]: 'cds',
  [TypeUrl.ClusterLoadAssignment]: 'eds',
  [TypeUrl.Secret]: 'sds',
  [TypeUrl.VirtualHost]: 'vhds',
};

/** `lds`, `rds`, `cds`, `eds`, `sds`, or the message name for other types (metric labels, logs). */
export function shortTypeName(typeUrl: string): string {
  return shortNames[typeUrl] ?? typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** Types in push order: the known ones first, then the rest alphabetically. */
export function orderTypes(types: Iterable<string>): string[] {
  const rank = (t: string) => {
    const i = pushOrder.indexOf(t);
    return i < 0 ? pushOrder.length : i;
  };
  return [...types].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const L = TypeUrl.Listener;
const R = TypeUrl.RouteConfiguration;
const C = TypeUrl.Cluster;
const E = TypeUrl.ClusterLoadAssignment;
/** Virtual hosts (VHDS) change wherever route configurations do. */
const V = TypeUrl.VirtualHost;

/**
 * xDS types a change of each config kind can alter (after Istio's per-generator skip lists). Kinds
 * not listed affect every type. Kinds mapped to nothing reach proxies through registry changes
 * (WorkloadEntry: the registry reports which endpoints changed).
 */
const affectedByKind: Record<string, readonly string[]> = {
  'networking.istio.io/VirtualService': [L, R, V],
  'networking.istio.io/DestinationRule': [C, E, R, V],
  'networking.istio.io/Gateway': [L, R, V, C],
  'networking.istio.io/WorkloadEntry': [],
  'networking.istio.io/WorkloadGroup': [],
  'security.istio.io/PeerAuthentication': [L, C, E],
  'security.istio.io/AuthorizationPolicy': [L],
  'security.istio.io/RequestAuthentication': [L],
  'gateway.networking.k8s.io/HTTPRoute': [L, R, V, C],
  'gateway.networking.k8s.io/GRPCRoute': [L, R, V, C],
  'gateway.networking.k8s.io/Gateway': [L, R, V, C],
};

/** Types a config change of `groupKind` affects; `undefined` means all. */
export function typesAffectedBy(groupKind: string): readonly string[] | undefined {
  return affectedByKind[groupKind];
}

const hostOfCluster = new Map<string, string | undefined>();
/** The cluster names seen for each host (the inverse of hostOfCluster), so an endpoint push finds a proxy's few affected names without scanning its thousand. */
const clustersOfHost = new Map<string, string[]>();
const maxRemembered = 500_000;

/**
 * The service hostname of a cluster name (`outbound|9080|v1|reviews.default.svc.cluster.local`),
 * or undefined for names of another shape (inbound, passthrough). Remembered: endpoint-only
 * pushes ask this for every EDS name of every proxy.
 */
export function clusterHost(clusterName: string): string | undefined {
  if (hostOfCluster.has(clusterName)) return hostOfCluster.get(clusterName);
  const key = parseClusterKey(clusterName);
  const host = key?.direction === 'outbound' ? key.hostname : undefined;
  if (hostOfCluster.size < maxRemembered) {
    hostOfCluster.set(clusterName, host);
    if (host !== undefined) {
      const names = clustersOfHost.get(host);
      if (names) names.push(clusterName);
      else clustersOfHost.set(host, [clusterName]);
    }
  }
  return host;
}

/**
 * Every cluster name of these hosts that `clusterHost` has seen, or undefined when it stopped
 * remembering (then callers must ask `clusterHost` name by name). Names reach it when a client
 * subscribes to them (sotw.ts, delta.ts).
 */
export function clusterNamesOfHosts(hosts: Iterable<string>): string[] | undefined {
  if (hostOfCluster.size >= maxRemembered) return undefined;
  const out: string[] = [];
  for (const h of hosts) out.push(...(clustersOfHost.get(h) ?? []));
  return out;
}
