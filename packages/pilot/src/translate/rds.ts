// RDS for sidecars: one route configuration per outbound HTTP port (named by the port, `9080`),
// as Istio's httproute.go builds it: a virtual host per service (or VirtualService host), then
// the catch-all `allow_any` (PassthroughCluster) or `block_all` per the outbound traffic policy.
import { hostSubsetOf, PassthroughCluster } from '@weft/mesh';
import { type Config, isHttpProtocol, type Service, type VirtualServiceSpec } from '@weft/model';
import type { Route, RouteConfiguration, VirtualHost } from '@weft/xds';
import type { Generator, Proxy as MeshProxy, PushContext, XdsResource } from '../core/types.ts';
import { domainName } from './names.ts';
import { defaultOutboundRoute, destinationHost, type RouteContext, routesForVirtualService } from './route.ts';

/** Services the proxy can see that serve HTTP on `port`. */
export function httpServicesOnPort(services: readonly Service[], port: number): Service[] {
  return services.filter((s) => s.ports.some((p) => p.port === port && isHttpProtocol(p.protocol)));
}

/** The HTTP ports of the services a proxy sees: one route configuration each. */
export function outboundHttpPorts(services: readonly Service[]): number[] {
  const ports = new Set<number>();
  for (const s of services) for (const p of s.ports) if (isHttpProtocol(p.protocol)) ports.add(p.port);
  return [...ports].sort((a, b) => a - b);
}

/**
 * Istio's generateVirtualHostDomains: the FQDN and, for Kubernetes-style names, the short forms a
 * client in the proxy's namespace (or another) may use; each with and without `:port`; plus VIPs.
 */
export function virtualHostDomains(service: Service, port: number, proxy: MeshProxy, domainSuffix: string): string[] {
  const hosts = [service.hostname, ...altHostnames(service.hostname, proxy.namespace, domainSuffix), ...service.addresses.filter((a) => a !== '0.0.0.0')];
  const out: string[] = [];
  for (const h of hosts) out.push(h.includes(':') ? `[${h}]` : h, domainName(h, port));
  return out;
}

function altHostnames(hostname: string, proxyNamespace: string, domainSuffix: string): string[] {
  const suffix = `.svc.${domainSuffix}`;
  if (!hostname.endsWith(suffix)) return [];
  const parts = hostname.slice(0, -suffix.length).split('.');
  if (parts.length !== 2) return [];
  const [name, namespace] = parts as [string, string];
  const alts = [`${name}.${namespace}`, `${name}.${namespace}.svc`];
  return namespace === proxyNamespace ? [name, ...alts] : alts;
}

interface VirtualServiceHosts {
  services: Service[];
  /** Hosts that name no service in the registry (e.g. an external name on port 80). */
  others: string[];
}

/**
 * Assigns every service to at most one VirtualService, as Istio does: an exact host wins; else the
 * most specific wildcard host; ties go to the earlier VirtualService.
 */
function assignServices(virtualServices: readonly Config<VirtualServiceSpec>[], services: readonly Service[], push: PushContext) {
  const byVs = new Map<Config<VirtualServiceSpec>, VirtualServiceHosts>();
  const owner = new Map<string, { vs: Config<VirtualServiceSpec>; specificity: number }>();
  const byHostname = new Map<string, Service[]>();
  for (const s of services) {
    const l = byHostname.get(s.hostname);
    if (l) l.push(s);
    else byHostname.set(s.hostname, [s]);
  }
  for (const vs of virtualServices) {
    const entry: VirtualServiceHosts = { services: [], others: [] };
    byVs.set(vs, entry);
    for (const raw of vs.spec.hosts ?? []) {
      const host = destinationHost(raw, vs.metadata.namespace, { push });
      // Thousands of VirtualServices: exact hosts are looked up, only wildcards scan the services.
      const matching = host.startsWith('*') ? services.filter((s) => hostSubsetOf(s.hostname, host)) : (byHostname.get(host) ?? []);
      if (matching.length === 0) {
        entry.others.push(host);
        continue;
      }
      const specificity = host.startsWith('*') ? host.length : Number.MAX_SAFE_INTEGER;
      for (const s of matching) {
        const current = owner.get(s.hostname);
        if (!current || specificity > current.specificity) owner.set(s.hostname, { vs, specificity });
      }
    }
  }
  for (const s of services) {
    const o = owner.get(s.hostname);
    if (o) byVs.get(o.vs)!.services.push(s);
  }
  return { byVs, claimed: new Set(owner.keys()) };
}

