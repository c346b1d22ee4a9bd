// Local mode's outbound port (no root, no iptables): the sidecar's 15001 on the workload's
// address is an HTTP proxy the application calls by service name. A plain request names the
// service in Host (or :authority), an absolute-form request (HTTP_PROXY) in its URL, and the
// authority's port picks the listener `0.0.0.0_<port>`, as the original destination port would
// under capture; its route configuration routes as usual. A port without an HTTP listener goes
// where virtualOutbound sends unknown traffic (PassthroughCluster, or BlackHoleCluster with
// REGISTRY_ONLY). `CONNECT host:port` tunnels a connection as if it had been captured going
// there: that port's listener, else the TCP service's cluster by name, else PassthroughCluster.
import { isIP, type Socket } from 'node:net';
import type { Logger } from '@weft/model';
import { decodeMessage, encodeAny, encodeMessage, type RouteConfiguration__Output, TypeUrl } from '@weft/xds';
import type { DownstreamConnection, FilterRegistry, HttpFilter, NetworkFilter } from '../core/filters.ts';
import { singleCluster } from '../core/route-action.ts';
import type { XdsSnapshot } from '../core/types.ts';
import type { DownstreamRequest, DownstreamResponse } from '../http/codec.ts';
import type { CompiledChain, CompiledListener, HttpChainConfig, TcpRoute } from './chains.ts';
import { hostCandidates, outboundClusterKey, PassthroughCluster, VirtualOutboundListener as VirtualOutbound } from '@weft/mesh';
import { type ChainDispatcher, describeConnection, routesOf } from './dispatch.ts';
import { detect } from './detect.ts';
import { h2cSocket } from './h2-bridge.ts';
import type { ConnectionInfo, HttpFrontend } from './http.ts';
import type { ListenerManagerOptions } from './manager.ts';
import { proxyTcp } from './tcp.ts';

/** `reviews:9080` -> reviews and 9080; `[::1]:80`; the default port when none is given. */
export function hostAndPort(authority: string, defaultPort: number): { host: string; port: number } {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    const host = authority.slice(1, end);
    const rest = authority.slice(end + 1);
    return { host, port: rest.startsWith(':') ? Number(rest.slice(1)) || defaultPort : defaultPort };
  }
  const colon = authority.lastIndexOf(':');
  if (colon < 0 || authority.indexOf(':') !== colon) return { host: authority, port: defaultPort };
  return { host: authority.slice(0, colon), port: Number(authority.slice(colon + 1)) || defaultPort };
}

/** Where local mode's outbound proxy sends a request for an authority (`LocalOutboundProxy.httpTarget`). */
export interface LocalHttpTarget {
  /** The listener's name (`0.0.0.0_9080`), or virtualOutbound for the catch-all. */
  listener: string;
  /** The filter chain's name; for the catch-all, virtualOutbound's chain it stands for. */
  chainName: string | undefined;
  chain: HttpChainConfig;
  routes: RouteConfiguration__Output | undefined;
  /** The authority's host and port (the ORIGINAL_DST clusters' endpoint). */
  destination: { address: string; port: number };
  /** Set when no HTTP listener has the port: the catch-all's cluster (PassthroughCluster, BlackHoleCluster). */
  passthrough: string | undefined;
}

export class LocalOutboundProxy {
  readonly #o: ListenerManagerOptions;
  readonly #log: Logger;
  readonly #d: ChainDispatcher;
  readonly #frontend: HttpFrontend;
  readonly #snapshot: () => XdsSnapshot | undefined;
  /** virtualOutbound's catch-all spoken as HTTP, per cluster. */
  readonly #passthroughChains = new Map<string, HttpChainConfig>();

  constructor(options: ListenerManagerOptions, log: Logger, dispatcher: ChainDispatcher, frontend: HttpFrontend, snapshot: () => XdsSnapshot | undefined) {
    this.#o = options;
    this.#log = log;
    this.#d = dispatcher;
    this.#frontend = frontend;
    this.#snapshot = snapshot;
  }

