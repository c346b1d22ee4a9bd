// The listener stage: which sockets the proxy binds for a snapshot, and which listener an
// accepted connection belongs to; dispatch.ts then picks its filter chain and hands it on.
//
// Capture mode (iptables redirects traffic): `virtualOutbound` and `virtualInbound` are bound;
// an outbound connection is handed to the listener of its original destination (SO_ORIGINAL_DST)
// as Envoy's use_original_dst does (`<ip>_<port>`, else `0.0.0.0_<port>`, else virtualOutbound's
// own chains); inbound connections pick virtualInbound's chain by their original port.
//
// Local mode (no root, no iptables): the sidecar binds on the workload's own loopback address:
// the outbound port (15001) is an HTTP proxy (local-outbound.ts), and each inbound port of the
// workload is bound there, fronting the application.
//
// Gateways (`router`) bind every listener at its port.
import { isIP, type Server as NetServer, createServer as createNetServer, type Socket } from 'node:net';
import { type Logger, silentLogger } from '@weft/model';
import { getOriginalDst } from '../capture/original-dst.ts';
import type { FilterRegistry } from '../core/filters.ts';
import type { ClusterManager, RequestRecord, XdsSnapshot } from '../core/types.ts';
import type { DownstreamRequest, DownstreamResponse } from '../http/codec.ts';
import type { RouteConfiguration__Output } from '@weft/xds';
import { type CompiledChain, type CompiledListener, type HttpChainConfig, selectChain, type TcpRoute } from './chains.ts';
import { VirtualInboundListener as VirtualInbound, VirtualOutboundListener as VirtualOutbound } from '@weft/mesh';
import { ChainDispatcher, directionOf, routesOf } from './dispatch.ts';
import { type ConnectionInfo, HttpFrontend, type HttpRouting, type ListenerRequestContext } from './http.ts';
import { hostAndPort, httpChainOf, LocalOutboundProxy } from './local-outbound.ts';
import type { TlsSecretSource } from './tls.ts';

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

/** `ListenerManager.outboundTarget`: the listener and filter chain an outbound request meets. */
export interface OutboundTarget {
  mode: 'local' | 'capture' | 'gateway';
  /** Undefined: no listener takes the connection (it is closed). */
  listener: string | undefined;
  /** The filter chain's name; undefined with a listener: no chain matches (the connection is closed). */
  chain: string | undefined;
  /** The chain's HTTP connection manager, or its tcp_proxy. */
  http: HttpChainConfig | undefined;
  tcp: TcpRoute | undefined;
  routes: RouteConfiguration__Output | undefined;
  destination: { address: string; port: number };
  /** Local mode without an HTTP listener for the port: the catch-all's cluster. */
  passthrough: string | undefined;
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

export class ListenerManager {
  readonly #o: ListenerManagerOptions;
  readonly #log: Logger;
  readonly #bound = new Map<string, Bound>();
  readonly #frontend: HttpFrontend;
  readonly #chains: ChainDispatcher;
  readonly #localOutbound: LocalOutboundProxy;
  readonly #sockets = new Set<Socket>();
  /** A chain of an older listener version -> the same chain (name and match) in the current one. */
  readonly #successors = new WeakMap<CompiledChain, { listener: CompiledListener; chain: CompiledChain }>();
  #snapshot: XdsSnapshot | undefined;
  #closing = false;

  constructor(options: ListenerManagerOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#frontend = new HttpFrontend({
      onRequest: (req, res, info) => this.#onRequest(req, res, info),
      onConnect: (req, socket, head, info) => this.#localOutbound.connect(req, socket, head, info),
    });
    this.#chains = new ChainDispatcher(options, this.#log, this.#frontend);
    this.#localOutbound = new LocalOutboundProxy(options, this.#log, this.#chains, this.#frontend, () => this.#snapshot);
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

  /**
   * Where an outbound HTTP/1.1 request to `port` with this authority goes, decided as the request
   * path decides it, for the admin's /debug/why: local mode's outbound proxy picks by the
   * authority (`LocalOutboundProxy.httpTarget`); capture mode hands virtualOutbound's connection
   * to the port's listener (`ChainDispatcher.handOff`) and matches its filter chain on what a
   * plaintext HTTP/1.1 connection shows (`selectChain`); a gateway takes its listener on the port.
   * The destination address is the authority's host when it is an IP, else unknown (a name
   * resolved by the application): chains matching destination ranges cannot be told then.
   */
  outboundTarget(snap: XdsSnapshot, authority: string, port: number, listenerName?: string): OutboundTarget {
    if (listenerName !== undefined) return this.#namedTarget(snap, authority, port, listenerName);
    if (this.#o.kind === 'sidecar' && this.#o.mode === 'local') {
      const t = this.#localOutbound.httpTarget(snap, authority);
      return { mode: 'local', listener: t.listener, chain: t.chainName, http: t.chain, tcp: undefined, routes: t.routes, destination: t.destination, passthrough: t.passthrough };
    }
    const host = hostAndPort(authority, port).host;
    const dst = { address: isIP(host) ? host : '', port };
    let listener: CompiledListener | undefined;
    if (this.#o.kind === 'router') {
      for (const l of snap.listeners.values()) {
        const c = this.#chains.compiled(l);
        if (c?.bindToPort && c.port === port) {
          listener = c;
          break;
        }
      }
    } else {
      const vo = snap.listeners.get(VirtualOutbound);
      const c = vo ? this.#chains.compiled(vo) : undefined;
      listener = c ? this.#chains.handOff(snap, c, dst) : this.#chains.listenerFor(snap, dst);
    }
    return this.#chainTarget(snap, listener, dst);
  }

