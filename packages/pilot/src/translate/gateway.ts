// Gateway mode (proxy type `router`): listeners `0.0.0.0_<port>` per Gateway server port and
// route configurations `http.<port>` / `https.<port>.<portName>.<gateway>.<namespace>`, with the
// VirtualServices bound to each Gateway, following Istio's gateway.go.
import { BlackHoleCluster, hostsMatch, hostSubsetOf } from '@weft/mesh';
import type { Config, GatewaySpec, Server, VirtualServiceSpec } from '@weft/model';
import type { Listener, Route, RouteConfiguration, VirtualHost } from '@weft/xds';
import type { Generator, Proxy as MeshProxy, PushContext, XdsResource } from '../core/types.ts';
import { type FilterChain, hcmFilter, type NetworkFilter, socketAddress, tcpProxyFilter, tlsInspectorListenerFilter, weightedTcpProxyFilter } from './envoy.ts';
import { authzFilters } from './authz.ts';
import { jwtFilters, withJwtFilters } from './jwt.ts';
import { filterByName, httpConnectionManager } from './lds.ts';
import { gatewayRouteName, listenerName } from './names.ts';
import { dedupeDomains, virtualHost } from './rds.ts';
import { destinationCluster, destinationHost, isCatchAll, qualifyGateway, type RouteContext, routesForVirtualService } from './route.ts';
import { downstreamTransportSocket, gatewayServerTls } from './tls.ts';
import { hcmTracing } from './tracing.ts';

interface BoundServer {
  server: Server;
  gateway: Config<GatewaySpec>;
  /** The port the gateway listens on for this server: the server's port, translated to the target port when a service of the gateway exposes it. */
  port: number;
}

const httpProtocols = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);

function protocolOf(server: Server): string {
  return server.port.protocol.toUpperCase();
}

function isTerminatedHttps(server: Server): boolean {
  return protocolOf(server) === 'HTTPS' && server.tls?.mode !== 'PASSTHROUGH' && server.tls?.mode !== 'AUTO_PASSTHROUGH';
}

/** The route configuration a server's HTTP traffic uses; undefined for servers that do not terminate HTTP. */
export function serverRouteName(b: BoundServer): string | undefined {
  const p = protocolOf(b.server);
  if (httpProtocols.has(p)) return gatewayRouteName('http', b.port);
  if (isTerminatedHttps(b.server)) {
    return gatewayRouteName('https', b.port, b.server.port.name, { name: b.gateway.metadata.name, namespace: b.gateway.metadata.namespace });
  }
  return undefined;
}

function boundServers(push: PushContext, proxy: MeshProxy): BoundServer[] {
  const out: BoundServer[] = [];
  const gateways = push.gateways(proxy);
  const targets = gateways.length > 0 ? gatewayTargetPorts(push, proxy) : new Map<number, number>();
  for (const gateway of gateways) for (const server of gateway.spec.servers ?? []) out.push({ server, gateway, port: targets.get(server.port.number) ?? server.port.number });
  return withoutConflicts(out);
}

/** Istio's IsTLSServer: TLS settings on a protocol that is not HTTP (an httpsRedirect HTTP server is plain text). */
function isTlsServer(server: Server): boolean {
  return server.tls !== undefined && !httpProtocols.has(protocolOf(server));
}

/**
 * The conflict rules of Istio's mergeGateways. Servers arrive in the gateways' order (oldest
 * first), so the older server keeps what two claim, on one port and bind address: a server with
 * TLS settings that repeats a host an earlier TLS server has is dropped with all its hosts (Envoy
 * refuses two filter chains matching the same SNI); once a plain-text server holds the port, only
 * HTTP servers join it (they share one route configuration), and a second HTTPS server needs a
 * route configuration name of its own. Everything dropped is what Istio drops with "skipping
 * server on gateway ...: conflict with existing server".
 */
