// LDS for sidecars, following Istio's listener.go, listener_inbound.go and filterchain_options.go:
// `virtualOutbound` (15001) and `virtualInbound` (15006) take captured traffic; per service port,
// `0.0.0.0_<port>` (HTTP, routes from RDS `<port>`) and `<vip>_<port>` (TCP) select the chain.
import { BlackHoleCluster, hostSubsetOf, inboundClusterKey, InboundPassthroughCluster, outboundClusterKey, PassthroughCluster, resolveHost, VirtualInboundListener, VirtualOutboundListener } from '@weft/mesh';
import { type Config, isHttpProtocol, type Service, type ServicePort, type VirtualServiceSpec } from '@weft/model';
import type { HttpConnectionManager, Listener, RouteConfiguration } from '@weft/xds';
import type { EffectivePeerAuthentication, Generator, Proxy as MeshProxy, PushContext, XdsResource } from '../core/types.ts';
import {
  adsConfigSource,
  corsFilter,
  type FilterChain,
  type FilterChainMatch,
  faultFilter,
  type HttpFilter,
  hcmFilter,
  httpInspectorListenerFilter,
  type ListenerFilter,
  labelsMatch,
  type NetworkFilter,
  originalDstListenerFilter,
  routerFilter,
  socketAddress,
  tcpProxyFilter,
  tlsInspectorListenerFilter,
  weightedTcpProxyFilter,
  zeroDuration,
} from './envoy.ts';
import { type AuthzFilters, authzFilters, noAuthzFilters } from './authz.ts';
import { jwtFilters, withJwtFilters } from './jwt.ts';
import { type InboundPort, inboundPorts } from './inbound.ts';
import { type HcmTracing, hcmTracing } from './tracing.ts';
import {
  FilterChainNames,
  InboundCapturePort,
  listenerName,
  OutboundCapturePort,
} from './names.ts';
import { virtualHost } from './rds.ts';
import { defaultInboundRoute, destinationCluster, qualifyGateway, type RouteContext } from './route.ts';
import { allIstioMtlsAlpns, downstreamTransportSocket, inboundMtls, mtlsHttpAlpns, plaintextHttpAlpns } from './tls.ts';

type MtlsMode = EffectivePeerAuthentication['mode'];
type ListenerProtocol = 'http' | 'tcp' | 'auto';

/** The HTTP connection manager Istio puts on sidecar and gateway listeners. */
export function httpConnectionManager(
  statPrefix: string,
  route: { rds: string } | { routeConfig: RouteConfiguration },
  options: { inbound?: boolean; http2?: boolean; gateway?: boolean; tracing?: HcmTracing; authz?: readonly HttpFilter[] } = {},
): HttpConnectionManager {
  const hcm: HttpConnectionManager = {
    stat_prefix: statPrefix,
    // Authorization (RBAC) first, as Istio orders them: before fault, CORS and the router.
    http_filters: [...(options.authz ?? []), ...(options.inbound ? [routerFilter()] : [corsFilter(), faultFilter(), routerFilter()])],
    use_remote_address: { value: options.gateway ?? false },
    upgrade_configs: [{ upgrade_type: 'websocket' }],
    stream_idle_timeout: zeroDuration,
    normalize_path: { value: true },
    path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
  };
  if ('rds' in route) hcm.rds = { config_source: adsConfigSource(), route_config_name: route.rds };
  else hcm.route_config = route.routeConfig;
  if (options.inbound) {
    hcm.forward_client_cert_details = 'APPEND_FORWARD';
    hcm.set_current_client_cert_details = { subject: { value: true }, uri: true, dns: true };
  }
  if (options.http2) hcm.http2_protocol_options = {};
  if (options.tracing) hcm.tracing = options.tracing;
  return hcm;
}

function passthroughFilters(policy: 'ALLOW_ANY' | 'REGISTRY_ONLY'): NetworkFilter[] {
  const cluster = policy === 'REGISTRY_ONLY' ? BlackHoleCluster : PassthroughCluster;
  return [tcpProxyFilter(cluster)];
}

