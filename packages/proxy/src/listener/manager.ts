// The listeners: which sockets the proxy binds for a snapshot, and what happens to a connection.
//
// Capture mode (iptables redirects traffic): `virtualOutbound` and `virtualInbound` are bound;
// an outbound connection is handed to the listener of its original destination (SO_ORIGINAL_DST)
// as Envoy's use_original_dst does (`<ip>_<port>`, else `0.0.0.0_<port>`, else virtualOutbound's
// own chains); inbound connections pick virtualInbound's chain by their original port.
//
// Local mode (no root, no iptables): the sidecar binds on the workload's own loopback address:
// the outbound port (15001) is an HTTP proxy (absolute-form requests, Host-addressed requests and
// CONNECT tunnels) whose requests pick the listener `0.0.0.0_<port>` from their authority, and
// each inbound port of the workload is bound there, fronting the application.
//
// Gateways (`router`) bind every listener at its port.
import { isIP, type Server as NetServer, createServer as createNetServer, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { type Logger, silentLogger } from '@weft/model';
import { decodeMessage, encodeAny, encodeMessage, type Listener__Output, TypeUrl } from '@weft/xds';
import { getOriginalDst } from '../capture/original-dst.ts';
import type { ClusterManager, RequestRecord, XdsSnapshot } from '../core/types.ts';
import type { DownstreamConnection, FilterRegistry, HttpFilter, NetworkFilter } from '../core/filters.ts';
import { firstUriSan, unmappedIp } from '../core/peer.ts';
import { singleCluster } from '../core/route-action.ts';
import { type CompiledChain, type CompiledListener, type CompileOptions, type ConnectionFacts, compiledListener, type HttpChainConfig, selectChain, type TcpRoute } from './chains.ts';
import { type Detected, detect } from './detect.ts';
import type { DownstreamRequest, DownstreamResponse } from '../http/codec.ts';
import { type ConnectionInfo, HttpFrontend, type HttpRouting, type ListenerRequestContext } from './http.ts';
import { proxyTcp } from './tcp.ts';
import { ServerTlsCache, type TlsSecretSource, verifyClientCertificate } from './tls.ts';
import { h2OverTls } from './h2-bridge.ts';

export const VirtualOutbound = 'virtualOutbound';
export const VirtualInbound = 'virtualInbound';

export interface ListenerManagerOptions {
  /** `sidecar` or `router` (gateway). */
  kind: 'sidecar' | 'router';
  /** `capture`: iptables sends traffic to 15001/15006; `local`: explicit listeners on `bindAddress`. */
  mode: 'capture' | 'local';
  clusters: ClusterManager;
  routing: HttpRouting;
  /** Local mode: the workload's loopback address. Gateways: overrides the listeners' own address. */
  bindAddress?: string;
  /** Port of virtualOutbound (capture) or of the outbound HTTP proxy (local); default 15001. */
  outboundPort?: number;
  /** Port of virtualInbound (capture); default 15006. */
  inboundPort?: number;
  /** Local mode: where inbound traffic without a service port chain goes (the application). */
  appTarget?: (port: number) => { address: string; port: number };
  /** Local mode: resolving `reviews` to `reviews.<namespace>.svc.<domainSuffix>` for CONNECT. */
  namespace?: string;
  domainSuffix?: string;
  /** Secrets beyond the snapshot's (issue 6: the workload certificate and root from SDS). */
  secrets?: TlsSecretSource;
  /** Filters beyond routing (authorization, telemetry) that chains may name or always get. */
  filters?: FilterRegistry;
  onRecord?: (r: RequestRecord) => void;
  logger?: Logger;
  /** How long to wait for a client's first bytes when the chain depends on them (default 5000 ms). */
  inspectTimeoutMs?: number;
  /** Called with each listening socket's server before it listens: local mode's owner-only check (@weft/guard). */
  protect?: (server: NetServer, port: string) => void;
}

type Role = { kind: 'listener'; name: string } | { kind: 'local-outbound' } | { kind: 'local-inbound'; port: number };

interface Bound {
  key: string;
  address: string;
  port: number;
  role: Role;
  server: NetServer;
  listening: boolean;
  connections: number;
  accepted: number;
}

export interface BoundListener {
  /** The listener it serves (`virtualOutbound`…; `local-outbound`; `local-inbound:<port>`). */
  name: string;
  address: string;
  port: number;
  listening: boolean;
  activeConnections: number;
  totalConnections: number;
}

function roleName(r: Role): string {
  return r.kind === 'listener' ? r.name : r.kind === 'local-outbound' ? 'local-outbound' : `local-inbound:${r.port}`;
}

export function directionOf(l: Listener__Output, kind: 'sidecar' | 'router'): RequestRecord['direction'] {
  if (kind === 'router') return 'gateway';
  return l.traffic_direction === 'INBOUND' ? 'inbound' : 'outbound';
}

function hostAndPort(authority: string, defaultPort: number): { host: string; port: number } {
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

export class ListenerManager {
  readonly #o: ListenerManagerOptions;
  readonly #log: Logger;
  readonly #bound = new Map<string, Bound>();
  readonly #frontend: HttpFrontend;
  readonly #tls = new ServerTlsCache();
  readonly #sockets = new Set<Socket>();
  #snapshot: XdsSnapshot | undefined;
  #closing = false;

  constructor(options: ListenerManagerOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#frontend = new HttpFrontend({
      onRequest: (req, res, info) => this.#onRequest(req, res, info),
      onConnect: (req, socket, head, info) => this.#onConnectTunnel(req, socket, head, info),
    });
  }

  get snapshot(): XdsSnapshot | undefined {
    return this.#snapshot;
  }

  /** Makes `snapshot` the one new connections and requests use, and binds or closes sockets to match it. */
  async update(snapshot: XdsSnapshot): Promise<void> {
    this.#snapshot = snapshot;
    if (this.#closing) return;
    const wanted = this.#wanted(snapshot);
    for (const [key, b] of this.#bound) {
      if (wanted.has(key) && roleName(wanted.get(key)!.role) === roleName(b.role)) continue;
      // Removed: stop accepting; connections in flight finish on their own.
      this.#bound.delete(key);
      b.server.close();
      this.#log.info('listener removed', { listener: roleName(b.role), address: `${b.address}:${b.port}` });
    }
    const binds: Promise<void>[] = [];
    for (const [key, w] of wanted) {
      if (this.#bound.has(key)) continue;
      binds.push(this.#bind(key, w.address, w.port, w.role));
    }
    await Promise.all(binds);
  }

  bound(): BoundListener[] {
    return [...this.#bound.values()].map((b) => ({
      name: roleName(b.role),
      address: b.address,
      port: b.port,
      listening: b.listening,
      activeConnections: b.connections,
      totalConnections: b.accepted,
    }));
  }

  /**
   * Envoy's graceful `drain_listeners` (pilot-agent asks for it on SIGTERM, `inboundonly` for
   * sidecars): every listener keeps accepting, since callers keep sending until the endpoint has
   * left their EDS, and each HTTP connection of the drained side, open or opened later, is asked
   * to go: `connection: close` on its next response (idle ones close now), GOAWAY on HTTP/2.
   * `inbound` leaves outbound alone, so that the application finishes its work through the proxy.
   */
  drain(side: 'inbound' | 'all'): void {
    this.#frontend.drain(side === 'all' ? undefined : (info) => info.direction === 'inbound');
  }

  /** Connections accepted by the listeners and still open (Envoy's `downstream_cx_active` over listeners). */
  get activeConnections(): number {
    return this.#sockets.size;
  }

  /** Stops accepting, lets requests in flight finish for up to `drainMs`, then closes what is left. */
  async close(drainMs = 5000): Promise<void> {
    this.#closing = true;
    // Stop accepting now; a server's close callback waits for its connections, so collect it for later.
    const closed = [...this.#bound.values()].map((b) => new Promise<void>((resolve) => b.server.close(() => resolve())));
    this.#bound.clear();
    this.#frontend.drain();
    const deadline = Date.now() + drainMs;
    while (this.#sockets.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      this.#frontend.drain();
    }
    this.#frontend.destroy();
    for (const s of this.#sockets) s.destroy();
    await Promise.all(closed);
  }

  // ---------------------------------------------------------------- binding

  #wanted(snapshot: XdsSnapshot): Map<string, { address: string; port: number; role: Role }> {
    const out = new Map<string, { address: string; port: number; role: Role }>();
    const add = (address: string, port: number, role: Role) => out.set(`${address}:${port}`, { address, port, role });
    const o = this.#o;
    if (o.kind === 'router') {
      for (const l of snapshot.listeners.values()) {
        const c = this.#compiled(l);
        if (c?.bindToPort) add(o.bindAddress ?? c.address, c.port, { kind: 'listener', name: l.name });
      }
      return out;
    }
    if (o.mode === 'capture') {
      for (const l of snapshot.listeners.values()) {
        const c = this.#compiled(l);
        if (!c?.bindToPort) continue;
        const port = l.name === VirtualOutbound ? (o.outboundPort ?? c.port) : l.name === VirtualInbound ? (o.inboundPort ?? c.port) : c.port;
        add(o.bindAddress ?? c.address, port, { kind: 'listener', name: l.name });
      }
      return out;
    }
    const address = o.bindAddress ?? '127.0.0.1';
    add(address, o.outboundPort ?? 15001, { kind: 'local-outbound' });
    const inbound = snapshot.listeners.get(VirtualInbound);
    const c = inbound ? this.#compiled(inbound) : undefined;
    for (const chain of c?.chains ?? []) {
      const port = chain.match?.destination_port?.value;
      if (!port || port === c!.port) continue;
      if (!out.has(`${address}:${port}`)) add(address, port, { kind: 'local-inbound', port });
    }
    return out;
  }

  #compileOptions(l: Listener__Output): CompileOptions {
    const o: CompileOptions = { checkRoutes: (rc) => this.#o.routing.check(rc), direction: directionOf(l, this.#o.kind) };
    if (this.#o.filters) o.filters = this.#o.filters;
    return o;
  }

  #compiled(l: Listener__Output): CompiledListener | undefined {
    try {
      return compiledListener(l, () => this.#compileOptions(l));
    } catch (err) {
      // Accepted listeners were compiled when they were checked; this is not expected.
      this.#log.error('listener does not compile', { listener: l.name, error: err });
      return undefined;
    }
  }

  #bind(key: string, address: string, port: number, role: Role): Promise<void> {
    const server = createNetServer({ allowHalfOpen: true, noDelay: true });
    const b: Bound = { key, address, port, role, server, listening: false, connections: 0, accepted: 0 };
    this.#bound.set(key, b);
    this.#o.protect?.(server, roleName(role));
    server.on('connection', (socket: Socket) => {
      b.accepted++;
      b.connections++;
      this.#sockets.add(socket);
      socket.once('close', () => {
        b.connections--;
        this.#sockets.delete(socket);
      });
      socket.on('error', () => {});
      this.#onConnection(socket, role).catch((err: unknown) => {
        this.#log.error('connection handling failed', { listener: roleName(role), error: err });
        socket.destroy();
      });
    });
    return new Promise((resolve) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        this.#log.error('cannot bind listener', { listener: roleName(role), address: `${address}:${port}`, error: err.message, code: err.code });
        if (this.#bound.get(key) === b) this.#bound.delete(key);
        resolve();
      });
      server.listen({ host: address, port }, () => {
        b.listening = true;
        this.#log.info('listener bound', { listener: roleName(role), address: `${address}:${port}` });
        resolve();
      });
    });
  }

  // ---------------------------------------------------------------- connections

  async #onConnection(socket: Socket, role: Role): Promise<void> {
    const snap = this.#snapshot;
    if (!snap) return void socket.destroy();
    const local = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    if (role.kind === 'local-outbound') {
      const d = await detect(socket, this.#o.inspectTimeoutMs ?? 5000);
      if (!d) return;
      const info: ConnectionInfo = {
        listener: VirtualOutbound,
        direction: 'outbound',
        chain: undefined,
        downstreamTls: false,
        originalDestination: undefined,
        connection: describeConnection(socket, undefined, local, undefined),
      };
      this.#frontend.serve(socket, info, d.alpn.includes('h2c'));
      return;
    }
    if (role.kind === 'local-inbound') {
      const l = snap.listeners.get(VirtualInbound);
      const c = l ? this.#compiled(l) : undefined;
      if (!c) return void socket.destroy();
      const app = this.#o.appTarget?.(role.port) ?? { address: '127.0.0.1', port: role.port };
      await this.#dispatch(socket, c, { address: local.address, port: role.port }, 'inbound', app);
      return;
    }
    const l = snap.listeners.get(role.name);
    const c = l ? this.#compiled(l) : undefined;
    if (!l || !c) return void socket.destroy();
    if (this.#o.kind === 'router') {
      await this.#dispatch(socket, c, local, 'gateway', undefined);
      return;
    }
    // Capture: where the connection was going (the local address when it was not redirected).
    const dst = getOriginalDst(socket) ?? local;
    let target = c;
    if (c.useOriginalDst) {
      const next = this.#listenerFor(snap, dst);
      if (next) target = next;
    }
    await this.#dispatch(socket, target, dst, directionOf(target.listener, this.#o.kind), dst);
  }

  /** Envoy's original_dst hand-off: `<ip>_<port>`, else `0.0.0.0_<port>`; undefined keeps the connection on virtualOutbound. */
  #listenerFor(snap: XdsSnapshot, dst: { address: string; port: number }): CompiledListener | undefined {
    const l = snap.listeners.get(`${dst.address}_${dst.port}`) ?? snap.listeners.get(`0.0.0.0_${dst.port}`) ?? (isIP(dst.address) === 6 ? snap.listeners.get(`[::]_${dst.port}`) : undefined);
    return l ? this.#compiled(l) : undefined;
  }

  async #dispatch(
    socket: Socket,
    l: CompiledListener,
    dst: { address: string; port: number },
    direction: RequestRecord['direction'],
    originalDestination: { address: string; port: number } | undefined,
  ): Promise<void> {
    const facts: ConnectionFacts = {
      destinationAddress: dst.address,
      destinationPort: dst.port,
      sourceAddress: socket.remoteAddress ?? '',
      sourcePort: socket.remotePort ?? 0,
      transport: 'raw_buffer',
      sni: undefined,
      alpn: [],
    };
    let detected: Detected | undefined;
    if (l.needsInspection) {
      detected = await detect(socket, this.#o.inspectTimeoutMs ?? 5000);
      if (!detected) return;
      facts.transport = detected.transport;
      facts.sni = detected.sni;
      facts.alpn = detected.alpn;
    }
    const chain = selectChain(l, facts);
    if (!chain) {
      this.#log.debug('no filter chain matches; closing', { listener: l.name, destination: `${dst.address}:${dst.port}`, transport: facts.transport });
      socket.destroy();
      return;
    }
    let stream: Socket = socket;
    let tls = false;
    if (chain.tls) {
      // The client's ALPN decides what the server may select (see #terminateTls).
      if (!detected) {
        detected = await detect(socket, this.#o.inspectTimeoutMs ?? 5000);
        if (!detected) return;
      }
      const terminated = await this.#terminateTls(socket, chain, l.name, detected.alpn);
      if (!terminated) return;
      stream = terminated;
      tls = true;
    }
    const connection = describeConnection(socket, tls ? (stream as TLSSocket) : undefined, dst, facts.sni);
    const info: ConnectionInfo = { listener: l.name, direction, chain, downstreamTls: tls, originalDestination, connection };
    if (chain.http) {
      let h2: boolean;
      if (tls) {
        const alpn = (stream as TLSSocket).alpnProtocol;
        if (alpn === 'h2' || alpn === 'http/1.1') h2 = alpn === 'h2';
        else {
          // Mesh mTLS negotiates `istio`/`istio-peer-exchange` or nothing: the codec is told by the
          // first bytes (Envoy's AUTO codec), HTTP/2 by its preface.
          const inner = await detect(stream, this.#o.inspectTimeoutMs ?? 5000);
          if (!inner) return;
          h2 = inner.alpn.includes('h2c');
        }
      } else {
        if (!detected) {
          detected = await detect(socket, this.#o.inspectTimeoutMs ?? 5000);
          if (!detected) return;
        }
        h2 = detected.alpn.includes('h2c');
      }
      this.#frontend.serve(tls && h2 ? h2OverTls(stream as TLSSocket) : stream, info, h2);
      return;
    }
    if (chain.tcp) {
      await proxyTcp(stream, chain.tcp, {
        clusters: this.#o.clusters,
        direction,
        listener: l.name,
        originalDestination,
        onRecord: this.#o.onRecord,
        onError: (msg, fields) => this.#log.debug(msg, { listener: l.name, ...fields }),
        filters: chain.networkFilters,
        connection,
      });
      return;
    }
    socket.destroy();
  }

  async #terminateTls(socket: Socket, chain: CompiledChain, listener: string, clientAlpn: readonly string[]): Promise<TLSSocket | undefined> {
    const snap = this.#snapshot!;
    const secret: TlsSecretSource = (name) => snap.secrets.get(name) ?? this.#o.secrets?.(name);
    let server: ReturnType<ServerTlsCache['get']>;
    try {
      server = this.#tls.get(chain.tls!, secret);
    } catch (err) {
      this.#log.warn('TLS is not available for this filter chain; closing the connection', { listener, chain: chain.name, error: (err as Error).message });
      socket.destroy();
      return undefined;
    }
    const tlsSocket = new TLSSocket(socket, {
      isServer: true,
      secureContext: server.context,
      // Envoy selects nothing when no protocol is shared; OpenSSL in Node would refuse the handshake
      // (no_application_protocol), and sidecars offer only `istio-peer-exchange`/`istio` for HTTP/1.
      ...(clientAlpn.some((p) => server.alpn.includes(p)) ? { ALPNProtocols: server.alpn } : {}),
      requestCert: server.requestCert,
      rejectUnauthorized: server.rejectUnauthorized,
    });
    tlsSocket.on('error', () => {});
    socket.resume();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        tlsSocket.destroy();
        resolve(undefined);
      }, 10_000);
      tlsSocket.once('secure', () => {
        clearTimeout(timer);
        if (server.requestCert && !verifyClientCertificate(tlsSocket, server.rejectUnauthorized)) {
          this.#log.debug('client certificate refused', { listener, chain: chain.name, error: String(tlsSocket.authorizationError) });
          tlsSocket.destroy();
          resolve(undefined);
          return;
        }
        resolve(tlsSocket);
      });
      tlsSocket.once('close', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
  }

  // ---------------------------------------------------------------- requests

  #onRequest(req: DownstreamRequest, res: DownstreamResponse, info: ConnectionInfo): void {
    const snap = this.#snapshot;
    if (!snap) {
      res.statusCode = 503;
      res.end();
      return;
    }
    if (!info.chain) {
      this.#serveLocalOutbound(req, res, snap, info.connection);
      return;
    }
    const http = info.chain.http!;
    const routes = http.inlineRoutes ?? (http.routeName !== undefined ? snap.routes.get(http.routeName) : undefined);
    const ctx: ListenerRequestContext = {
      direction: info.direction,
      listener: info.listener,
      chain: http,
      snapshot: snap,
      downstreamTls: info.downstreamTls,
      originalDestination: info.originalDestination,
      connection: info.connection,
    };
    this.#o.routing.serve(req, res, routes, ctx);
  }

  /**
   * Local mode's outbound port: an HTTP proxy. The request's authority (absolute-form URL, else
   * Host / :authority) names the service; its port picks the listener `0.0.0.0_<port>` and that
   * listener's route configuration, as the original destination port would under capture.
   */
  #serveLocalOutbound(req: DownstreamRequest, res: DownstreamResponse, snap: XdsSnapshot, connection: DownstreamConnection): void {
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
    const { host, port } = hostAndPort(authority, 80);
    const dst = { address: host, port };
    const l = (isIP(host) ? snap.listeners.get(`${host}_${port}`) : undefined) ?? snap.listeners.get(`0.0.0.0_${port}`);
    const c = l ? this.#compiled(l) : undefined;
    const chain = c?.chains.find((ch) => ch.http) ?? (c?.defaultChain?.http ? c.defaultChain : undefined);
    if (c && chain?.http) {
      const routes = chain.http.inlineRoutes ?? (chain.http.routeName !== undefined ? snap.routes.get(chain.http.routeName) : undefined);
      this.#o.routing.serve(req, res, routes, { direction: 'outbound', listener: c.name, chain: chain.http, snapshot: snap, downstreamTls: false, originalDestination: dst, connection });
      return;
    }
    // No HTTP listener for the port: what virtualOutbound does with unknown traffic
    // (PassthroughCluster with ALLOW_ANY, BlackHoleCluster with REGISTRY_ONLY), over HTTP.
    const vo = snap.listeners.get(VirtualOutbound);
    const voc = vo ? this.#compiled(vo) : undefined;
    const catchAll = voc?.chains.find((ch) => !ch.match?.destination_port && ch.tcp) ?? voc?.defaultChain;
    const catchAllAction = catchAll?.tcp?.action;
    const cluster = (catchAllAction?.weighted ? catchAllAction.weighted.items[0]?.name : catchAllAction?.cluster) ?? 'PassthroughCluster';
    const chainConfig = this.#passthroughChain(cluster);
    this.#o.routing.serve(req, res, chainConfig.inlineRoutes, {
      direction: 'outbound',
      listener: VirtualOutbound,
      chain: chainConfig,
      snapshot: snap,
      downstreamTls: false,
      originalDestination: dst,
      connection,
    });
  }

  readonly #passthroughChains = new Map<string, HttpChainConfig>();

  #passthroughChain(cluster: string): HttpChainConfig {
    let chain = this.#passthroughChains.get(cluster);
    if (!chain) {
      chain = passthroughChain(cluster, this.#o.filters);
      this.#passthroughChains.set(cluster, chain);
    }
    return chain;
  }

  /** Local mode: `CONNECT host:port` tunnels a connection as if it had been captured going there. */
  #onConnectTunnel(req: DownstreamRequest, socket: Socket, head: Buffer, info: ConnectionInfo): void {
    const snap = this.#snapshot;
    if (info.chain || !snap) return void socket.destroy();
    const { host, port } = hostAndPort(req.url ?? '', 443);
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    const dst = { address: host, port };
    const run = async () => {
      if (isIP(host)) {
        const l = this.#listenerFor(snap, dst) ?? (snap.listeners.get(VirtualOutbound) ? this.#compiled(snap.listeners.get(VirtualOutbound)!) : undefined);
        if (!l) return void socket.destroy();
        await this.#dispatch(socket, l, dst, 'outbound', dst);
        return;
      }
      const httpListener = snap.listeners.get(`0.0.0.0_${port}`);
      const hl = httpListener ? this.#compiled(httpListener) : undefined;
      if (hl?.chains.some((c) => c.http)) {
        await this.#dispatch(socket, hl, dst, 'outbound', dst);
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
    const candidates = [host, `${host}.${ns}.svc.${suffix}`, `${host}.svc.${suffix}`, `${host}.${suffix}`];
    for (const h of candidates) {
      const name = `outbound|${port}||${h}`;
      if (snap.clusters.has(name)) return name;
    }
    return 'PassthroughCluster';
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

/** What filters learn about a downstream connection (after TLS termination, when there is one). */
export function describeConnection(socket: Socket, tls: TLSSocket | undefined, dst: { address: string; port: number }, sni: string | undefined): DownstreamConnection {
  let peerPrincipal: string | undefined;
  let peerCertificate: Buffer | undefined;
  let localPrincipal: string | undefined;
  if (tls) {
    if (tls.authorized) {
      const peer = tls.getPeerCertificate();
      if (peer && Object.keys(peer).length > 0) {
        peerPrincipal = firstUriSan(peer.subjectaltname);
        peerCertificate = peer.raw;
      }
    }
    const own = tls.getCertificate();
    if (own && 'subjectaltname' in own) localPrincipal = firstUriSan(own.subjectaltname);
  }
  return {
    remoteAddress: unmappedIp(socket.remoteAddress),
    remotePort: socket.remotePort ?? 0,
    localAddress: unmappedIp(socket.localAddress),
    localPort: socket.localPort ?? 0,
    destinationAddress: unmappedIp(dst.address),
    destinationPort: dst.port,
    tls: !!tls,
    peerPrincipal,
    peerCertificate,
    localPrincipal,
    sni: sni ?? (tls ? tls.servername || undefined : undefined),
  };
}