function withoutConflicts(bound: readonly BoundServer[]): BoundServer[] {
  const out: BoundServer[] = [];
  const ports = new Set<number>();
  const plainText = new Map<number, { protocol: string; bind: string }>();
  const tlsHosts = new Map<number, Map<string, string>>();
  const routeNames = new Set<string>();
  for (const b of bound) {
    const bind = b.server.bind ?? '';
    const protocol = protocolOf(b.server);
    if (b.server.tls) {
      const known = tlsHosts.get(b.port) ?? new Map<string, string>();
      tlsHosts.set(b.port, known);
      if (b.server.hosts.some((h) => known.get(h) === bind)) continue;
      for (const h of b.server.hosts) known.set(h, bind);
    }
    const routeName = serverRouteName(b);
    if (!ports.has(b.port)) {
      ports.add(b.port);
      if (!isTlsServer(b.server)) plainText.set(b.port, { protocol, bind });
      if (routeName) routeNames.add(routeName);
      out.push(b);
      continue;
    }
    const current = plainText.get(b.port);
    if (current) {
      const canMerge = (httpProtocols.has(current.protocol) || current.protocol === protocol) && httpProtocols.has(protocol);
      if (current.bind === bind && !canMerge) continue;
      out.push(b);
      continue;
    }
    if (!isTlsServer(b.server)) {
      plainText.set(b.port, { protocol, bind });
      out.push(b);
      continue;
    }
    if (routeName) {
      if (routeNames.has(routeName)) continue;
      routeNames.add(routeName);
    }
    out.push(b);
  }
  return out;
}

/**
 * Istio's gateway port translation (resolvePorts, legacy label selector): a Gateway's server port
 * that a service of the gateway workload exposes is listened on at that service's target port
 * (the `istio-ingressgateway` Service's 80 -> 8080), so a gateway runs without privileged ports.
 * Without such a service the server's own port is used. The first service exposing a port wins.
 */
function gatewayTargetPorts(push: PushContext, proxy: MeshProxy): Map<number, number> {
  const workload = push.workload(proxy);
  const ips = new Set(proxy.ipAddresses);
  if (workload) ips.add(workload.address);
  const out = new Map<number, number>();
  for (const service of push.servicesOf(proxy)) {
    if (service.labels['experimental.istio.io/disable-gateway-port-translation'] !== undefined) continue;
    for (const sp of service.ports) {
      if (out.has(sp.port)) continue;
      const own = push.endpoints(service, sp.port).find((e) => ips.has(e.address));
      const target = own?.port ?? workload?.ports[sp.name] ?? sp.targetPort;
      if (target) out.set(sp.port, target);
    }
  }
  return out;
}

function gatewayName(g: Config<GatewaySpec>): string {
  return `${g.metadata.namespace}/${g.metadata.name}`;
}

/** A server host `ns/host`: `*` any namespace, `.` the gateway's namespace. */
function parseServerHost(raw: string, gatewayNamespace: string): { namespace: string; host: string } {
  const slash = raw.indexOf('/');
  if (slash < 0) return { namespace: '*', host: raw };
  const ns = raw.slice(0, slash);
  return { namespace: ns === '.' ? gatewayNamespace : ns, host: raw.slice(slash + 1) };
}

/** The hostnames a server host and a VirtualService host have in common (Istio's intersection: the more specific one). */
function intersect(serverHost: string, vsHost: string): string | undefined {
  if (hostSubsetOf(vsHost, serverHost)) return vsHost;
  if (hostSubsetOf(serverHost, vsHost)) return serverHost;
  return undefined;
}

function gatewayDomains(host: string): string[] {
  return host === '*' ? ['*'] : [host, `${host}:*`];
}

function serverNames(b: BoundServer): string[] {
  const hosts = b.server.hosts.map((h) => parseServerHost(h, b.gateway.metadata.namespace).host);
  return hosts.includes('*') ? [] : [...new Set(hosts)];
}