/** `virtualOutbound`: receives all captured outbound traffic and hands it to the listener of its original destination. */
export function virtualOutboundListener(policy: 'ALLOW_ANY' | 'REGISTRY_ONLY'): Listener {
  return {
    name: VirtualOutboundListener,
    address: socketAddress('0.0.0.0', OutboundCapturePort),
    use_original_dst: { value: true },
    traffic_direction: 'OUTBOUND',
    filter_chains: [
      {
        name: FilterChainNames.virtualOutboundBlackhole,
        filter_chain_match: { destination_port: { value: OutboundCapturePort } },
        filters: [tcpProxyFilter(BlackHoleCluster)],
      },
      { name: FilterChainNames.virtualOutboundCatchAllTcp, filters: passthroughFilters(policy) },
    ],
  };
}

interface OutboundEntry {
  name: string;
  bind: string;
  port: number;
  kind: 'http' | 'tcp' | 'tls';
  chains: FilterChain[];
}

/** VirtualServices bound to the mesh that name `service`. */
function virtualServicesFor(service: Service, virtualServices: readonly Config<VirtualServiceSpec>[], ctx: Pick<RouteContext, 'push'>) {
  return virtualServices.filter((vs) =>
    (vs.spec.hosts ?? []).some((h) => {
      return hostSubsetOf(service.hostname, resolveHost(h, vs.metadata.namespace, ctx.push.mesh.domainSuffix));
    }),
  );
}

function l4SourceMatches(
  m: { port?: number; sourceLabels?: Record<string, string>; sourceNamespace?: string; gateways?: string[] },
  port: number,
  vsNamespace: string,
  proxy: MeshProxy,
): boolean {
  if (m.port && m.port !== port) return false;
  if (m.gateways?.length && !m.gateways.some((g) => qualifyGateway(g, vsNamespace) === 'mesh')) return false;
  if (!labelsMatch(m.sourceLabels, proxy.labels)) return false;
  return !m.sourceNamespace || m.sourceNamespace === proxy.namespace;
}

/** The tcp_proxy for an opaque TCP or TLS service port: VirtualService `tcp`/`tls` routes, else the service's cluster. */
function l4Filter(service: Service, port: ServicePort, kind: 'tcp' | 'tls', push: PushContext, proxy: MeshProxy): NetworkFilter {
  const ctx: RouteContext = { push, proxy, listenPort: port.port, gatewayNames: new Set(['mesh']) };
  const fallback = outboundClusterKey(service.hostname, port.port);
  for (const vs of virtualServicesFor(service, push.virtualServices(proxy, ['mesh']), ctx)) {
    const rules =
      kind === 'tls'
        ? (vs.spec.tls ?? []).filter((r) => r.match.some((m) => l4SourceMatches(m, port.port, vs.metadata.namespace, proxy) && m.sniHosts.some((h) => hostSubsetOf(service.hostname, h))))
        : (vs.spec.tcp ?? []).filter((r) => !r.match?.length || r.match.some((m) => l4SourceMatches(m, port.port, vs.metadata.namespace, proxy)));
    const rule = rules[0];
    if (!rule?.route?.length) continue;
    if (rule.route.length === 1) return tcpProxyFilter(destinationCluster(rule.route[0]!.destination, vs.metadata.namespace, ctx));
    const clusters = rule.route.filter((d) => (d.weight ?? 0) > 0).map((d) => ({ name: destinationCluster(d.destination, vs.metadata.namespace, ctx), weight: d.weight ?? 0 }));
    return weightedTcpProxyFilter(clusters, fallback);
  }
  return tcpProxyFilter(fallback);
}

