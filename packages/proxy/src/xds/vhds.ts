// Per-virtual-host routes (DESIGN.md, control-plane wire): pilot sends weft-proxy each route
// configuration without its virtual hosts (`vhds` set) and every virtual host as a resource of its
// own, named `<route configuration>/<virtual host>`, so a VirtualService change sends the virtual
// hosts it changed, not every sidecar's whole port-80 configuration. The router sees what it always
// saw: one RouteConfiguration, here assembled from the two.
import type { RouteConfiguration__Output, VirtualHost__Output } from '@weft/xds';

/** `80/reviews.default.svc.cluster.local:80` -> route configuration `80`; undefined for a name without `/`. */
export function routeConfigOf(resourceName: string): string | undefined {
  const i = resourceName.indexOf('/');
  return i <= 0 ? undefined : resourceName.slice(0, i);
}

/** A virtual host resource as the route configuration holds it: its name without the route configuration's. */
export function localVirtualHost(resourceName: string, vh: VirtualHost__Output): VirtualHost__Output {
  const rc = routeConfigOf(resourceName);
  return rc !== undefined && vh.name.startsWith(`${rc}/`) ? { ...vh, name: vh.name.slice(rc.length + 1) } : vh;
}

/**
 * Route configurations as the router takes them: those with `vhds` get the virtual hosts of their
 * name (in resource-name order, after any they carry themselves); others as they are. `previous`
 * keeps the assembled object of a configuration whose inputs did not change (compiled routes are
 * cached per object), `dirty` names those whose did.
 */
export function assembleRoutes(
  routes: ReadonlyMap<string, RouteConfiguration__Output>,
  virtualHosts: ReadonlyMap<string, VirtualHost__Output>,
  previous: ReadonlyMap<string, RouteConfiguration__Output>,
  dirty: ReadonlySet<string>,
): Map<string, RouteConfiguration__Output> {
  const out = new Map<string, RouteConfiguration__Output>();
  let byConfig: Map<string, [string, VirtualHost__Output][]> | undefined;
  for (const [name, rc] of routes) {
    if (!rc.vhds) {
      out.set(name, rc);
      continue;
    }
    const kept = previous.get(name);
    if (kept && !dirty.has(name)) {
      out.set(name, kept);
      continue;
    }
    if (!byConfig) {
      byConfig = new Map();
      for (const [resource, vh] of virtualHosts) {
        const of = routeConfigOf(resource);
        if (of === undefined) continue;
        const list = byConfig.get(of);
        if (list) list.push([resource, vh]);
        else byConfig.set(of, [[resource, vh]]);
      }
    }
    const own = (byConfig.get(name) ?? []).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, vh]) => vh);
    out.set(name, { ...rc, virtual_hosts: [...rc.virtual_hosts, ...own] });
  }
  return out;
}
