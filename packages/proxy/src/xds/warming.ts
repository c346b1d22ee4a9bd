// Envoy's warming, as a pure function: from everything accepted so far and the active snapshot,
// the next snapshot. A new or changed cluster is used once its endpoints arrived; a route
// configuration once the clusters it names that are still warming are ready; a listener once the
// route configurations it names are present. Until then the previous version (if any) keeps
// serving. Whatever waits longer than the warming timeout is activated as it is (Envoy's
// initial_fetch_timeout): a cluster without endpoints, a listener without routes.
import type {
  Cluster__Output,
  ClusterLoadAssignment__Output,
  Listener__Output,
  RouteConfiguration__Output,
  Secret__Output,
} from '@weft/xds';
import type { XdsSnapshot } from '../core/types.ts';
import { clusterNamesOf, edsName, isEdsCluster, routeNamesOf } from './resources.ts';

/** Everything accepted from pilot (and local sources), before warming. */
export interface AcceptedConfig {
  readonly versions: Readonly<Record<string, string>>;
  readonly listeners: ReadonlyMap<string, Listener__Output>;
  readonly routes: ReadonlyMap<string, RouteConfiguration__Output>;
  readonly clusters: ReadonlyMap<string, Cluster__Output>;
  readonly endpoints: ReadonlyMap<string, ClusterLoadAssignment__Output>;
  readonly secrets: ReadonlyMap<string, Secret__Output>;
}

export interface WarmingResult {
  snapshot: XdsSnapshot;
  /** Names still warming, by kind (their previous version, if any, is in the snapshot). */
  warming: { listeners: string[]; routes: string[]; clusters: string[] };
  /** When the earliest warming resource times out (ms, same clock as `now`); undefined when nothing warms. */
  nextDeadline: number | undefined;
}

export interface WarmingClock {
  now: number;
  timeoutMs: number;
  /** When this resource object was first seen warming (callers remember it per object). */
  since(resource: object): number;
}

export function warm(accepted: AcceptedConfig, previous: XdsSnapshot | undefined, clock: WarmingClock): WarmingResult {
  const warming: WarmingResult['warming'] = { listeners: [], routes: [], clusters: [] };
  let nextDeadline: number | undefined;
  /** true when `resource` has waited past the timeout; otherwise records its deadline. */
  const expired = (resource: object): boolean => {
    const deadline = clock.since(resource) + clock.timeoutMs;
    if (deadline <= clock.now) return true;
    nextDeadline = nextDeadline === undefined ? deadline : Math.min(nextDeadline, deadline);
    return false;
  };

  const clusters = new Map<string, Cluster__Output>();
  for (const [name, c] of accepted.clusters) {
    if (previous?.clusters.get(name) === c || !isEdsCluster(c) || accepted.endpoints.has(edsName(c)) || expired(c)) {
      clusters.set(name, c);
      continue;
    }
    warming.clusters.push(name);
    const old = previous?.clusters.get(name);
    if (old) clusters.set(name, old);
  }
  const warmingClusters = new Set(warming.clusters);

  const routes = new Map<string, RouteConfiguration__Output>();
  for (const [name, rc] of accepted.routes) {
    const waiting = previous?.routes.get(name) !== rc && clusterNamesOf(rc).some((c) => warmingClusters.has(c));
    if (!waiting || expired(rc)) {
      routes.set(name, rc);
      continue;
    }
    warming.routes.push(name);
    const old = previous?.routes.get(name);
    if (old) routes.set(name, old);
  }

  const listeners = new Map<string, Listener__Output>();
  for (const [name, l] of accepted.listeners) {
    const waiting = previous?.listeners.get(name) !== l && routeNamesOf(l).some((r) => !routes.has(r));
    if (!waiting || expired(l)) {
      listeners.set(name, l);
      continue;
    }
    warming.listeners.push(name);
    const old = previous?.listeners.get(name);
    if (old) listeners.set(name, old);
  }

  // Endpoints of clusters that are gone are dropped with them; the rest are served as accepted.
  const endpoints = new Map<string, ClusterLoadAssignment__Output>();
  const wanted = new Set<string>();
  for (const c of clusters.values()) if (isEdsCluster(c)) wanted.add(edsName(c));
  for (const [name, cla] of accepted.endpoints) if (wanted.has(name)) endpoints.set(name, cla);

  const snapshot: XdsSnapshot = Object.freeze({
    versions: Object.freeze({ ...accepted.versions }),
    listeners,
    routes,
    clusters,
    endpoints,
    secrets: new Map(accepted.secrets),
  });
  return { snapshot, warming, nextDeadline };
}

/** Whether two snapshots hold the same resource objects (nothing to swap). */
export function sameSnapshot(a: XdsSnapshot, b: XdsSnapshot): boolean {
  const sameMap = <V>(x: ReadonlyMap<string, V>, y: ReadonlyMap<string, V>) => {
    if (x.size !== y.size) return false;
    for (const [k, v] of x) if (y.get(k) !== v) return false;
    return true;
  };
  const va = Object.entries(a.versions);
  return (
    va.length === Object.keys(b.versions).length &&
    va.every(([k, v]) => b.versions[k] === v) &&
    sameMap(a.listeners, b.listeners) &&
    sameMap(a.routes, b.routes) &&
    sameMap(a.clusters, b.clusters) &&
    sameMap(a.endpoints, b.endpoints) &&
    sameMap(a.secrets, b.secrets)
  );
}
