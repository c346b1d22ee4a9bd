// Extension points for the filters that sit in the request path beside routing: authorization
// (envoy.filters.http.rbac, envoy.filters.network.rbac), Istio's metrics with metadata exchange,
// tracing, access logs, x-forwarded-client-cert. Each is compiled once per filter chain from
// what pilot sent (an HTTP filter's typed_config, or the connection manager itself for the ones
// Envoy configures there: tracing, access_log) and begins per request or connection. A chain with
// no filters costs the request path nothing.
import type { Any__Output, HttpConnectionManager__Output, TcpProxy__Output } from '@weft/xds';
import type { RequestRecord, ResponseFlag } from './types.ts';

/** Mutable lower-case header map as the router keeps it (pseudo-headers excluded). */
export type FilterHeaders = Record<string, string | string[]>;

/** Envoy's dynamic metadata of one request, by filter name (plain JSON): `envoy.filters.http.jwt_authn`, `istio_authn`. */
export type DynamicMetadata = Record<string, Record<string, unknown>>;

/** What the listener knows about the downstream connection. */
export interface DownstreamConnection {
  /** Peer IP (IPv4-mapped prefix removed) and port. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The socket's local address and port. */
  readonly localAddress: string;
  readonly localPort: number;
  /** Where the connection was going (SO_ORIGINAL_DST), else the local address. */
  readonly destinationAddress: string;
  readonly destinationPort: number;
  /** The connection was TLS, terminated by this proxy. */
  readonly tls: boolean;
  /** TLS with a verified client certificate: the peer's URI SAN (`spiffe://…`); undefined otherwise. */
  readonly peerPrincipal: string | undefined;
  /** The verified client certificate (DER), for x-forwarded-client-cert's Hash. */
  readonly peerCertificate: Buffer | undefined;
  /** This proxy's own URI SAN on that TLS connection (x-forwarded-client-cert's By). */
  readonly localPrincipal: string | undefined;
  /** SNI the client asked for. */
  readonly sni: string | undefined;
}

/** One HTTP request as filters see it. The router owns it; filters read it and edit `requestHeaders`. */
export interface HttpFilterContext {
  readonly connection: DownstreamConnection;
  /** Filled in as the exchange goes; final in `onComplete`. */
  readonly record: RequestRecord;
  readonly method: string;
  /** Authority and path as routing sees them (after normalization, before route rewrites). */
  readonly authority: string;
  readonly path: string;
  readonly scheme: 'http' | 'https';
  /** Request headers as they will go upstream (the filter may add, change or delete). */
  readonly requestHeaders: FilterHeaders;
  /** The route's name and cluster once routing chose them (undefined before, or without a route). */
  readonly routeName: string | undefined;
  readonly upstreamCluster: string | undefined;
  /** The route's `decorator.operation` (the span name tracing uses), once routing chose a route. */
  readonly routeOperation?: string | undefined;
  /** What earlier filters left for later ones (JWT payloads for istio_authn, its result for RBAC). */
  readonly dynamicMetadata?: DynamicMetadata;
}

/** An answer a filter gives instead of routing the request (RBAC's 403). */
export interface FilterLocalReply {
  status: number;
  body: string;
  headers?: Record<string, string>;
  /** Recorded on the request (e.g. `UAEX`); none by default. */
  flag?: ResponseFlag;
  /** Envoy's %RESPONSE_CODE_DETAILS% (`rbac_access_denied_matched_policy[none]`). */
  details?: string;
}

/**
 * Per-request hooks one filter returns from `begin`. All optional, all synchronous. Call order:
 * onRequest (filters in chain order; the first local reply stops the rest and routing), then per
 * upstream attempt onUpstreamRequest and onUpstreamResponse, then onResponse for the downstream
 * response headers (also for local replies), then onComplete once the exchange is over.
 */
export interface HttpStreamHooks {
  /**
   * Request headers arrived (connection-manager rules applied, before routing). A promise (JWT
   * verification) holds the request until it settles; later filters run after it.
   */
  onRequest?(ctx: HttpFilterContext): FilterLocalReply | undefined | Promise<FilterLocalReply | undefined>;
  /** About to send an attempt upstream: `headers` are that attempt's. */
  onUpstreamRequest?(ctx: HttpFilterContext, headers: FilterHeaders): void;
  /** Response headers from upstream (the filter may read and delete, e.g. peer metadata). */
  onUpstreamResponse?(ctx: HttpFilterContext, status: number, headers: FilterHeaders): void;
  /** Response headers about to go downstream (also local replies); the filter may add. */
  onResponse?(ctx: HttpFilterContext, status: number, headers: FilterHeaders): void;
  /** The exchange is over; `ctx.record` is final (duration, bytes, flags, code). */
  onComplete?(ctx: HttpFilterContext): void;
}

