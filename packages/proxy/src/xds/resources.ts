// What one xDS resource depends on: the EDS name of a cluster, the route configurations a listener
// names, the clusters a route configuration names. Warming and subscriptions read these; each is
// computed once per decoded resource (resources are immutable and shared between snapshots).
import {
  type Cluster__Output,
  decodeAny,
  type HttpConnectionManager__Output,
  type Listener__Output,
  type RouteConfiguration__Output,
  TypeUrl,
} from '@weft/xds';

type Filter = NonNullable<Listener__Output['filter_chains'][number]['filters']>[number];

/** The name EDS knows a cluster by: `eds_cluster_config.service_name`, else the cluster's own name. */
export function edsName(c: Cluster__Output): string {
  return c.eds_cluster_config?.service_name || c.name;
}

export function isEdsCluster(c: Cluster__Output): boolean {
  return c.type === 'EDS';
}

const hcms = new WeakMap<Filter, HttpConnectionManager__Output | null>();

/** The decoded http_connection_manager of a network filter; undefined when the filter is something else. */
export function hcmOf(f: Filter): HttpConnectionManager__Output | undefined {
  let hcm = hcms.get(f);
  if (hcm === undefined) {
    hcm = f.typed_config?.type_url === TypeUrl.HttpConnectionManager ? decodeAny(f.typed_config, TypeUrl.HttpConnectionManager) : null;
    hcms.set(f, hcm);
  }
  return hcm ?? undefined;
}

/** Every filter chain of a listener, the default chain last. */
export function filterChainsOf(l: Listener__Output): Listener__Output['filter_chains'] {
  return l.default_filter_chain ? [...l.filter_chains, l.default_filter_chain] : l.filter_chains;
}

const listenerRoutes = new WeakMap<Listener__Output, readonly string[]>();

/** Route configurations the listener's HTTP connection managers fetch over RDS. */
export function routeNamesOf(l: Listener__Output): readonly string[] {
  let names = listenerRoutes.get(l);
  if (!names) {
    const set = new Set<string>();
    for (const chain of filterChainsOf(l)) {
      for (const f of chain.filters ?? []) {
        const hcm = hcmOf(f);
        if (hcm?.route_specifier === 'rds' && hcm.rds?.route_config_name) set.add(hcm.rds.route_config_name);
      }
    }
    names = [...set].sort();
    listenerRoutes.set(l, names);
  }
  return names;
}

const routeClusters = new WeakMap<RouteConfiguration__Output, readonly string[]>();

/** Clusters a route configuration sends to (route targets, weighted clusters, mirrors). */
export function clusterNamesOf(rc: RouteConfiguration__Output): readonly string[] {
  let names = routeClusters.get(rc);
  if (!names) {
    const set = new Set<string>();
    for (const vh of rc.virtual_hosts ?? []) {
      for (const r of vh.routes ?? []) {
        const a = r.route;
        if (!a) continue;
        if (a.cluster) set.add(a.cluster);
        for (const w of a.weighted_clusters?.clusters ?? []) if (w.name) set.add(w.name);
        for (const m of a.request_mirror_policies ?? []) if (m.cluster) set.add(m.cluster);
      }
    }
    names = [...set].sort();
    routeClusters.set(rc, names);
  }
  return names;
}
