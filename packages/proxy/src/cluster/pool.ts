// Connection pools on undici: one pool per endpoint and protocol, one undici Client per
// connection, so every connection is counted against the cluster's circuit breakers
// (max_connections, max_pending_requests) the way Envoy counts them. HTTP/1.1 connections carry
// one request at a time (keep-alive, no pipelining); HTTP/2 connections (h2c prior knowledge, or
// TLS) carry up to max_concurrent_streams.
//
// Keep-alive: a request that fails on a reused connection before any response byte (the upstream
// closed the idle connection as we wrote to it) is replayed once on a fresh connection when that is
// safe: idempotent methods, or an HTTP/2 stream the server refused. This is what keeps an upstream's
// idle timeout from turning into 503s. One request on a connection is pool-exchange.ts.
import { firstUriSan } from '@weft/mesh';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createRequire } from 'node:module';
import type { Client as UndiciClient } from 'undici';
import { H1Client, type H1DispatchOptions, type H1Handler } from '../codec/h1-client.ts';
import type { ClusterSettings } from './config.ts';
import type { ClusterStats, Host } from './host.ts';
import type { OutlierDetector } from './outlier.ts';

/** What a pool needs from its cluster. */
export interface PoolCluster {
  readonly name: string;
  readonly settings: ClusterSettings;
  readonly stats: ClusterStats;
  readonly outlier: OutlierDetector | undefined;
  /** Connections open or opening, cluster-wide (max_connections). */
  cxActive: number;
  /** Requests waiting for a connection, cluster-wide (max_pending_requests). */
  pendingActive: number;
  /** Requests in flight, cluster-wide (max_requests). */
  rqActive: number;
  readonly draining: boolean;
  /** Opens one connection to the host; `done` runs once. */
  dial(host: Host, h2: boolean, done: (err: Error | null, socket: Socket | null) => void): void;
}

// undici's Client alone: importing the package's index loads fetch, WebSocket, caches and the rest
// (about 14 MB more resident memory in every proxy), none of which the pools use. Loaded with the
// first HTTP/2 pool: HTTP/1.1 runs on our codec, and a proxy without HTTP/2 upstreams keeps the
// ~3.7 MB the client itself costs.
let undiciClient: typeof UndiciClient | undefined;
function Client(): typeof UndiciClient {
  undiciClient ??= createRequire(import.meta.url)('undici/lib/dispatcher/client.js') as typeof UndiciClient;
  return undiciClient;
}

// Envoy's default upstream idle timeout is an hour; undici closes idle HTTP/1.1 connections after
// 4 s unless the server says otherwise (Keep-Alive: timeout=N, honoured minus 1 s). Closing early
// on our side is what avoids the race with servers that close idle connections without saying so.
const defaultH1KeepAliveMs = 4000;
const undiciHttp1 = process.env.WEFT_PROXY_HTTP1_CODEC === 'node';
const defaultIdleMs = 3_600_000;

/** One connection's client: undici's for HTTP/2, ours for HTTP/1.1; the exchange dispatches on either. */
export interface PoolClient {
  dispatch(opts: H1DispatchOptions, handler: H1Handler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
  readonly destroyed: boolean;
  readonly closed: boolean;
  on(event: 'disconnect' | 'connectionError', listener: () => void): unknown;
}

export class Conn {
  readonly pool: HttpPool;
  readonly client: PoolClient;
  readonly capacity: number;
  active = 0;
  /** Requests dispatched on this connection so far. */
  dispatched = 0;
  connected = false;
  closed = false;
  draining = false;
  /** On TLS connections: the peer's and this proxy's URI SANs (source-side telemetry principals). */
  peerPrincipal: string | undefined;
  localPrincipal: string | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #lifeTimer: NodeJS.Timeout | undefined;

