// Per-virtual-host routes for weft-proxy (DESIGN.md, control-plane wire). A client that announces
// the `io.weft.vhds` feature on a delta stream gets each route configuration without its virtual
// hosts (`vhds` set, pointing at ADS) and every virtual host as a VirtualHost resource named
// `<route configuration>/<virtual host>` (the shape of Envoy's VHDS names). Delta sends a resource
// only when its bytes change, so a VirtualService change reaches each proxy as the virtual hosts it
// changed. Unlike Envoy's VHDS, nothing is on demand: the client subscribes `*` and gets the virtual
// hosts of every route configuration the RDS generator would give it. Every other client gets
// whole route configurations, as before.
import { TypeUrl, type RouteConfiguration } from '@weft/xds';
import type { GenerateRequest, Generator, Proxy as MeshProxy, PushContext, XdsResource } from '../core/types.ts';
import { adsConfigSource } from './envoy.ts';

/** `80` and `reviews.default.svc.cluster.local:80` -> `80/reviews.default.svc.cluster.local:80`. */
export function vhdsResourceName(routeConfig: string, virtualHost: string): string {
  return `${routeConfig}/${virtualHost}`;
}

// Both generators below need the proxy's whole route configurations; within one push context the
// second asks for what the first built (push order sends VHDS, then RDS).
const built = new WeakMap<PushContext, WeakMap<MeshProxy, Map<string, XdsResource>>>();

function wholeRoutes(rds: Generator, push: PushContext, proxy: MeshProxy, names: readonly string[] | undefined): XdsResource[] {
  let byProxy = built.get(push);
  if (!byProxy) {
    byProxy = new WeakMap();
    built.set(push, byProxy);
  }
  let known = byProxy.get(proxy);
  if (names && known && names.every((n) => known!.has(n))) return names.map((n) => known!.get(n)!);
  const request: GenerateRequest = names ? { typeUrl: TypeUrl.RouteConfiguration, names } : { typeUrl: TypeUrl.RouteConfiguration };
  const out = rds(push, proxy, request);
  if (!known) {
    known = new Map();
    byProxy.set(proxy, known);
  }
  for (const r of out) known.set(r.name, r);
  return out;
}

/** RDS for any proxy: whole route configurations, or for a VHDS client the same without their virtual hosts. */
export function withVhds(rds: Generator): Generator {
  return (push, proxy, request) => {
    if (!proxy.vhds) return rds(push, proxy, request);
    return wholeRoutes(rds, push, proxy, request.names?.length ? request.names : undefined).map(({ name, resource }) => {
      const { virtual_hosts: _, ...rest } = resource as RouteConfiguration;
      return { name, resource: { ...rest, vhds: { config_source: adsConfigSource(false) } } satisfies RouteConfiguration };
    });
  };
}

/** VirtualHost resources: the virtual hosts of every route configuration `rds` gives the proxy (named ones are ignored: the subscription is `*`). */
export function vhdsGenerator(rds: Generator): Generator {
  return (push, proxy) => {
    if (!proxy.vhds) return [];
    const out: XdsResource[] = [];
    for (const { name: rc, resource } of wholeRoutes(rds, push, proxy, undefined)) {
      for (const vh of (resource as RouteConfiguration).virtual_hosts ?? []) {
        const name = vhdsResourceName(rc, vh.name ?? '');
        out.push({ name, resource: { ...vh, name } });
      }
    }
    return out;
  };
}