/** A compiled HTTP filter of one chain. */
export interface HttpFilter {
  readonly name: string;
  /** Hooks for one request, or undefined when this filter has nothing to do for it. */
  begin(ctx: HttpFilterContext): HttpStreamHooks | undefined;
}

/** One TCP connection as network filters see it (tcp_proxy chains). */
export interface TcpFilterContext {
  readonly connection: DownstreamConnection;
  /** Filled in as the connection goes; final in `onClose`. */
  readonly record: RequestRecord;
}

export interface TcpConnectionHooks {
  /** Before connecting upstream; returning false closes the downstream connection (RBAC deny). */
  onConnect?(ctx: TcpFilterContext): boolean;
  /** The upstream connection is up (`endpoint` is `address:port`). */
  onUpstreamConnected?(ctx: TcpFilterContext, endpoint: string): void;
  /** Bytes went by: received from downstream, sent to downstream. */
  onData?(ctx: TcpFilterContext, received: number, sent: number): void;
  /** The connection closed; `ctx.record` is final. */
  onClose?(ctx: TcpFilterContext): void;
}

export interface NetworkFilter {
  readonly name: string;
  begin(ctx: TcpFilterContext): TcpConnectionHooks | undefined;
}

/** What a filter factory is told about where it is compiled. */
export interface FilterSite {
  /** `<listener>#<chain>` for messages. */
  readonly where: string;
  readonly listener: string;
  readonly direction: RequestRecord['direction'];
  /** The chain's connection manager (HTTP chains). */
  readonly hcm?: HttpConnectionManager__Output;
  /** The chain's tcp_proxy (TCP chains; e.g. its access_log). */
  readonly tcpProxy?: TcpProxy__Output;
}

/** Builds an HTTP filter from an `http_filters` entry's typed_config; throws (the NACK reason) for what it cannot serve. */
export type HttpFilterFactory = (config: Any__Output, site: FilterSite) => HttpFilter | undefined;
/** Builds a filter from the connection manager itself (tracing, access_log, always-on telemetry). */
export type ConnectionManagerFilterFactory = (hcm: HttpConnectionManager__Output, site: FilterSite) => HttpFilter | undefined;
/** Builds a network filter from a `filters` entry's typed_config (before tcp_proxy or the HCM). */
export type NetworkFilterFactory = (config: Any__Output, site: FilterSite) => NetworkFilter | undefined;
/** Network filters for every TCP chain, not named by pilot (telemetry). */
export type TcpChainFilterFactory = (site: FilterSite) => NetworkFilter | undefined;

/**
 * The filters this proxy knows, by typed_config type URL. `startProxy` builds one and each
 * capability (security, telemetry) registers its factories; listeners compile chains with it.
 * HTTP filters a chain names that nobody registered are refused (NACK) unless `is_optional`.
 */
export class FilterRegistry {
  readonly http = new Map<string, HttpFilterFactory>();
  readonly network = new Map<string, NetworkFilterFactory>();
  /** Run for every HTTP chain, after the named filters, in registration order. */
  readonly connectionManager: ConnectionManagerFilterFactory[] = [];
  /** Run for every TCP chain, after the named filters, in registration order. */
  readonly tcpChain: TcpChainFilterFactory[] = [];

  registerHttp(typeUrl: string, factory: HttpFilterFactory): this {
    this.http.set(typeUrl, factory);
    return this;
  }
  registerNetwork(typeUrl: string, factory: NetworkFilterFactory): this {
    this.network.set(typeUrl, factory);
    return this;
  }
  registerConnectionManager(factory: ConnectionManagerFilterFactory): this {
    this.connectionManager.push(factory);
    return this;
  }
  registerTcpChain(factory: TcpChainFilterFactory): this {
    this.tcpChain.push(factory);
    return this;
  }

  /** Run once when the proxy stops, after listeners drained (flush buffered telemetry). */
  readonly shutdownHooks: (() => Promise<void> | void)[] = [];
  onShutdown(hook: () => Promise<void> | void): this {
    this.shutdownHooks.push(hook);
    return this;
  }
  /** Runs every shutdown hook; a failing hook does not stop the others. */
  async shutdown(): Promise<void> {
    await Promise.all(
      this.shutdownHooks.map(async (h) => {
        try {
          await h();
        } catch {
          // Reported by the hook's owner.
        }
      }),
    );
  }
}

/** Begins every filter of a chain for one request; undefined when none has anything to do. */
export function beginHttpFilters(filters: readonly HttpFilter[], ctx: HttpFilterContext): HttpStreamHooks[] | undefined {
  let out: HttpStreamHooks[] | undefined;
  for (const f of filters) {
    const h = f.begin(ctx);
    if (!h) continue;
    if (out) out.push(h);
    else out = [h];
  }
  return out;
}