  constructor(pool: HttpPool) {
    this.pool = pool;
    const s = pool.cluster.settings;
    const h2 = pool.h2;
    this.capacity = h2 ? Math.max(1, s.h2MaxConcurrentStreams) : 1;
    const idle = s.idleTimeoutMs;
    const host = pool.host;
    const connect = (cb: (err: Error | null, socket: Socket | null) => void) => {
        pool.cluster.dial(host, h2, (err, socket) => {
          if (err || !socket) {
            cb(err ?? new Error('connect failed'), null);
            return;
          }
          this.connected = true;
          if ('getPeerCertificate' in socket) {
            const tls = socket as TLSSocket;
            this.peerPrincipal = firstUriSan(tls.getPeerCertificate()?.subjectaltname);
            const own = tls.getCertificate();
            this.localPrincipal = own && 'subjectaltname' in own ? firstUriSan(own.subjectaltname) : undefined;
          }
          cb(null, socket);
        });
    };
    // HTTP/1.1 on our codec (codec/h1-client.ts); HTTP/2 on undici (HTTP/1.1 too with
    // WEFT_PROXY_HTTP1_CODEC=node, the stack before the codec, for bench/proxy's comparison).
    this.client =
      h2 || undiciHttp1
      ? new (Client())(`http://${host.key}`, {
          connect: (_opts, cb) => connect(cb as (err: Error | null, socket: Socket | null) => void),
          pipelining: h2 ? this.capacity : 1,
          keepAliveTimeout: idle ?? defaultH1KeepAliveMs,
          keepAliveMaxTimeout: idle ?? defaultIdleMs,
          keepAliveTimeoutThreshold: 1000,
          headersTimeout: 0,
          bodyTimeout: 0,
          maxHeaderSize: 65536,
          allowH2: h2,
          ...(h2 ? { maxConcurrentStreams: this.capacity } : {}),
        })
      : new H1Client({
          connect,
          keepAliveTimeoutMs: idle ?? defaultH1KeepAliveMs,
          keepAliveMaxTimeoutMs: idle ?? defaultIdleMs,
          keepAliveTimeoutThresholdMs: 1000,
          maxHeaderSize: 65536,
        });
    this.client.on('disconnect', () => this.pool.closed(this));
    this.client.on('connectionError', () => this.pool.closed(this));
    const life = s.maxConnectionDurationMs;
    if (life !== undefined && life > 0) {
      this.#lifeTimer = setTimeout(() => this.pool.retire(this), life);
      this.#lifeTimer.unref();
    }
  }

  get usable(): boolean {
    return !this.closed && !this.draining;
  }

  /** HTTP/2 connections close after the idle timeout with no stream open (undici does it for HTTP/1.1). */
  idleStart(): void {
    if (!this.pool.h2 || this.#idleTimer) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.active === 0) this.pool.retire(this);
    }, this.pool.cluster.settings.idleTimeoutMs ?? defaultIdleMs);
    this.#idleTimer.unref();
  }

  idleStop(): void {
    if (this.#idleTimer) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
  }

  clearTimers(): void {
    this.idleStop();
    if (this.#lifeTimer) clearTimeout(this.#lifeTimer);
  }
}

/** A request waiting in a pool's queue for a connection. */
export interface Waiter {
  /** The request's current attempt wants a connection not used before (replay after a stale one). */
  readonly fresh: boolean;
  waiting: boolean;
  grant(conn: Conn): void;
}

export class HttpPool {
  readonly cluster: PoolCluster;
  readonly host: Host;
  readonly h2: boolean;
  readonly conns = new Set<Conn>();
  /** HTTP/1.1 connections with no request, most recently used last. */
  readonly #idle: Conn[] = [];
  readonly #waiters: Waiter[] = [];
  #head = 0;
  #draining = false;

  constructor(cluster: PoolCluster, host: Host, h2: boolean) {
    this.cluster = cluster;
    this.host = host;
    this.h2 = h2;
  }

  /**
   * A connection for one request now, or undefined when none may be opened (the caller then
   * queues). Like Envoy, a pool with no connection at all may open one beyond max_connections, so
   * its queue can always drain.
   */
  take(fresh: boolean): Conn | undefined {
    if (!fresh) {
      const c = this.#reuse();
      if (c) return c;
    }
    const cluster = this.cluster;
    if (cluster.cxActive < cluster.settings.limits.maxConnections || this.conns.size === 0) return this.#use(this.#open());
    // At the connection limit a replay takes a reused connection after all rather than wait for a close.
    const c = fresh ? this.#reuse() : undefined;
    if (c) return c;
    cluster.stats.upstream_cx_overflow++;
    return undefined;
  }

  #reuse(): Conn | undefined {
    if (!this.h2) {
      const idle = this.#idle;
      while (idle.length > 0) {
        const c = idle.pop()!;
        if (c.usable && c.active === 0) return this.#use(c);
      }
      return undefined;
    }
    for (const c of this.conns) if (c.usable && c.active < c.capacity) return this.#use(c);
    return undefined;
  }

  #use(c: Conn): Conn {
    c.active++;
    c.idleStop();
    return c;
  }

