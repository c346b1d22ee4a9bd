// Istio's `istio.stats` filter with metadata exchange, for every HTTP connection manager and every
// tcp_proxy chain of this proxy. Outbound and gateway chains report as `source`, inbound chains as
// `destination`. HTTP peers are learned through `x-envoy-peer-metadata` (mx.ts); when the upstream
// sent none (a failed request, a destination without a sidecar) the client side falls back to the
// endpoint's `istio.workload` metadata from EDS, as Istio does.
//
// TCP: Istio exchanges metadata in-band, inside the mTLS connection (ALPN `istio-peer-exchange`).
// Weft does not: the client side takes the peer from the endpoint's EDS metadata, the server side
// knows only the peer's certificate principal (and its namespace), so `source_workload` and the
// other source workload labels are `unknown` on inbound TCP metrics.
import { BlackHoleCluster, isSpecialCluster, nodeId, PassthroughCluster } from '@weft/mesh';
import type {
  ConnectionManagerFilterFactory,
  FilterHeaders,
  HttpFilter,
  HttpFilterContext,
  HttpStreamHooks,
  NetworkFilter,
  TcpChainFilterFactory,
  TcpConnectionHooks,
  TcpFilterContext,
} from '../core/filters.ts';
import type { XdsSnapshot } from '../core/types.ts';
import { type NodeIdentity, nodeMetadata } from '../xds/node.ts';
import { type Reporter, SeriesCache } from './labels.ts';
import { type ServiceInfo, TelemetryMetadata } from './metadata.ts';
import { IstioMetrics, type TcpSeries } from './metrics.ts';
import { encodeMx, mxHeader, mxIdHeader, PeerCache } from './mx.ts';
import { localWorkload, type WorkloadInfo } from './workload.ts';

export interface ProxyTelemetryOptions {
  node: NodeIdentity;
  /** The proxy's accepted configuration (cluster and endpoint metadata). */
  snapshot: () => XdsSnapshot | undefined;
  /** How often open TCP connections report their byte counts (Istio's tcp_reporting_duration, 5 s). */
  tcpReportIntervalMs?: number;
  buckets?: readonly number[];
}

function first(v: string | string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : v?.[0];
}

/** Header bytes as they would cross the wire in HTTP/1.1 (`name: value\r\n` each). */
function headerBytes(h: FilterHeaders): number {
  let n = 0;
  for (const k in h) {
    const v = h[k];
    if (typeof v === 'string') n += k.length + v.length + 4;
    else if (v) for (const x of v) n += k.length + x.length + 4;
  }
  return n;
}

function grpcStatusOf(v: string | string[] | undefined): number | undefined {
  const s = first(v);
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isInteger(n) ? n : undefined;
}

function isGrpc(h: FilterHeaders): boolean {
  const ct = first(h['content-type']);
  return ct?.startsWith('application/grpc') === true;
}

const maxHostServices = 10_000;

/** Istio's metrics and metadata exchange for one proxy. */
export class ProxyTelemetry {
  readonly metrics: IstioMetrics;
  readonly metadata: TelemetryMetadata;
  readonly local: WorkloadInfo;
  /** `x-envoy-peer-metadata-id` and `x-envoy-peer-metadata` this proxy sends. */
  readonly mxId: string;
  readonly mxValue: string;
  readonly peers = new PeerCache();
  readonly source: SeriesCache;
  readonly destination: SeriesCache;
  readonly #tcpOpen = new Set<TcpStats>();
  #tcpTimer: NodeJS.Timeout | undefined;
  readonly #tcpIntervalMs: number;
  // Destination services not from cluster metadata, one object per (kind, Host) so caches can key on them.
  #byHost = new Map<string, ServiceInfo>();
  #byHostSpecial = new Map<string, Map<string, ServiceInfo>>();

  constructor(o: ProxyTelemetryOptions) {
    this.local = localWorkload(o.node);
    this.metrics = new IstioMetrics({ version: String(nodeMetadata(o.node).ISTIO_VERSION ?? ''), ...(o.buckets ? { buckets: o.buckets } : {}) });
    this.metadata = new TelemetryMetadata(o.snapshot);
    this.mxId = nodeId(o.node);
    this.mxValue = encodeMx(this.local);
    this.source = new SeriesCache('source', this.local, this.metrics);
    this.destination = new SeriesCache('destination', this.local, this.metrics);
    this.#tcpIntervalMs = o.tcpReportIntervalMs ?? 5000;
  }