  /** `outboundTarget` with the listener named (a debugging override): its chain chosen as for a request that reached it. */
  #namedTarget(snap: XdsSnapshot, authority: string, port: number, name: string): OutboundTarget {
    const l = snap.listeners.get(name);
    const c = l ? this.#chains.compiled(l) : undefined;
    const host = hostAndPort(authority, port).host;
    const dst = { address: isIP(host) ? host : '', port };
    if (c && this.#o.kind === 'sidecar' && this.#o.mode === 'local') {
      const chain = httpChainOf(c);
      return { mode: 'local', listener: c.name, chain: chain?.name, http: chain?.http, tcp: undefined, routes: chain?.http ? routesOf(snap, chain.http) : undefined, destination: { address: host, port }, passthrough: undefined };
    }
    return this.#chainTarget(snap, c, dst);
  }

  #chainTarget(snap: XdsSnapshot, listener: CompiledListener | undefined, dst: { address: string; port: number }): OutboundTarget {
    const mode = this.#o.kind === 'router' ? 'gateway' : this.#o.mode;
    if (!listener) return { mode, listener: undefined, chain: undefined, http: undefined, tcp: undefined, routes: undefined, destination: dst, passthrough: undefined };
    const chain = selectChain(listener, {
      destinationAddress: dst.address,
      destinationPort: dst.port,
      sourceAddress: this.#o.bindAddress ?? '',
      sourcePort: 0,
      transport: 'raw_buffer',
      sni: undefined,
      alpn: ['http/1.1'],
    });
    return {
      mode,
      listener: listener.name,
      chain: chain?.name,
      http: chain?.http,
      tcp: chain?.tcp,
      routes: chain?.http ? routesOf(snap, chain.http) : undefined,
      destination: dst,
      passthrough: undefined,
    };
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
        const c = this.#chains.compiled(l);
        if (c?.bindToPort) add(o.bindAddress ?? c.address, c.port, { kind: 'listener', name: l.name });
      }
      return out;
    }
    if (o.mode === 'capture') {
      for (const l of snapshot.listeners.values()) {
        const c = this.#chains.compiled(l);
        if (!c?.bindToPort) continue;
        const port = l.name === VirtualOutbound ? (o.outboundPort ?? c.port) : l.name === VirtualInbound ? (o.inboundPort ?? c.port) : c.port;
        add(o.bindAddress ?? c.address, port, { kind: 'listener', name: l.name });
      }
      return out;
    }
    const address = o.bindAddress ?? '127.0.0.1';
    add(address, o.outboundPort ?? 15001, { kind: 'local-outbound' });
    const inbound = snapshot.listeners.get(VirtualInbound);
    const c = inbound ? this.#chains.compiled(inbound) : undefined;
    for (const chain of c?.chains ?? []) {
      const port = chain.match?.destination_port?.value;
      if (!port || port === c!.port) continue;
      if (!out.has(`${address}:${port}`)) add(address, port, { kind: 'local-inbound', port });
    }
    return out;
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
      await this.#localOutbound.accept(socket);
      return;
    }
    if (role.kind === 'local-inbound') {
      const l = snap.listeners.get(VirtualInbound);
      const c = l ? this.#chains.compiled(l) : undefined;
      if (!c) return void socket.destroy();
      const app = this.#o.appTarget?.(role.port) ?? { address: '127.0.0.1', port: role.port };
      await this.#chains.dispatch(snap, socket, c, { address: local.address, port: role.port }, 'inbound', app);
      return;
    }
    const l = snap.listeners.get(role.name);
    const c = l ? this.#chains.compiled(l) : undefined;
    if (!l || !c) return void socket.destroy();
    if (this.#o.kind === 'router') {
      await this.#chains.dispatch(snap, socket, c, local, 'gateway', undefined);
      return;
    }
    // Capture: where the connection was going (the local address when it was not redirected).
    const dst = getOriginalDst(socket) ?? local;
    const target = this.#chains.handOff(snap, c, dst);
    await this.#chains.dispatch(snap, socket, target, dst, directionOf(target.listener, this.#o.kind), dst);
  }

  // ---------------------------------------------------------------- requests

  /**
   * The chain a request on a kept-alive connection is served by: the connection's, or when its
   * listener changed since it was accepted (new RBAC or JWT keys), the same chain of the listener
   * now in force, so a policy or key change applies to the next request and not only to new
   * connections (Envoy gets there by draining the old ones).
   */
  #currentChain(snap: XdsSnapshot, listener: string, chain: CompiledChain): CompiledChain {
    const l = snap.listeners.get(listener);
    const c = l ? this.#chains.compiled(l) : undefined;
    if (!c) return chain;
    // Remembered per (chain, listener version): a request pays two map lookups, not a scan.
    const known = this.#successors.get(chain);
    if (known?.listener === c) return known.chain;
    let next = chain;
    if (c.defaultChain !== chain && !c.chains.includes(chain)) {
      const match = JSON.stringify(chain.match);
      next = [...c.chains, ...(c.defaultChain ? [c.defaultChain] : [])].find((x) => x.name === chain.name && JSON.stringify(x.match) === match) ?? chain;
    }
    this.#successors.set(chain, { listener: c, chain: next });
    return next;
  }

  #onRequest(req: DownstreamRequest, res: DownstreamResponse, info: ConnectionInfo): void {
    const snap = this.#snapshot;
    if (!snap) {
      res.statusCode = 503;
      res.end();
      return;
    }
    if (!info.chain) {
      this.#localOutbound.serveRequest(req, res, snap, info.connection);
      return;
    }
    const http = this.#currentChain(snap, info.listener, info.chain).http ?? info.chain.http!;
    const routes = routesOf(snap, http);
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
}
