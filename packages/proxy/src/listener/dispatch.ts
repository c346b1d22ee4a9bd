// The filter chain stage of a listener (Envoy's filter chain match and its transport socket):
// for one accepted connection and the listener it belongs to, protocol detection when the chains
// depend on it, the chain chosen (chains.ts), TLS terminated when the chain says so, then the
// connection handed to the chain's terminal filter: the HTTP connection manager (http.ts, then
// the request pipeline in src/http) or tcp_proxy (tcp.ts).
//
// Contract: `dispatch(snap, socket, listener, dst, direction, originalDestination)` resolves once
// the connection is handed over or closed (no chain, a failed handshake, no first bytes in time).
import { firstUriSan } from '@weft/mesh';
import { isIP, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from '@weft/model';
import type { Listener__Output, RouteConfiguration__Output } from '@weft/xds';
import type { DownstreamConnection } from '../core/filters.ts';
import { unmappedIp } from '../core/peer.ts';
import type { RequestRecord, XdsSnapshot } from '../core/types.ts';
import { type CompiledChain, type CompiledListener, type CompileOptions, type ConnectionFacts, compiledListener, type HttpChainConfig, selectChain } from './chains.ts';
import { type Detected, detect } from './detect.ts';
import { h2cSocket, h2OverTls } from './h2-bridge.ts';
import type { ConnectionInfo, HttpFrontend } from './http.ts';
import type { ListenerManagerOptions } from './manager.ts';
import { proxyTcp } from './tcp.ts';
import { ServerTlsCache, type TlsSecretSource, verifyClientCertificate } from './tls.ts';

export function directionOf(l: Listener__Output, kind: 'sidecar' | 'router'): RequestRecord['direction'] {
  if (kind === 'router') return 'gateway';
  return l.traffic_direction === 'INBOUND' ? 'inbound' : 'outbound';
}

export class ChainDispatcher {
  readonly #o: ListenerManagerOptions;
  readonly #log: Logger;
  readonly #frontend: HttpFrontend;
  readonly #tls = new ServerTlsCache();

  constructor(options: ListenerManagerOptions, log: Logger, frontend: HttpFrontend) {
    this.#o = options;
    this.#log = log;
    this.#frontend = frontend;
  }

  /** Envoy's original_dst hand-off: `<ip>_<port>`, else `0.0.0.0_<port>`; undefined keeps the connection on virtualOutbound. */
  listenerFor(snap: XdsSnapshot, dst: { address: string; port: number }): CompiledListener | undefined {
    const l = snap.listeners.get(`${dst.address}_${dst.port}`) ?? snap.listeners.get(`0.0.0.0_${dst.port}`) ?? (isIP(dst.address) === 6 ? snap.listeners.get(`[::]_${dst.port}`) : undefined);
    return l ? this.compiled(l) : undefined;
  }

  /** Capture mode: the listener an outbound connection to `dst` is handed to from the listener that accepted it (`use_original_dst`). */
  handOff(snap: XdsSnapshot, accepted: CompiledListener, dst: { address: string; port: number }): CompiledListener {
    return accepted.useOriginalDst ? (this.listenerFor(snap, dst) ?? accepted) : accepted;
  }

  #compileOptions(l: Listener__Output): CompileOptions {
    const o: CompileOptions = { checkRoutes: (rc) => this.#o.routing.check(rc), direction: directionOf(l, this.#o.kind) };
    if (this.#o.filters) o.filters = this.#o.filters;
    return o;
  }

  compiled(l: Listener__Output): CompiledListener | undefined {
    try {
      return compiledListener(l, () => this.#compileOptions(l));
    } catch (err) {
      // Accepted listeners were compiled when they were checked; this is not expected.
      this.#log.error('listener does not compile', { listener: l.name, error: err });
      return undefined;
    }
  }

  async dispatch(
    snap: XdsSnapshot,
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
      const terminated = await this.#terminateTls(snap, socket, chain, l.name, detected.alpn);
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
      this.#frontend.serve(tls && h2 ? h2OverTls(stream as TLSSocket) : h2 ? h2cSocket(stream) : stream, info, h2);
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

  async #terminateTls(snap: XdsSnapshot, socket: Socket, chain: CompiledChain, listener: string, clientAlpn: readonly string[]): Promise<TLSSocket | undefined> {
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
}

/** The route configuration an HTTP chain routes with: inline, else RDS by name from the snapshot. */
export function routesOf(snap: XdsSnapshot, http: HttpChainConfig): RouteConfiguration__Output | undefined {
  return http.inlineRoutes ?? (http.routeName !== undefined ? snap.routes.get(http.routeName) : undefined);
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