/** Per-port outbound listeners; on a conflict the first service to claim a listener keeps it (Istio counts the rest as conflicts). */
export function outboundListeners(push: PushContext, proxy: MeshProxy): Listener[] {
  const scope = push.sidecarScope(proxy);
  const entries = new Map<string, OutboundEntry>();
  const tracing = hcmTracing(push, proxy, 'sidecar-outbound');
  for (const service of scope.services) {
    for (const port of service.ports) {
      if (port.protocol === 'UDP') continue;
      if (isHttpProtocol(port.protocol)) {
        const name = listenerName('0.0.0.0', port.port);
        if (entries.has(name)) continue;
        const hcm = httpConnectionManager(`outbound_${name}`, { rds: String(port.port) }, tracing ? { tracing } : {});
        entries.set(name, { name, bind: '0.0.0.0', port: port.port, kind: 'http', chains: [{ filters: [hcmFilter(hcm)] }] });
        continue;
      }
      const kind = port.protocol === 'TLS' || port.protocol === 'HTTPS' ? 'tls' : 'tcp';
      const vip = service.addresses.find((a) => a !== '0.0.0.0' && !a.includes('/'));
      const bind = vip ?? '0.0.0.0';
      const name = listenerName(bind, port.port);
      const existing = entries.get(name);
      const filter = l4Filter(service, port, kind, push, proxy);
      if (kind === 'tls' && !vip && !service.hostname.startsWith('*')) {
        // Without a VIP, TLS services share the port and are told apart by SNI.
        const chain: FilterChain = { filter_chain_match: { server_names: [service.hostname] }, filters: [filter] };
        if (!existing) entries.set(name, { name, bind, port: port.port, kind, chains: [chain] });
        else if (existing.kind === 'tls') existing.chains.push(chain);
        continue;
      }
      if (existing) continue;
      entries.set(name, { name, bind, port: port.port, kind, chains: [{ filters: [filter] }] });
    }
  }
  return [...entries.values()].map((e) => {
    const l: Listener = {
      name: e.name,
      address: socketAddress(e.bind, e.port),
      traffic_direction: 'OUTBOUND',
      bind_to_port: { value: false },
      continue_on_listener_filters_timeout: true,
      listener_filters_timeout: zeroDuration,
      filter_chains: e.chains,
    };
    if (e.chains.some((c) => c.filter_chain_match?.server_names?.length)) {
      l.listener_filters = [tlsInspectorListenerFilter()];
      l.default_filter_chain = { filter_chain_match: {}, name: FilterChainNames.passthrough, filters: passthroughFilters(scope.outboundTrafficPolicy) };
    }
    return l;
  });
}

// ---------------------------------------------------------------- inbound

interface MatchOption {
  alpn?: readonly string[];
  transport: 'tls' | 'raw_buffer';
  protocol: 'http' | 'tcp';
  tls: boolean;
}

/** Istio's getFilterChainMatchOptions. */
export function filterChainMatchOptions(mode: MtlsMode, protocol: ListenerProtocol): MatchOption[] {
  if (protocol === 'http') {
    if (mode === 'STRICT') return [{ transport: 'tls', protocol: 'http', tls: true }];
    if (mode === 'PERMISSIVE') {
      return [
        { alpn: allIstioMtlsAlpns, transport: 'tls', protocol: 'http', tls: true },
        { transport: 'raw_buffer', protocol: 'http', tls: false },
      ];
    }
    return [{ transport: 'raw_buffer', protocol: 'http', tls: false }];
  }
  if (protocol === 'auto') {
    if (mode === 'STRICT') {
      return [
        { alpn: mtlsHttpAlpns, transport: 'tls', protocol: 'http', tls: true },
        { transport: 'tls', protocol: 'tcp', tls: true },
      ];
    }
    if (mode === 'PERMISSIVE') {
      return [
        { alpn: mtlsHttpAlpns, transport: 'tls', protocol: 'http', tls: true },
        { alpn: plaintextHttpAlpns, transport: 'raw_buffer', protocol: 'http', tls: false },
        { alpn: ['istio-peer-exchange', 'istio'], transport: 'tls', protocol: 'tcp', tls: true },
        { transport: 'raw_buffer', protocol: 'tcp', tls: false },
        { transport: 'tls', protocol: 'tcp', tls: false },
      ];
    }
    return [
      { alpn: plaintextHttpAlpns, transport: 'raw_buffer', protocol: 'http', tls: false },
      { transport: 'raw_buffer', protocol: 'tcp', tls: false },
    ];
  }
  if (mode === 'STRICT') return [{ transport: 'tls', protocol: 'tcp', tls: true }];
  if (mode === 'PERMISSIVE') {
    return [
      { alpn: allIstioMtlsAlpns, transport: 'tls', protocol: 'tcp', tls: true },
      { transport: 'raw_buffer', protocol: 'tcp', tls: false },
      // One-way TLS from a client without a sidecar passes through as TCP.
      { transport: 'tls', protocol: 'tcp', tls: false },
    ];
  }
  return [{ transport: 'raw_buffer', protocol: 'tcp', tls: false }];
}