function gatewayTcpFilter(b: BoundServer, push: PushContext, proxy: MeshProxy, sniHosts: string[] | undefined): NetworkFilter | undefined {
  const gw = gatewayName(b.gateway);
  const port = b.server.port.number;
  const ctx: RouteContext = { push, proxy, listenPort: port, gatewayNames: new Set([gw]) };
  for (const vs of push.virtualServices(proxy, [gw])) {
    const ns = vs.metadata.namespace;
    const matches = (m: { port?: number; gateways?: string[] }) => (!m.port || m.port === port) && (!m.gateways?.length || m.gateways.some((g) => qualifyGateway(g, ns) === gw));
    const rule = sniHosts
      ? vs.spec.tls?.find((r) => r.match.some((m) => matches(m) && m.sniHosts.some((h) => sniHosts.length === 0 || sniHosts.some((s) => hostsMatch(s, h)))))
      : vs.spec.tcp?.find((r) => !r.match?.length || r.match.some(matches));
    if (!rule?.route?.length) continue;
    if (rule.route.length === 1) return tcpProxyFilter(destinationCluster(rule.route[0]!.destination, ns, ctx));
    const clusters = rule.route.filter((d) => (d.weight ?? 0) > 0).map((d) => ({ name: destinationCluster(d.destination, ns, ctx), weight: d.weight ?? 0 }));
    return weightedTcpProxyFilter(clusters, `outbound_0.0.0.0_${b.port}`);
  }
  return undefined;
}

export function gatewayListeners(push: PushContext, proxy: MeshProxy): Listener[] {
  const byPort = new Map<number, BoundServer[]>();
  for (const b of boundServers(push, proxy)) {
    const list = byPort.get(b.port) ?? [];
    list.push(b);
    byPort.set(b.port, list);
  }
  const listeners: Listener[] = [];
  // AuthorizationPolicies selecting the gateway workload: RBAC on its HTTP and TCP chains.
  const authz = withJwtFilters(authzFilters(push, proxy), jwtFilters(push, proxy));
  const tracing = hcmTracing(push, proxy, 'gateway');
  for (const [port, servers] of [...byPort.entries()].sort(([a], [b]) => a - b)) {
    const name = listenerName('0.0.0.0', port);
    const chains: FilterChain[] = [];
    const seenMatches = new Set<string>();
    let httpChain = false;
    for (const b of servers) {
      const p = protocolOf(b.server);
      const routeName = serverRouteName(b);
      if (httpProtocols.has(p)) {
        if (httpChain) continue;
        httpChain = true;
        const hcm = httpConnectionManager(`outbound_${name}`, { rds: routeName! }, { gateway: true, http2: p !== 'HTTP', authz: authz.http, ...(tracing ? { tracing } : {}) });
        hcm.forward_client_cert_details = 'SANITIZE_SET';
        chains.push({ filters: [hcmFilter(hcm)] });
        continue;
      }
      const sni = serverNames(b);
      const key = JSON.stringify(sni);
      if (seenMatches.has(key)) continue;
      if (isTerminatedHttps(b.server) && b.server.tls) {
        seenMatches.add(key);
        const hcm = httpConnectionManager(`outbound_${name}`, { rds: routeName! }, { gateway: true, authz: authz.http, ...(tracing ? { tracing } : {}) });
        hcm.forward_client_cert_details = 'SANITIZE_SET';
        chains.push({
          filter_chain_match: sni.length > 0 ? { server_names: sni } : {},
          transport_socket: downstreamTransportSocket(gatewayServerTls(b.server.tls, true)),
          filters: [hcmFilter(hcm)],
        });
        continue;
      }
      if (p === 'TLS' && b.server.tls && b.server.tls.mode !== 'PASSTHROUGH' && b.server.tls.mode !== 'AUTO_PASSTHROUGH') {
        // TLS terminated at the gateway, then opaque TCP.
        const filter = gatewayTcpFilter(b, push, proxy, undefined) ?? tcpProxyFilter(BlackHoleCluster);
        seenMatches.add(key);
        chains.push({
          filter_chain_match: sni.length > 0 ? { server_names: sni } : {},
          transport_socket: downstreamTransportSocket(gatewayServerTls(b.server.tls, false)),
          filters: [...authz.tcp, filter],
        });
        continue;
      }
      const passthrough = p === 'TLS' || p === 'HTTPS';
      const filter = gatewayTcpFilter(b, push, proxy, passthrough ? sni : undefined);
      if (!filter) continue;
      seenMatches.add(key);
      chains.push({ ...(passthrough && sni.length > 0 ? { filter_chain_match: { server_names: sni } } : {}), filters: [...authz.tcp, filter] });
    }
    if (chains.length === 0) continue;
    const l: Listener = { name, address: socketAddress(servers[0]!.server.bind ?? '0.0.0.0', port), traffic_direction: 'OUTBOUND', filter_chains: chains };
    if (chains.some((c) => c.transport_socket || c.filter_chain_match?.server_names?.length)) l.listener_filters = [tlsInspectorListenerFilter()];
    listeners.push(l);
  }
  return listeners;
}