  /** A connection to the outbound port: HTTP/1.1 or h2c, told by its first bytes; each request then picks its listener. */
  async accept(socket: Socket): Promise<void> {
    const d = await detect(socket, this.#o.inspectTimeoutMs ?? 5000);
    if (!d) return;
    const local = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    const info: ConnectionInfo = {
      listener: VirtualOutbound,
      direction: 'outbound',
      chain: undefined,
      downstreamTls: false,
      originalDestination: undefined,
      connection: describeConnection(socket, undefined, local, undefined),
    };
    const h2 = d.alpn.includes('h2c');
    this.#frontend.serve(h2 ? h2cSocket(socket) : socket, info, h2);
  }

  /**
   * Local mode's outbound port: an HTTP proxy. The request's authority (absolute-form URL, else
   * Host / :authority) names the service; its port picks the listener `0.0.0.0_<port>` and that
   * listener's route configuration, as the original destination port would under capture.
   */
  serveRequest(req: DownstreamRequest, res: DownstreamResponse, snap: XdsSnapshot, connection: DownstreamConnection): void {
    let authority = (req.headers[':authority'] as string | undefined) ?? req.headers.host ?? '';
    const url = req.url ?? '/';
    if (!url.startsWith('/')) {
      // Absolute form (a client configured with HTTP_PROXY): the URL's authority wins over Host.
      try {
        const u = new URL(url);
        authority = u.host;
        req.url = `${u.pathname}${u.search}`;
        if ('httpVersionMajor' in req && req.httpVersionMajor === 1) req.headers.host = authority;
      } catch {
        res.statusCode = 400;
        res.end();
        return;
      }
    }
    const t = this.httpTarget(snap, authority);
    this.#o.routing.serve(req, res, t.routes, {
      direction: 'outbound',
      listener: t.listener,
      chain: t.chain,
      snapshot: snap,
      downstreamTls: false,
      originalDestination: t.destination,
      connection,
    });
  }

  /**
   * The listener, chain and route configuration a request for `authority` meets: the port's HTTP
   * listener, else virtualOutbound's catch-all spoken as HTTP. `serveRequest`'s decision, also
   * what the admin's /debug/why reports (admin/why.ts).
   */
  httpTarget(snap: XdsSnapshot, authority: string): LocalHttpTarget {
    const { host, port } = hostAndPort(authority, 80);
    const dst = { address: host, port };
    const l = (ipLike(host) ? snap.listeners.get(`${host}_${port}`) : undefined) ?? snap.listeners.get(`0.0.0.0_${port}`);
    const c = l ? this.#d.compiled(l) : undefined;
    const chain = c ? httpChainOf(c) : undefined;
    if (c && chain?.http) return { listener: c.name, chainName: chain.name, chain: chain.http, routes: routesOf(snap, chain.http), destination: dst, passthrough: undefined };
    // No HTTP listener for the port: what virtualOutbound does with unknown traffic
    // (PassthroughCluster with ALLOW_ANY, BlackHoleCluster with REGISTRY_ONLY), over HTTP.
    const vo = snap.listeners.get(VirtualOutbound);
    const voc = vo ? this.#d.compiled(vo) : undefined;
    const catchAll = voc?.chains.find((ch) => !ch.match?.destination_port && ch.tcp) ?? voc?.defaultChain;
    const catchAllAction = catchAll?.tcp?.action;
    const cluster = (catchAllAction?.weighted ? catchAllAction.weighted.items[0]?.name : catchAllAction?.cluster) ?? PassthroughCluster;
    const chainConfig = this.#passthroughChain(cluster);
    return { listener: VirtualOutbound, chainName: catchAll?.name, chain: chainConfig, routes: chainConfig.inlineRoutes, destination: dst, passthrough: cluster };
  }

  #passthroughChain(cluster: string): HttpChainConfig {
    let chain = this.#passthroughChains.get(cluster);
    if (!chain) {
      chain = passthroughChain(cluster, this.#o.filters);
      this.#passthroughChains.set(cluster, chain);
    }
    return chain;
  }

  /** Local mode: `CONNECT host:port` tunnels a connection as if it had been captured going there. */
  connect(req: DownstreamRequest, socket: Socket, head: Buffer, info: ConnectionInfo): void {
    const snap = this.#snapshot();
    if (info.chain || !snap) return void socket.destroy();
    const { host, port } = hostAndPort(req.url ?? '', 443);
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    const dst = { address: host, port };
    const run = async () => {
      if (isIP(host)) {
        const l = this.#d.listenerFor(snap, dst) ?? (snap.listeners.get(VirtualOutbound) ? this.#d.compiled(snap.listeners.get(VirtualOutbound)!) : undefined);
        if (!l) return void socket.destroy();
        await this.#d.dispatch(snap, socket, l, dst, 'outbound', dst);
        return;
      }
      const httpListener = snap.listeners.get(`0.0.0.0_${port}`);
      const hl = httpListener ? this.#d.compiled(httpListener) : undefined;
      if (hl?.chains.some((c) => c.http)) {
        await this.#d.dispatch(snap, socket, hl, dst, 'outbound', dst);
        return;
      }
      // An opaque TCP service by name: its cluster, else passthrough to the name itself.
      const cluster = this.#clusterByName(snap, host, port);
      const route: TcpRoute = { action: singleCluster(cluster), statPrefix: cluster, idleTimeoutMs: undefined, maxConnectAttempts: 1 };
      const filters: NetworkFilter[] = [];
      for (const factory of this.#o.filters?.tcpChain ?? []) {
        const f = factory({ where: `${VirtualOutbound}#connect`, listener: VirtualOutbound, direction: 'outbound' });
        if (f) filters.push(f);
      }
      await proxyTcp(socket, route, {
        clusters: this.#o.clusters,
        direction: 'outbound',
        listener: VirtualOutbound,
        originalDestination: dst,
        onRecord: this.#o.onRecord,
        filters,
        connection: info.connection,
      });
    };
    run().catch((err: unknown) => {
      this.#log.error('CONNECT tunnel failed', { target: req.url, error: err });
      socket.destroy();
    });
  }

  #clusterByName(snap: XdsSnapshot, host: string, port: number): string {
    const ns = this.#o.namespace ?? 'default';
    const suffix = this.#o.domainSuffix ?? 'cluster.local';
    for (const h of hostCandidates(host, ns, suffix)) {
      const name = outboundClusterKey(h, port);
      if (snap.clusters.has(name)) return name;
    }
    return PassthroughCluster;
  }
}