function fcMatch(port: number, opt: MatchOption): FilterChainMatch {
  const m: FilterChainMatch = { transport_protocol: opt.transport };
  if (opt.alpn) m.application_protocols = [...opt.alpn];
  if (port > 0) m.destination_port = { value: port };
  return m;
}

function inboundRouteConfig(name: string, vhostName: string, cluster: string, operation: string): RouteConfiguration {
  return {
    name,
    virtual_hosts: [virtualHost(vhostName, ['*'], [defaultInboundRoute(cluster, operation)])],
    validate_clusters: { value: false },
  };
}

function inboundChains(p: InboundPort, mode: MtlsMode, tracing?: HcmTracing, authz: AuthzFilters = noAuthzFilters): FilterChain[] {
  const protocol: ListenerProtocol = isHttpProtocol(p.protocol) ? 'http' : 'tcp';
  const cluster = inboundClusterKey(p.targetPort);
  const name = listenerName('0.0.0.0', p.targetPort);
  return filterChainMatchOptions(mode, protocol).map((opt) => {
    const chain: FilterChain = { name, filter_chain_match: fcMatch(p.targetPort, opt) };
    if (opt.protocol === 'http') {
      const rc = inboundRouteConfig(cluster, `inbound|http|${p.targetPort}`, cluster, `${p.service.hostname}:${p.servicePort.port}/*`);
      const http2 = p.protocol === 'HTTP2' || p.protocol === 'GRPC' || p.protocol === 'GRPC-WEB';
      chain.filters = [hcmFilter(httpConnectionManager(`inbound_${name}`, { routeConfig: rc }, { inbound: true, http2, authz: authz.http, ...(tracing ? { tracing } : {}) }))];
    } else {
      chain.filters = [...authz.tcp, tcpProxyFilter(cluster)];
    }
    if (opt.tls) chain.transport_socket = downstreamTransportSocket(inboundMtls(opt.protocol));
    return chain;
  });
}

function passthroughChains(port: number, mode: MtlsMode, tracing?: HcmTracing, authz: AuthzFilters = noAuthzFilters): FilterChain[] {
  return filterChainMatchOptions(mode, 'auto').map((opt) => {
    const chain: FilterChain = { filter_chain_match: fcMatch(port, opt) };
    if (opt.protocol === 'http') {
      chain.name = FilterChainNames.virtualInboundCatchAllHttp;
      const rc = inboundRouteConfig(InboundPassthroughCluster, 'inbound|http|0', InboundPassthroughCluster, ':0/*');
      chain.filters = [hcmFilter(httpConnectionManager(InboundPassthroughCluster, { routeConfig: rc }, { inbound: true, authz: authz.http, ...(tracing ? { tracing } : {}) }))];
    } else {
      chain.name = FilterChainNames.virtualInbound;
      chain.filters = [...authz.tcp, tcpProxyFilter(InboundPassthroughCluster)];
    }
    if (opt.tls) chain.transport_socket = downstreamTransportSocket(inboundMtls(opt.protocol));
    return chain;
  });
}

function portRangePredicate(ports: number[]) {
  const rules = ports.map((p) => ({ destination_port_range: { start: p, end: p + 1 } }));
  return rules.length === 1 ? rules[0]! : { or_match: { rules } };
}

