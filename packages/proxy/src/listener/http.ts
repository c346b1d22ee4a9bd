// The HTTP side of a listener: an HTTP/1.1 and an HTTP/2 server that never listen themselves;
// connections are handed to one or the other after protocol detection (`emit('connection')`),
// carrying what the listener knows about them (chain, direction, original destination). Each
// request is served by the router with the route configuration active when it arrives.
import { createServer as createHttp1Server, type IncomingMessage, type Server as Http1Server, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { RouteConfiguration__Output } from '@weft/xds';
import type { DownstreamConnection } from '../core/filters.ts';
import type { RequestRecord, XdsSnapshot } from '../core/types.ts';
import { H1Connection } from '../codec/h1-server.ts';
import type { DownstreamRequest, DownstreamResponse } from '../http/codec.ts';
import type { CompiledChain, HttpChainConfig } from './chains.ts';

/** What the listener tells the router about a request besides the request itself. */
export interface ListenerRequestContext {
  direction: RequestRecord['direction'];
  /** Listener name (`virtualInbound`, `0.0.0.0_9080`…). */
  listener: string;
  chain: HttpChainConfig;
  /** The snapshot the request is served from. */
  snapshot: XdsSnapshot;
  /** The downstream connection was TLS (its scheme is https). */
  downstreamTls: boolean;
  /** Where the connection was going: the endpoint of ORIGINAL_DST clusters (PassthroughCluster…). */
  originalDestination: { address: string; port: number } | undefined;
  /** The downstream connection as filters see it. */
  connection: DownstreamConnection;
}

/** The router as the listeners use it. */
export interface HttpRouting {
  /** Compiles (and caches) a route configuration; throws for one the router cannot apply. */
  check(rc: RouteConfiguration__Output): void;
  /** Serves one request with `routes` (undefined: the route configuration is missing, answer 404 NR). */
  serve(req: DownstreamRequest, res: DownstreamResponse, routes: RouteConfiguration__Output | undefined, ctx: ListenerRequestContext): void;
}

/** Per connection, stored on the socket (reachable through HTTP/2's socket proxy too). */
export interface ConnectionInfo {
  listener: string;
  direction: RequestRecord['direction'];
  /** The chain; undefined for local mode's outbound port, where each request picks its listener by authority. */
  chain: CompiledChain | undefined;
  downstreamTls: boolean;
  originalDestination: { address: string; port: number } | undefined;
  connection: DownstreamConnection;
}

export const connectionInfo: unique symbol = Symbol('weft.connection');
export type TaggedSocket = Socket & { [connectionInfo]?: ConnectionInfo };

export interface HttpFrontendOptions {
  onRequest: (req: DownstreamRequest, res: DownstreamResponse, info: ConnectionInfo) => void;
  /** HTTP/1.1 CONNECT (local mode's outbound port tunnels TCP with it). */
  onConnect?: (req: DownstreamRequest, socket: Socket, head: Buffer, info: ConnectionInfo) => void;
  /** Idle keep-alive connections are closed after this long (default 60 s). */
  keepAliveTimeoutMs?: number;
  /**
   * HTTP/1.1's codec: `node` (node:http's server) or `llhttp` (ours, src/codec/h1-server.ts: llhttp
   * over the socket, no node:http objects), the default since it measured cheaper (README, "Data
   * plane cost"). WEFT_PROXY_HTTP1_CODEC=node brings node:http back, for comparison in bench/proxy.
   */
  http1Codec?: 'node' | 'llhttp';
}

/** The listener's facts about a connection: on the socket, or on the stream HTTP/2 over TLS runs on (h2-bridge.ts). */
function infoOf(socket: Socket | null | undefined): ConnectionInfo | undefined {
  if (!socket) return undefined;
  return (socket as TaggedSocket)[connectionInfo] ?? (socket as { stream?: TaggedSocket }).stream?.[connectionInfo];
}

export class HttpFrontend {
  readonly #http1: Http1Server;
  readonly #http2: Http2Server;
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #sockets = new Set<Socket>();
  readonly #http1Sockets = new Set<Socket>();
  readonly #h1Connections = new Set<H1Connection>();
  readonly #onRequest: (req: DownstreamRequest, res: DownstreamResponse) => void;
  readonly #onConnect: HttpFrontendOptions['onConnect'];
  readonly #codec: 'node' | 'llhttp';
  readonly #keepAliveTimeoutMs: number;
  /** Which connections are draining (Envoy's graceful drain); undefined: none. */
  #draining: ((info: ConnectionInfo) => boolean) | undefined;

  constructor(options: HttpFrontendOptions) {
    const onRequest = (req: DownstreamRequest, res: DownstreamResponse) => {
      const info = infoOf(req.socket);
      if (!info) {
        res.statusCode = 500;
        res.end();
        return;
      }
      // A draining connection still serves what it is sent, and asks the client to go: HTTP/1
      // closes after this response, HTTP/2 sends GOAWAY (this stream and those before it finish).
      if (this.#draining?.(info)) {
        if ('stream' in req) req.stream.session?.close();
        else if (!res.headersSent) res.setHeader('connection', 'close');
      }
      options.onRequest(req, res, info);
    };
    this.#onRequest = onRequest;
    this.#onConnect = options.onConnect;
    this.#codec = options.http1Codec ?? (process.env.WEFT_PROXY_HTTP1_CODEC === 'node' ? 'node' : 'llhttp');
    this.#keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? 60_000;
    this.#http1 = createHttp1Server(
      {
        keepAliveTimeout: options.keepAliveTimeoutMs ?? 60_000,
        // Route timeouts bound requests; the server itself does not.
        requestTimeout: 0,
        headersTimeout: 60_000,
        maxHeaderSize: 64 * 1024,
      },
      onRequest,
    );
    if (options.onConnect) {
      const onConnect = options.onConnect;
      this.#http1.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
        const info = (socket as TaggedSocket)[connectionInfo];
        if (!info) {
          socket.destroy();
          return;
        }
        onConnect(req, socket, head, info);
      });
    }
    this.#http2 = createHttp2Server({ maxSessionMemory: 64 }, onRequest);
    this.#http2.on('session', (s: ServerHttp2Session) => {
      this.#sessions.add(s);
      s.once('close', () => this.#sessions.delete(s));
    });
    // Clients that break the protocol are answered by Node (400) or dropped; never a crash.
    this.#http1.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
    this.#http2.on('sessionError', () => {});
  }

  /** Serves a connection whose first bytes were read and put back. */
  serve(socket: Socket, info: ConnectionInfo, h2: boolean): void {
    (socket as TaggedSocket)[connectionInfo] = info;
    this.#sockets.add(socket);
    if (!h2) this.#http1Sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#http1Sockets.delete(socket);
    });
    if (!h2 && this.#codec === 'llhttp') {
      const onConnect = this.#onConnect;
      const conn = new H1Connection(socket, {
        onRequest: this.#onRequest,
        keepAliveTimeoutMs: this.#keepAliveTimeoutMs,
        maxHeaderSize: 64 * 1024,
        ...(onConnect ? { onUpgrade: (req, s, rest) => onConnect(req, s, rest, info) } : {}),
      });
      this.#h1Connections.add(conn);
      socket.once('close', () => this.#h1Connections.delete(conn));
      if (this.#draining?.(info)) conn.drain(true);
      socket.resume();
      return;
    }
    (h2 ? this.#http2 : this.#http1).emit('connection', socket);
    // The detection paused the socket; the HTTP/1 parser reads through 'data' events.
    if (!h2) socket.resume();
  }

  /**
   * Stops keep-alive on the connections `which` selects (default: all), and on those it selects
   * later: idle connections close now, busy ones after their current request (HTTP/2: GOAWAY).
   */
  drain(which?: (info: ConnectionInfo) => boolean): void {
    const before = this.#draining;
    this.#draining = !which ? () => true : before ? (info) => before(info) || which(info) : which;
    for (const s of this.#sessions) {
      const info = infoOf(s.socket);
      if (!which || !info || which(info)) s.close();
    }
    for (const conn of this.#h1Connections) {
      const info = infoOf(conn.socket);
      if (!which || !info || which(info)) conn.drain();
    }
    for (const socket of this.#http1Sockets) {
      if (this.#codec === 'llhttp') break;
      const info = infoOf(socket);
      if (which && info && !which(info)) continue;
      // Idle keep-alive connections close now (the servers never listen, so Node does not track
      // them for closeIdleConnections); one with a response pending gets `connection: close`.
      const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
      if (!res) socket.destroySoon();
      else if (!res.headersSent) res.setHeader('connection', 'close');
    }
  }

  /** Closes every connection. */
  destroy(): void {
    for (const s of this.#sessions) s.destroy();
    for (const socket of this.#sockets) socket.destroy();
  }

  get connections(): number {
    return this.#sockets.size;
  }
}