  /** The destination service of a request: cluster metadata, special cluster and route names, else the Host header. */
  service(cluster: string | undefined, routeName: string | undefined, host: string): ServiceInfo {
    let special: string | undefined;
    if (routeName === 'block_all') special = BlackHoleCluster;
    else if (routeName === 'allow_any') special = PassthroughCluster;
    else if (cluster && isSpecialCluster(cluster)) special = cluster;
    else {
      const fromCluster = this.metadata.cluster(cluster).service;
      if (fromCluster) return fromCluster;
    }
    let m: Map<string, ServiceInfo>;
    if (special) {
      let s = this.#byHostSpecial.get(special);
      if (!s) {
        s = new Map();
        this.#byHostSpecial.set(special, s);
      }
      m = s;
    } else m = this.#byHost;
    let info = m.get(host);
    if (!info) {
      if (m.size >= maxHostServices) m.clear();
      info = { host, name: special ?? host, namespace: '' };
      m.set(host, info);
    }
    return info;
  }

  /** Connection-manager filter: metrics and HTTP metadata exchange on every HTTP chain. */
  readonly httpFilterFactory: ConnectionManagerFilterFactory = (_hcm, site): HttpFilter => {
    const reporter: Reporter = site.direction === 'inbound' ? 'destination' : 'source';
    return reporter === 'destination'
      ? { name: 'istio.stats', begin: () => new InboundHttpStats(this) }
      : { name: 'istio.stats', begin: () => new OutboundHttpStats(this) };
  };

  /** TCP-chain filter: the istio_tcp_* metrics on every tcp_proxy chain. */
  readonly tcpFilterFactory: TcpChainFilterFactory = (site): NetworkFilter => {
    const reporter: Reporter = site.direction === 'inbound' ? 'destination' : 'source';
    return { name: 'istio.stats', begin: () => new TcpStats(this, reporter) };
  };

  /** @internal */
  tcpOpened(c: TcpStats): void {
    this.#tcpOpen.add(c);
    if (!this.#tcpTimer && this.#tcpIntervalMs > 0) {
      this.#tcpTimer = setInterval(() => {
        for (const open of this.#tcpOpen) open.flush();
      }, this.#tcpIntervalMs);
      this.#tcpTimer.unref();
    }
  }

  /** @internal */
  tcpClosed(c: TcpStats): void {
    this.#tcpOpen.delete(c);
  }