/** Every route configuration the gateway's listeners name. */
export function gatewayRouteNames(push: PushContext, proxy: MeshProxy): string[] {
  const names = new Set<string>();
  for (const b of boundServers(push, proxy)) {
    const n = serverRouteName(b);
    if (n) names.add(n);
  }
  return [...names].sort();
}

function sortRoutes(routes: Route[]): Route[] {
  return [...routes.filter((r) => !isCatchAll(r.match)), ...routes.filter((r) => isCatchAll(r.match))];
}

export function gatewayRouteConfig(push: PushContext, proxy: MeshProxy, name: string): RouteConfiguration | undefined {
  const servers = boundServers(push, proxy).filter((b) => serverRouteName(b) === name);
  if (servers.length === 0) return undefined;
  const port = servers[0]!.server.port.number;
  const vhosts = new Map<string, VirtualHost>();
  for (const b of servers) {
    const gw = gatewayName(b.gateway);
    const ctx: RouteContext = { push, proxy, listenPort: port, gatewayNames: new Set([gw]), tls: isTerminatedHttps(b.server) };
    const serverHosts = b.server.hosts.map((h) => parseServerHost(h, b.gateway.metadata.namespace));
    for (const vs of push.virtualServices(proxy, [gw])) {
      const hosts = new Set<string>();
      for (const raw of vs.spec.hosts ?? []) {
        const vsHost = destinationHost(raw, vs.metadata.namespace, { push });
        for (const sh of serverHosts) {
          if (sh.namespace !== '*' && sh.namespace !== vs.metadata.namespace) continue;
          const h = intersect(sh.host, vsHost);
          if (h) hosts.add(h);
        }
      }
      if (hosts.size === 0) continue;
      const routes = routesForVirtualService(vs as Config<VirtualServiceSpec>, ctx);
      if (routes.length === 0) continue;
      for (const host of hosts) {
        const vhName = `${host}:${port}`;
        const existing = vhosts.get(vhName);
        if (existing) {
          existing.routes = sortRoutes([...(existing.routes ?? []), ...routes]);
          continue;
        }
        const vh = virtualHost(vhName, gatewayDomains(host), routes);
        if (b.server.tls?.httpsRedirect) vh.require_tls = 'ALL';
        vhosts.set(vhName, vh);
      }
    }
    // A redirecting HTTP server redirects even hosts no VirtualService routes.
    if (b.server.tls?.httpsRedirect) {
      for (const sh of serverHosts) {
        const vhName = `${sh.host}:${port}`;
        if (!vhosts.has(vhName)) vhosts.set(vhName, { ...virtualHost(vhName, gatewayDomains(sh.host), []), require_tls: 'ALL' });
      }
    }
  }
  const list = [...vhosts.values()];
  // Envoy answers 404 (no route) for hosts nothing routes.
  if (list.length === 0) list.push(virtualHost(`blackhole:${port}`, ['*'], []));
  return { name, virtual_hosts: dedupeDomains(list), validate_clusters: { value: false }, max_direct_response_body_size_bytes: { value: 1024 * 1024 } };
}

export const gatewayLds: Generator = (push, proxy, request) => filterByName(gatewayListeners(push, proxy), request.names);

export const gatewayRds: Generator = (push, proxy, request) => {
  const names = request.names?.length ? request.names : gatewayRouteNames(push, proxy);
  const out: XdsResource[] = [];
  for (const name of names) {
    const rc = gatewayRouteConfig(push, proxy, name);
    if (rc) out.push({ name, resource: rc });
  }
  return out;
};