  #open(): Conn {
    const c = new Conn(this);
    this.conns.add(c);
    this.cluster.cxActive++;
    this.cluster.stats.upstream_cx_total++;
    return c;
  }

  /** Queues a request for the next free connection; false when max_pending_requests is reached. */
  enqueue(w: Waiter): boolean {
    const cluster = this.cluster;
    if (cluster.pendingActive >= cluster.settings.limits.maxPendingRequests) {
      cluster.stats.upstream_rq_pending_overflow++;
      return false;
    }
    w.waiting = true;
    this.#waiters.push(w);
    cluster.pendingActive++;
    cluster.stats.upstream_rq_pending_total++;
    return true;
  }

  /** Takes a waiter out of the queue (timeout, abort). */
  cancel(w: Waiter): void {
    if (!w.waiting) return;
    w.waiting = false;
    this.cluster.pendingActive--;
  }

  #serve(): void {
    const q = this.#waiters;
    while (this.#head < q.length) {
      const w = q[this.#head]!;
      if (!w.waiting) {
        this.#head++;
        continue;
      }
      const c = this.take(w.fresh);
      if (!c) break;
      this.#head++;
      w.waiting = false;
      this.cluster.pendingActive--;
      w.grant(c);
    }
    if (this.#head > 64 && this.#head * 2 > q.length) {
      q.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** A request on `c` ended; `reusable` says whether its connection may carry the next one. */
  release(c: Conn, reusable: boolean): void {
    c.active--;
    const max = this.cluster.settings.maxRequestsPerConnection;
    if (max > 0 && c.dispatched >= max) c.draining = true;
    if (!c.closed && (!reusable || this.#draining || this.cluster.draining)) c.draining = true;
    if (c.closed) {
      // Already gone; closed() served the queue.
    } else if (c.draining) {
      if (c.active === 0) this.#close(c, !reusable);
    } else {
      if (!this.h2) this.#idle.push(c);
      if (c.active === 0) c.idleStart();
    }
    this.#serve();
  }

  /** Stop using `c`; close it once its requests are done. */
  retire(c: Conn): void {
    c.draining = true;
    if (c.active === 0) this.#close(c, false);
  }

  #close(c: Conn, abrupt: boolean): void {
    if (abrupt) void c.client.destroy().catch(() => {});
    else void c.client.close().catch(() => {});
    this.closed(c);
  }

  /** The connection went away (disconnect, connect failure, or we closed it). */
  closed(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    c.clearTimers();
    this.conns.delete(c);
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
    this.cluster.cxActive--;
    if (c.active > 0) this.cluster.stats.upstream_cx_destroy_with_active_rq++;
    // undici would reconnect on its own for queued requests; a Conn is one connection, so it ends here.
    if (!c.client.destroyed && !c.client.closed) void c.client.destroy().catch(() => {});
    this.#serve();
  }

  /** Close idle connections now and busy ones when their requests end. */
  drain(): void {
    this.#draining = true;
    for (const c of [...this.conns]) this.retire(c);
  }

  async destroy(): Promise<void> {
    this.#draining = true;
    const all = [...this.conns];
    for (const c of all) this.closed(c);
    await Promise.all(all.map((c) => c.client.destroy().catch(() => {})));
  }
}