/** An HTTP connection manager sending everything to one cluster: virtualOutbound's catch-all, spoken as HTTP. */
function passthroughChain(cluster: string, filters: FilterRegistry | undefined): HttpChainConfig {
  const name = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
  const hcm = decodeMessage(
    name,
    encodeMessage(name, {
      stat_prefix: 'outbound_passthrough',
      route_config: {
        name: 'allow_any',
        virtual_hosts: [{ name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster } }] }],
      },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: encodeAny(TypeUrl.Router, {}) }],
    }),
  );
  const compiled: HttpFilter[] = [];
  for (const factory of filters?.connectionManager ?? []) {
    const f = factory(hcm, { where: `${VirtualOutbound}#passthrough`, listener: VirtualOutbound, direction: 'outbound', hcm });
    if (f) compiled.push(f);
  }
  return {
    hcm,
    filters: compiled,
    statPrefix: hcm.stat_prefix,
    routeName: undefined,
    inlineRoutes: hcm.route_config ?? undefined,
    http2: false,
    useRemoteAddress: false,
    bufferLimitBytes: undefined,
  };
}

/** Local mode's chain of a listener: its first HTTP chain, else an HTTP default chain (requests need no chain match). */
export function httpChainOf(c: CompiledListener): CompiledChain | undefined {
  return c.chains.find((ch) => ch.http) ?? (c.defaultChain?.http ? c.defaultChain : undefined);
}

/** An IP address (isIP's IPv6 pattern is long; a service name, the common case, starts with a letter). */
function ipLike(host: string): boolean {
  const c = host.charCodeAt(0);
  return ((c >= 48 && c <= 57) || host.includes(':')) && isIP(host) !== 0;
}
