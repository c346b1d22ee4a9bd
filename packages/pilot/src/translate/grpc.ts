// Proxyless gRPC (node metadata GENERATOR=grpc), as Istio's grpcgen: the client dials
// `xds:///reviews.default.svc.cluster.local:9080` and asks for the listener of that name; the
// listener is an api_listener whose HttpConnectionManager takes routes from RDS of the same name.
// Only what grpc-js-xds accepts is sent: ADS config sources, `router` as the last HTTP filter,
// EDS clusters with ROUND_ROBIN or RING_HASH, TLS from certificate providers, IP endpoints.
import { hostCandidates, hostSubsetOf } from '@weft/mesh';
import type { Service } from '@weft/model';
import { type Cluster, encodeAny, type Listener, type RouteConfiguration, TypeUrl } from '@weft/xds';
import type { Generator, Proxy as MeshProxy, PushContext, XdsResource } from '../core/types.ts';
import { clustersForService } from './cds.ts';
import { edsGenerator } from './eds.ts';
import { grpcServerListener, grpcServerListenerPrefix } from './grpc-inbound.ts';
import { adsConfigSource, faultFilter, routerFilter } from './envoy.ts';
import { domainName } from './names.ts';
import { virtualHostDomains } from './rds.ts';
import { defaultOutboundRoute, destinationHost, type RouteContext, routesForVirtualService } from './route.ts';

interface Target {
  /** The name as the client wrote it (listener and route configuration name). */
  name: string;
  service: Service;
  port: number;
}

/**
 * A client target (`name`, `name.ns`, `name.ns.svc`, the FQDN, each with or without `:port`) ->
 * the service and port it names. Without a port, only a service with one port is meant.
 */
export function parseTarget(push: PushContext, proxy: MeshProxy, name: string): Target | undefined {
  const colon = name.lastIndexOf(':');
  const hasPort = colon > 0 && /^\d+$/.test(name.slice(colon + 1));
  const host = hasPort ? name.slice(0, colon) : name;
  let service: Service | undefined;
  for (const fqdn of hostCandidates(host, proxy.namespace, push.mesh.domainSuffix)) {
    service = push.service(fqdn, proxy.namespace);
    if (service) break;
  }
  if (!service) return undefined;
  let port: number | undefined;
  if (hasPort) port = Number(name.slice(colon + 1));
  else if (service.ports.length === 1) port = service.ports[0]!.port;
  if (port === undefined || !service.ports.some((p) => p.port === port)) return undefined;
  return { name, service, port };
}

function allTargets(push: PushContext, proxy: MeshProxy): string[] {
  const out: string[] = [];
  for (const s of push.sidecarScope(proxy).services) for (const p of s.ports) if (p.protocol !== 'UDP') out.push(domainName(s.hostname, p.port));
  return out;
}

export function grpcListener(target: Target): Listener {
  return {
    name: target.name,
    api_listener: {
      api_listener: encodeAny(TypeUrl.HttpConnectionManager, {
        stat_prefix: target.name,
        rds: { config_source: adsConfigSource(false), route_config_name: target.name },
        http_filters: [faultFilter(), routerFilter()],
      }),
    },
  };
}

export function grpcRouteConfig(push: PushContext, proxy: MeshProxy, target: Target): RouteConfiguration {
  const ctx: RouteContext = { push, proxy, listenPort: target.port, gatewayNames: new Set(['mesh']), grpc: true };
  const hostname = target.service.hostname;
  const virtualServices = push.virtualServices(proxy, ['mesh']);
  const hostsOf = (vs: (typeof virtualServices)[number]) => (vs.spec.hosts ?? []).map((h) => destinationHost(h, vs.metadata.namespace, ctx));
  const vs = virtualServices.find((v) => hostsOf(v).includes(hostname)) ?? virtualServices.find((v) => hostsOf(v).some((h) => hostSubsetOf(hostname, h)));
  let routes = vs ? routesForVirtualService(vs, ctx) : [];
  if (routes.length === 0) routes = [defaultOutboundRoute(target.service, target.port, ctx)];
  const domains = [...new Set([target.name, ...virtualHostDomains(target.service, target.port, proxy, push.mesh.domainSuffix)])];
  return { name: target.name, virtual_hosts: [{ name: target.name, domains, routes }] };
}

/** The targets named (no names: every service the client sees; an empty list: none). */
function targetsFor(push: PushContext, proxy: MeshProxy, names: readonly string[] | undefined): Target[] {
  const out: Target[] = [];
  for (const name of names ?? allTargets(push, proxy)) {
    const t = parseTarget(push, proxy, name);
    if (t) out.push(t);
  }
  return out;
}

/** Client listeners by target; server listeners (`xds.istio.io/grpc/lds/inbound/...`) only when named. */
export const grpcLds: Generator = (push, proxy, request) => {
  const out: XdsResource[] = [];
  const clientNames: string[] | undefined = request.names ? [] : undefined;
  for (const name of request.names ?? []) {
    if (!name.startsWith(grpcServerListenerPrefix)) clientNames!.push(name);
    else {
      const l = grpcServerListener(push, proxy, name);
      if (l) out.push({ name, resource: l });
    }
  }
  for (const t of targetsFor(push, proxy, clientNames)) out.push({ name: t.name, resource: grpcListener(t) });
  return out;
};

export const grpcRds: Generator = (push, proxy, request) =>
  targetsFor(push, proxy, request.names).map((t) => ({ name: t.name, resource: grpcRouteConfig(push, proxy, t) }));

export function grpcClusters(push: PushContext, proxy: MeshProxy): Cluster[] {
  const out: Cluster[] = [];
  for (const s of push.sidecarScope(proxy).services) out.push(...clustersForService(push, proxy, s, { grpc: true }));
  return out;
}

export const grpcCds: Generator = (push, proxy, request) => {
  const wanted = request.names ? new Set(request.names) : undefined;
  const out: XdsResource[] = [];
  for (const c of grpcClusters(push, proxy)) if (!wanted || wanted.has(c.name!)) out.push({ name: c.name!, resource: c });
  return out;
};

export const grpcEds: Generator = edsGenerator((push, proxy) => grpcClusters(push, proxy).map((c) => c.name!), { grpc: true });