  close(): void {
    if (this.#tcpTimer) clearInterval(this.#tcpTimer);
    this.#tcpTimer = undefined;
    for (const c of this.#tcpOpen) c.flush();
  }
}

/** Server side: reads and removes the client's exchange headers, answers with its own. */
class InboundHttpStats implements HttpStreamHooks {
  readonly #t: ProxyTelemetry;
  #read = false;
  #peer: WorkloadInfo | undefined;
  #sawId = false;
  #sawMd = false;
  #grpc = false;
  #grpcStatus: number | undefined;
  #requestHeaderBytes = 0;
  #responseHeaderBytes = 0;

  constructor(t: ProxyTelemetry) {
    this.#t = t;
  }

  onRequest(ctx: HttpFilterContext): undefined {
    this.#readRequest(ctx);
    return undefined;
  }

  /** In onRequest; or later when a filter before this one answered first (RBAC's 403 is counted with its peer too). */
  #readRequest(ctx: HttpFilterContext): void {
    if (this.#read) return;
    this.#read = true;
    const h = ctx.requestHeaders;
    this.#requestHeaderBytes = headerBytes(h) + ctx.method.length + ctx.path.length + ctx.authority.length + 24;
    this.#grpc = isGrpc(h);
    const id = first(h[mxIdHeader]);
    const md = first(h[mxHeader]);
    if (id !== undefined) {
      this.#sawId = true;
      delete h[mxIdHeader];
    }
    if (md !== undefined) {
      this.#sawMd = true;
      delete h[mxHeader];
      this.#peer = this.#t.peers.lookup(id, md);
    }
  }

  onResponse(ctx: HttpFilterContext, status: number, headers: FilterHeaders): void {
    this.#readRequest(ctx);
    if (this.#grpc) this.#grpcStatus = grpcStatusOf(headers['grpc-status']);
    if (this.#sawId) headers[mxIdHeader] = this.#t.mxId;
    if (this.#sawMd) headers[mxHeader] = this.#t.mxValue;
    // `HTTP/1.1 200 OK\r\n` and the blank line.
    this.#responseHeaderBytes = headerBytes(headers) + 19 + String(status).length - 3;
  }

  onComplete(ctx: HttpFilterContext): void {
    this.#readRequest(ctx);
    const t = this.#t;
    const r = ctx.record;
    const c = ctx.connection;
    const peerPrincipal = c.peerPrincipal ?? '';
    const mtls = c.tls && peerPrincipal !== '';
    const service = t.service(r.upstreamCluster, r.routeName, ctx.authority);
    const grpcStatus = this.#grpcStatus ?? r.grpcStatus;
    const s = t.destination.http(this.#peer, service, peerPrincipal, c.localPrincipal ?? '', mtls, this.#grpc, r.responseCode, grpcStatus, r.responseFlags);
    s.requests++;
    s.duration.observe(r.durationMs);
    s.requestBytes.observe(this.#requestHeaderBytes + r.bytesReceived);
    s.responseBytes.observe(this.#responseHeaderBytes + r.bytesSent);
  }
}

/** Client side (sidecar outbound, gateways): sends its exchange headers upstream, reads and removes the server's. */
class OutboundHttpStats implements HttpStreamHooks {
  readonly #t: ProxyTelemetry;
  #peer: WorkloadInfo | undefined;
  #grpc = false;
  #grpcStatus: number | undefined;
  #requestHeaderBytes = 0;
  #responseHeaderBytes = 0;

  constructor(t: ProxyTelemetry) {
    this.#t = t;
  }

  onRequest(ctx: HttpFilterContext): undefined {
    const h = ctx.requestHeaders;
    this.#requestHeaderBytes = headerBytes(h) + ctx.method.length + ctx.path.length + ctx.authority.length + 24;
    this.#grpc = isGrpc(h);
    return undefined;
  }

  onUpstreamRequest(ctx: HttpFilterContext, headers: FilterHeaders): void {
    if (this.#t.metadata.cluster(ctx.upstreamCluster).skipMx) {
      // (delete only what is there: deleting a property makes V8 slow down every later use of the object)
      if (headers[mxIdHeader] !== undefined) delete headers[mxIdHeader];
      if (headers[mxHeader] !== undefined) delete headers[mxHeader];
      return;
    }
    headers[mxIdHeader] = this.#t.mxId;
    headers[mxHeader] = this.#t.mxValue;
  }

  onUpstreamResponse(_ctx: HttpFilterContext, _status: number, headers: FilterHeaders): void {
    const md = first(headers[mxHeader]);
    const id = first(headers[mxIdHeader]);
    if (md !== undefined) {
      this.#peer = this.#t.peers.lookup(id, md) ?? this.#peer;
      delete headers[mxHeader];
    }
    if (id !== undefined) delete headers[mxIdHeader];
  }

  onResponse(_ctx: HttpFilterContext, status: number, headers: FilterHeaders): void {
    if (this.#grpc) this.#grpcStatus = grpcStatusOf(headers['grpc-status']);
    this.#responseHeaderBytes = headerBytes(headers) + 19 + String(status).length - 3;
  }

  onComplete(ctx: HttpFilterContext): void {
    const t = this.#t;
    const r = ctx.record;
    const peer = this.#peer ?? t.metadata.endpoint(r.upstreamCluster, r.upstreamHost);
    const service = t.service(r.upstreamCluster, r.routeName, ctx.authority);
    const grpcStatus = this.#grpcStatus ?? r.grpcStatus;
    // Principals from the upstream mTLS connection (the peer's certificate and our own); connection_security_policy stays unknown on this side.
    const s = t.source.http(peer, service, r.upstreamPeerPrincipal ?? '', r.upstreamLocalPrincipal ?? '', false, this.#grpc, r.responseCode, grpcStatus, r.responseFlags);
    s.requests++;
    s.duration.observe(r.durationMs);
    s.requestBytes.observe(this.#requestHeaderBytes + r.bytesReceived);
    s.responseBytes.observe(this.#responseHeaderBytes + r.bytesSent);
  }
}

/** One tcp_proxy connection: opened once the upstream is connected (or at close), bytes as deltas, closed at close. */
class TcpStats implements TcpConnectionHooks {
  readonly #t: ProxyTelemetry;
  readonly #reporter: Reporter;
  #series: TcpSeries | undefined;
  #sent = 0;
  #received = 0;

  constructor(t: ProxyTelemetry, reporter: Reporter) {
    this.#t = t;
    this.#reporter = reporter;
  }

  #open(ctx: TcpFilterContext): TcpSeries {
    const t = this.#t;
    const r = ctx.record;
    const service = t.service(r.upstreamCluster, undefined, '');
    let s: TcpSeries;
    if (this.#reporter === 'destination') {
      const c = ctx.connection;
      const peerPrincipal = c.peerPrincipal ?? '';
      s = t.destination.tcp(undefined, service, peerPrincipal, c.localPrincipal ?? '', c.tls && peerPrincipal !== '', r.responseFlags);
    } else {
      s = t.source.tcp(t.metadata.endpoint(r.upstreamCluster, r.upstreamHost), service, '', '', false, r.responseFlags);
    }
    s.opened++;
    this.#series = s;
    return s;
  }

  onUpstreamConnected(ctx: TcpFilterContext): void {
    this.#open(ctx);
    this.#t.tcpOpened(this);
  }

  onData(_ctx: TcpFilterContext, received: number, sent: number): void {
    this.#received += received;
    this.#sent += sent;
  }

  flush(): void {
    const s = this.#series;
    if (!s) return;
    s.receivedBytes += this.#received;
    s.sentBytes += this.#sent;
    this.#received = 0;
    this.#sent = 0;
  }

  onClose(ctx: TcpFilterContext): void {
    const s = this.#series ?? this.#open(ctx);
    this.flush();
    s.closed++;
    this.#t.tcpClosed(this);
  }
}