/** Builds the sidecar's outbound route configuration for one port. */
export function sidecarOutboundRouteConfig(push: PushContext, proxy: MeshProxy, port: number): RouteConfiguration {
  const scope = push.sidecarScope(proxy);
  const services = httpServicesOnPort(scope.services, port);
  const ctx: RouteContext = { push, proxy, listenPort: port, gatewayNames: new Set(['mesh']) };
  const virtualServices = push.virtualServices(proxy, ['mesh']);
  const { byVs, claimed } = assignServices(virtualServices, services, push);
  const vhosts: VirtualHost[] = [];
  for (const vs of virtualServices) {
    const hosts = byVs.get(vs)!;
    // Istio serves hosts outside the registry only on port 80, or beside registry services of the VirtualService.
    const others = hosts.services.length > 0 || port === 80 ? hosts.others : [];
    if (hosts.services.length === 0 && others.length === 0) continue;
    const routes = routesForVirtualService(vs, ctx);
    if (routes.length === 0) continue;
    for (const host of others) vhosts.push(virtualHost(domainName(host, port), [host, domainName(host, port)], routes));
    for (const s of hosts.services) vhosts.push(virtualHost(domainName(s.hostname, port), virtualHostDomains(s, port, proxy, push.mesh.domainSuffix), routes));
  }
  for (const s of services) {
    if (claimed.has(s.hostname)) continue;
    vhosts.push(virtualHost(domainName(s.hostname, port), virtualHostDomains(s, port, proxy, push.mesh.domainSuffix), [defaultOutboundRoute(s, port, ctx)]));
  }
  vhosts.sort((a, b) => ((a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0));
  vhosts.push(catchAllVirtualHost(scope.outboundTrafficPolicy));
  return {
    name: String(port),
    virtual_hosts: dedupeDomains(vhosts),
    validate_clusters: { value: false },
    max_direct_response_body_size_bytes: { value: 1024 * 1024 },
  };
}

export function virtualHost(name: string, domains: string[], routes: Route[]): VirtualHost {
  return { name, domains, routes, include_request_attempt_count: true };
}

/** `allow_any` sends unknown hosts to the original destination; `block_all` answers 502 (Istio's REGISTRY_ONLY). */
export function catchAllVirtualHost(policy: 'ALLOW_ANY' | 'REGISTRY_ONLY'): VirtualHost {
  if (policy === 'REGISTRY_ONLY') {
    return virtualHost('block_all', ['*'], [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }]);
  }
  return virtualHost('allow_any', ['*'], [
    {
      name: 'allow_any',
      match: { prefix: '/' },
      route: { cluster: PassthroughCluster, timeout: { seconds: '0', nanos: 0 }, max_grpc_timeout: { seconds: '0', nanos: 0 } },
    },
  ]);
}

/** Envoy rejects a route configuration in which two virtual hosts share a domain: the first keeps it. */
export function dedupeDomains(vhosts: VirtualHost[]): VirtualHost[] {
  const seen = new Set<string>();
  const out: VirtualHost[] = [];
  for (const vh of vhosts) {
    const domains = (vh.domains ?? []).filter((d) => {
      const key = d.toLowerCase();
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    if (domains.length > 0) out.push({ ...vh, domains });
  }
  return out;
}

/** Route configurations a sidecar may ask for: one per outbound HTTP port. */
export function sidecarRouteNames(push: PushContext, proxy: MeshProxy): string[] {
  return outboundHttpPorts(push.sidecarScope(proxy).services).map(String);
}

export const sidecarRds: Generator = (push, proxy, request) => {
  const names = request.names?.length ? request.names : sidecarRouteNames(push, proxy);
  const out: XdsResource[] = [];
  for (const name of names) {
    const port = Number(name);
    if (!Number.isInteger(port) || port <= 0) continue;
    out.push({ name, resource: sidecarOutboundRouteConfig(push, proxy, port) });
  }
  return out;
};