/** Istio's populateListenerFilters: TLS and HTTP inspectors only on the ports whose chains need them. */
function inboundListenerFilters(chains: readonly FilterChain[]): ListenerFilter[] {
  const inspectors = new Map<number, { tls: boolean; http: boolean }>();
  for (const c of chains) {
    const port = Number(c.filter_chain_match?.destination_port?.value ?? 0);
    const i = inspectors.get(port) ?? { tls: false, http: false };
    i.tls ||= c.filter_chain_match?.transport_protocol === 'tls';
    i.http ||= (c.filter_chain_match?.application_protocols ?? []).some((a) => a === 'http/1.1' || a === 'h2c');
    inspectors.set(port, i);
  }
  const out: ListenerFilter[] = [originalDstListenerFilter()];
  const entries = [...inspectors.entries()].sort(([a], [b]) => a - b);
  if (entries.some(([, i]) => i.tls)) {
    const tls = tlsInspectorListenerFilter();
    if (inspectors.get(0)?.tls) {
      const off = entries.filter(([p, i]) => p !== 0 && !i.tls).map(([p]) => p);
      if (off.length > 0) tls.filter_disabled = portRangePredicate(off);
    } else {
      const on = entries.filter(([p, i]) => p !== 0 && i.tls).map(([p]) => p);
      if (on.length > 0) tls.filter_disabled = { not_match: portRangePredicate(on) };
    }
    out.push(tls);
  }
  if (entries.some(([, i]) => i.http)) {
    const http = httpInspectorListenerFilter();
    const off = entries.filter(([, i]) => !i.http).map(([p]) => p);
    if (off.length > 0) http.filter_disabled = portRangePredicate(off);
    out.push(http);
  }
  return out;
}

/** `virtualInbound`: the blackhole for 15006 itself, passthrough chains, then per-port chains per the effective mTLS mode. */
export function virtualInboundListener(push: PushContext, proxy: MeshProxy): Listener {
  const pa = push.peerAuthentication(proxy);
  const ports = inboundPorts(push, proxy);
  const targetPorts = new Set(ports.map((p) => p.targetPort));
  const tracing = hcmTracing(push, proxy, 'sidecar-inbound');
  const authz = withJwtFilters(authzFilters(push, proxy), jwtFilters(push, proxy));
  const chains: FilterChain[] = [
    {
      name: FilterChainNames.virtualInboundBlackhole,
      filter_chain_match: { destination_port: { value: InboundCapturePort } },
      filters: [tcpProxyFilter(BlackHoleCluster)],
    },
    ...passthroughChains(0, pa.mode, tracing, authz),
  ];
  for (const [port, mode] of [...pa.portLevel.entries()].sort(([a], [b]) => a - b)) {
    if (!targetPorts.has(port)) chains.push(...passthroughChains(port, mode, tracing, authz));
  }
  for (const p of ports) chains.push(...inboundChains(p, pa.portLevel.get(p.targetPort) ?? pa.mode, tracing, authz));
  return {
    name: VirtualInboundListener,
    address: socketAddress('0.0.0.0', InboundCapturePort),
    traffic_direction: 'INBOUND',
    continue_on_listener_filters_timeout: true,
    listener_filters_timeout: zeroDuration,
    listener_filters: inboundListenerFilters(chains),
    filter_chains: chains,
  };
}

export function sidecarListeners(push: PushContext, proxy: MeshProxy): Listener[] {
  const policy = push.sidecarScope(proxy).outboundTrafficPolicy;
  return [virtualOutboundListener(policy), virtualInboundListener(push, proxy), ...outboundListeners(push, proxy)];
}

export function filterByName(resources: readonly { name?: string }[], names: readonly string[] | undefined): XdsResource[] {
  const wanted = names?.length ? new Set(names) : undefined;
  const out: XdsResource[] = [];
  for (const r of resources) {
    if (!r.name || (wanted && !wanted.has(r.name))) continue;
    out.push({ name: r.name, resource: r });
  }
  return out;
}

export const sidecarLds: Generator = (push, proxy, request) => filterByName(sidecarListeners(push, proxy), request.names);
